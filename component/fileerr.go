package component

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

// OutputDirProblem says why the directories of an output path cannot be
// made, or "". It walks the path as written: a component that exists must
// be a directory (for a file param, every component but the last), and a
// ".." needs the directory before it to exist, since the kernel resolves it
// there ("newdir/../bars.jsonl" fails at rename time when newdir is
// missing, however the path cleans).
func OutputDirProblem(path string) string {
	parts := strings.Split(filepath.ToSlash(path), "/")
	cur := "" // the path so far, as written (the kernel resolves "..")
	for i, part := range parts[:len(parts)-1] {
		if part == "" {
			if i == 0 {
				cur = "/"
			}
			continue
		}
		next := part
		switch cur {
		case "":
		case "/":
			next = "/" + part
		default:
			next = cur + "/" + part
		}
		if part == ".." {
			if cur != "" {
				if _, err := os.Stat(cur); err != nil {
					return fmt.Sprintf("directory %q does not exist, and %q goes up from it", cur, next)
				}
			}
		} else if st, err := os.Stat(next); err == nil && !st.IsDir() {
			return fmt.Sprintf("%q is not a directory", next)
		}
		cur = next
	}
	return ""
}
