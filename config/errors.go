package config

import (
	"strconv"
	"strings"
)

// Error is one problem with a job: where it is and what is wrong.
type Error struct {
	// File is the job file, "env NAME" for a value from an environment
	// variable, "--set path" for a flag, or "" for unnamed bytes.
	File string
	// Line and Column are 1-based; 0 when the value has no position (a flag
	// or a plain environment variable).
	Line, Column int
	// Path is the key path, e.g. dag.nodes[1].params.interval.
	Path string
	// Msg says what is wrong, in lower case.
	Msg string
}

// Error renders "file:line:col: path: msg", leaving out the parts that are
// empty.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a job, sorted by source (file, then
// environment, then flags), line and column.
type Errors []*Error

// Error renders one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems as errors, for errors.As and errors.Is.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
