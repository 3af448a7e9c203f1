package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// errClass says what a failed write means for the job.
type errClass uint8

const (
	// classFatal: the store cannot take these rows as configured (missing
	// table, wrong column type, no permission). Retrying cannot help; the
	// job fails with the message.
	classFatal errClass = iota
	// classTransient: the server or the connection failed (restart,
	// connection loss, serialization failure, deadlock, too many
	// connections). The same write succeeds later; retry it on a new
	// connection.
	classTransient
	// classData: the server rejected a value in the rows (a CHECK
	// constraint, a NOT NULL, a number out of range). Other rows of the
	// batch are fine; the rejected ones go to the dead-letter file.
	classData
	// classCanceled: the job is stopping.
	classCanceled
)

func (c errClass) String() string {
	switch c {
	case classTransient:
		return "transient"
	case classData:
		return "data"
	case classCanceled:
		return "canceled"
	}
	return "fatal"
}

// classify sorts err into a class by its SQLSTATE when the server sent one
// (https://www.postgresql.org/docs/current/errcodes-appendix.html), and by
// the network error otherwise.
func classify(err error) errClass {
	if err == nil {
		return classFatal
	}
	if errors.Is(err, context.Canceled) {
		return classCanceled
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return classifySQLState(pe.Code)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		// A connect attempt that failed without a server error (refused,
		// reset, timed out, DNS): the server is down or restarting.
		return classTransient
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return classTransient
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) {
		return classTransient
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return classTransient
	}
	// pgx reports a use of a connection that an earlier network failure
	// closed as a plain "conn closed" error.
	if strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "conn busy") {
		return classTransient
	}
	return classFatal
}

func classifySQLState(code string) errClass {
	switch {
	case strings.HasPrefix(code, "08"): // connection exception
		return classTransient
	case code == "40001", code == "40P01": // serialization failure, deadlock
		return classTransient
	case code == "53300": // too many connections
		return classTransient
	case code == "57P01", code == "57P02", code == "57P03": // admin/crash shutdown, cannot connect now
		return classTransient
	case code == "55P03": // lock not available
		return classTransient
	case code == "57014": // query canceled (statement_timeout)
		return classTransient
	case strings.HasPrefix(code, "22"): // data exception: value out of range, invalid text
		return classData
	case strings.HasPrefix(code, "23"): // integrity constraint violation: CHECK, NOT NULL, FK
		return classData
	}
	return classFatal
}

// pgMessage renders err with the server error in it spelled out: with the
// fields that say which constraint and column it is about, the detail and
// the hint, so a user can act on it. Context wrapped around the server
// error is kept.
func pgMessage(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	return strings.Replace(err.Error(), pe.Error(), describePgError(pe), 1)
}

func describePgError(pe *pgconn.PgError) string {
	var b strings.Builder
	b.WriteString(pe.Message)
	b.WriteString(" (SQLSTATE ")
	b.WriteString(pe.Code)
	if pe.ConstraintName != "" {
		b.WriteString(", constraint ")
		b.WriteString(pe.ConstraintName)
	}
	if pe.ColumnName != "" {
		b.WriteString(", column ")
		b.WriteString(pe.ColumnName)
	}
	b.WriteString(")")
	if pe.Detail != "" {
		b.WriteString(": ")
		b.WriteString(pe.Detail)
	}
	if pe.Hint != "" {
		b.WriteString(" hint: ")
		b.WriteString(pe.Hint)
	}
	return b.String()
}

const redacted = "xxxxx"

var (
	// userinfo of a URL-form DSN: scheme://user:password@host
	urlPassword = regexp.MustCompile(`(://[^:/@\s]*:)([^@\s]*)@`)
	// password=value in a keyword/value DSN, quoted or not
	kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)
)

// redactDSN returns dsn with its password replaced by xxxxx, for logs and
// status. Both DSN forms are handled: postgres://user:secret@host/db and
// "host=h user=u password=secret".
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", redacted)
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	s := urlPassword.ReplaceAllString(dsn, "${1}"+redacted+"@")
	return kvPassword.ReplaceAllString(s, "${1}"+redacted)
}

// redactor removes one DSN's password from any text: errors from the driver
// and the server may quote the connection string or parts of it.
type redactor struct {
	secrets []string
}

func newRedactor(dsn string, password string) *redactor {
	r := &redactor{}
	add := func(s string) {
		if s == "" {
			return
		}
		for _, x := range r.secrets {
			if x == s {
				return
			}
		}
		r.secrets = append(r.secrets, s)
	}
	add(password)
	add(url.QueryEscape(password))
	add(url.PathEscape(password))
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
			add(url.QueryEscape(p))
		}
	}
	if m := kvPassword.FindStringSubmatch(dsn); m != nil {
		add(strings.Trim(m[2], "'"))
	}
	return r
}

// String redacts s.
func (r *redactor) String(s string) string {
	s = urlPassword.ReplaceAllString(s, "${1}"+redacted+"@")
	s = kvPassword.ReplaceAllString(s, "${1}"+redacted)
	if r != nil {
		for _, p := range r.secrets {
			s = strings.ReplaceAll(s, p, redacted)
		}
	}
	return s
}

// Wrap returns err with every copy of the password removed from its
// message. The original stays reachable through errors.Is/As for
// classification, but its text is never printed by mdp.
func (r *redactor) Wrap(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: r.String(err.Error()), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
