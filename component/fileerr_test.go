package component

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFileErrorDoesNotRepeatItsPrefix(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.csv")
	_, err := os.Open(missing)
	if got := FileError("open", missing, err).Error(); got != "open "+missing+": no such file or directory" {
		t.Errorf("got %q", got)
	}
	if got := FileError("read", missing, errors.New("gzip: invalid header")).Error(); got != "read "+missing+": gzip: invalid header" {
		t.Errorf("got %q", got)
	}
	err = os.Rename(missing, missing+".x")
	if got := FileError("rename", missing, err).Error(); got != "rename "+missing+" "+missing+".x: no such file or directory" {
		t.Errorf("got %q", got)
	}
	if FileError("open", missing, nil) != nil {
		t.Error("nil error wrapped")
	}
}
