package testenv

import (
	"fmt"
	"strings"
	"testing"
)

// recorder stands in for a test: it records how Missing ended it.
type recorder struct {
	testing.TB
	how, msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, a ...any) {
	r.how, r.msg = "fail", fmt.Sprintf(format, a...)
}
func (r *recorder) Skipf(format string, a ...any) {
	r.how, r.msg = "skip", fmt.Sprintf(format, a...)
}

func TestMissing(t *testing.T) {
	for _, c := range []struct {
		ci, how, want string
	}{
		{"", "skip", "PostgreSQL unavailable: connection refused; to run this test, start one on 127.0.0.1:5432"},
		{"false", "skip", "to run this test"},
		{"true", "fail", "PostgreSQL unavailable: connection refused (CI=true: a service test must run, not skip)"},
		{"1", "fail", "(CI=1: a service test must run, not skip)"},
	} {
		t.Setenv("CI", c.ci)
		r := &recorder{}
		Missing(r, "PostgreSQL", "connection refused", PostgresHint)
		if r.how != c.how || !strings.Contains(r.msg, c.want) {
			t.Errorf("CI=%q: %s %q", c.ci, r.how, r.msg)
		}
	}
}
