package component

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// FileError wraps an error from a file operation on path with op and path,
// unless the error already names them: an *fs.PathError or *os.LinkError on
// the same path says "open X: permission denied" by itself, and wrapping it
// again would say "open X: open X: permission denied".
func FileError(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		return err
	}
	var le *os.LinkError
	if errors.As(err, &le) && (le.Old == path || le.New == path) {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}
