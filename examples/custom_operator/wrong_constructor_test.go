package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWrongConstructorDoesNotCompile builds this package with the
// wrongconstructor tag, which adds wrong_constructor.go: an operator whose
// NewProcessor returns a value that is not an engine.Processor. The typed
// constructor must make that a compile error naming the missing method.
func TestWrongConstructorDoesNotCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	cmd := exec.Command(gobin, "build", "-tags", "wrongconstructor", "-o", filepath.Join(t.TempDir(), "mdp"), ".")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("go build -tags wrongconstructor succeeded; a wrong constructor must not compile:\n%s", out)
	}
	for _, want := range []string{
		"wrong_constructor.go:25:",
		"notAProcessor does not implement engine.Processor (missing method Process)",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("compile error lacks %q:\n%s", want, out)
		}
	}
}
