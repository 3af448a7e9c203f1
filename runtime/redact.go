package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/config"
)

// Mask replaces a secret wherever it would be shown.
const Mask = "xxxxx"

var (
	// scheme://user:password@host — the password part of a URL's userinfo.
	urlPassword = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)([^@\s/]+)@`)
	// password=secret, "token: abc" — key/value secrets in DSNs and messages.
	kvSecret = regexp.MustCompile(`(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s&;,'")]+)`)
)

// Redactor removes secrets from text shown to people: the values of every
// param declared Secret in the job, passwords in URL userinfo, and
// key=value secrets such as password=… in DSNs. A nil Redactor applies the
// patterns only.
type Redactor struct {
	values []string // longest first, so a secret containing another is masked whole
}

// NewRedactor collects the secret param values of doc's nodes.
func NewRedactor(doc *config.Document) *Redactor {
	r := &Redactor{}
	if doc == nil {
		return r
	}
	seen := map[string]bool{}
	for _, n := range doc.Nodes {
		if n.Spec == nil || n.Params == nil {
			continue
		}
		for _, f := range n.Spec.Fields {
			if !f.Secret {
				continue
			}
			for _, v := range secretValues(n.Params.Value(f.Name)) {
				if v != "" && !seen[v] {
					seen[v] = true
					r.values = append(r.values, v)
				}
			}
		}
		// Secrets inside URL params (a WebSocket URL's listen key or
		// signature) are masked wherever they show, the URL rewritten by a
		// dialer's error message included.
		for _, f := range n.Spec.Fields {
			if f.Type != component.String {
				continue
			}
			for _, v := range component.URLSecrets(n.Params.String(f.Name)) {
				if !seen[v] {
					seen[v] = true
					r.values = append(r.values, v)
				}
			}
		}
	}
	sort.Slice(r.values, func(i, j int) bool { return len(r.values[i]) > len(r.values[j]) })
	return r
}

func secretValues(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []string:
		return x
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, secretValues(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range x {
			out = append(out, secretValues(e)...)
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

// String returns s with every secret masked.
func (r *Redactor) String(s string) string {
	if r != nil {
		for _, v := range r.values {
			if strings.Contains(s, v) {
				s = strings.ReplaceAll(s, v, Mask)
			}
		}
	}
	s = urlPassword.ReplaceAllString(s, "${1}"+Mask+"@")
	s = component.MaskQuerySecrets(s, Mask)
	return kvSecret.ReplaceAllString(s, "${1}${2}"+Mask)
}

// Error returns err's message with every secret masked ("" for nil).
func (r *Redactor) Error(err error) string {
	if err == nil {
		return ""
	}
	return r.String(err.Error())
}

// Redact masks secrets found by the patterns alone (URL passwords,
// password=… pairs), for text that is not tied to a job.
func Redact(s string) string { return (*Redactor)(nil).String(s) }

// Handler wraps h so that the message and every string, error and
// Stringer attribute of a record are redacted before h sees them.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	return &redactHandler{r: r, h: h}
}

type redactHandler struct {
	r *Redactor
	h slog.Handler
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = h.attr(a)
	}
	return &redactHandler{r: h.r, h: h.h.WithAttrs(red)}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{r: h.r, h: h.h.WithGroup(name)}
}

func (h *redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, ga := range g {
			red[i] = h.attr(ga)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.r.Error(x))
		case fmt.Stringer:
			return slog.String(a.Key, h.r.String(x.String()))
		case []string:
			red := make([]string, len(x))
			for i, s := range x {
				red[i] = h.r.String(s)
			}
			return slog.Any(a.Key, red)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// RedactedParams returns a node's params for display, with every Secret
// field masked (and URL passwords in other strings masked too).
func (r *Redactor) RedactedParams(spec *component.Spec, p *component.Params) map[string]any {
	out := map[string]any{}
	if spec == nil || p == nil {
		return out
	}
	for _, f := range spec.Fields {
		v := p.Value(f.Name)
		if v == nil {
			continue
		}
		if f.Secret {
			out[f.Name] = Mask
			continue
		}
		out[f.Name] = r.value(v)
	}
	return out
}

func (r *Redactor) value(v any) any {
	switch x := v.(type) {
	case string:
		return r.String(x)
	case []string:
		out := make([]string, len(x))
		for i, s := range x {
			out[i] = r.String(s)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.value(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = r.value(e)
		}
		return out
	case error:
		return r.Error(x)
	}
	return v
}

// errRedacted wraps an error so its message is redacted while errors.Is and
// errors.As still see the original chain.
type errRedacted struct {
	msg string
	err error
}

func (e *errRedacted) Error() string { return e.msg }
func (e *errRedacted) Unwrap() error { return e.err }

// RedactError returns err with a redacted message; nil stays nil.
func (r *Redactor) RedactError(err error) error {
	if err == nil {
		return nil
	}
	msg := r.Error(err)
	if msg == err.Error() {
		return err
	}
	return &errRedacted{msg: msg, err: err}
}
