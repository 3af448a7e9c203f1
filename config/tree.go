package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/md"
)

// The loader works on yaml.Node trees rather than decoding into structs:
// only the node tree keeps the line and column of every value, which is what
// lets each error point at the exact spot in the file.

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse reads one YAML (or JSON) document into a node tree. Empty input
// gives an empty mapping. A syntax error is reported under origin.
func (l *loader) parse(origin string, data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1, Column: 1}, true
		}
		l.syntaxError(origin, data, err)
		return nil, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		l.errs = append(l.errs, &Error{File: origin, Line: extra.Line, Column: extra.Column, Msg: "a job file holds one document; remove the second one"})
		return nil, false
	} else if !errors.Is(err, io.EOF) {
		l.syntaxError(origin, data, err)
		return nil, false
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1, Column: 1}, true
	}
	return doc.Content[0], true
}

// syntaxError reports a document that does not parse. JSON (a document
// that starts with { or [) is checked by encoding/json, whose errors carry
// the exact offset. For YAML, yaml.v3 reports the line where the enclosing
// block starts rather than the bad line; the first prefix of whole lines
// that fails to parse is where the problem is, so that line is reported
// when it comes later.
func (l *loader) syntaxError(origin string, data []byte, err error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		var v any
		var se *json.SyntaxError
		if jerr := json.Unmarshal(data, &v); errors.As(jerr, &se) {
			line, col := lineCol(data, int(se.Offset)-1) // Offset is just past the bad byte
			l.errs = append(l.errs, &Error{File: origin, Line: line, Column: col, Msg: "invalid json: " + se.Error()})
			return
		} else if jerr != nil {
			l.errs = append(l.errs, &Error{File: origin, Msg: "invalid json: " + jerr.Error()})
			return
		}
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if first := firstBadLine(data, line); first > line {
		line = first
	}
	l.errs = append(l.errs, &Error{File: origin, Line: line, Msg: "invalid yaml: " + msg})
}

// firstBadLine returns the number of lines in the shortest prefix of data,
// of at least from lines and at most 200 more, that does not parse (0 if
// none fails). The bound keeps a huge malformed file from costing a parse
// per line.
func firstBadLine(data []byte, from int) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	end := 0
	for i, ln := range lines {
		end += len(ln)
		if i+1 < from {
			continue
		}
		if i+1 > from+200 {
			return 0
		}
		dec := yaml.NewDecoder(bytes.NewReader(data[:end]))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return i + 1
			}
		}
	}
	return 0
}

// lineCol turns a byte offset into a 1-based line and column (in runes).
func lineCol(data []byte, off int) (int, int) {
	off = min(max(off, 0), len(data))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	return line, utf8.RuneCount(data[start:off]) + 1
}

// mark records that every node of the tree came from origin.
func (l *loader) mark(n *yaml.Node, origin string) {
	if n == nil {
		return
	}
	l.origin[n] = origin
	for _, c := range n.Content {
		l.mark(c, origin)
	}
}

// unposition clears line and column in a tree parsed from a flag value, so
// its errors are reported by origin only.
func unposition(n *yaml.Node) {
	n.Line, n.Column = 0, 0
	for _, c := range n.Content {
		unposition(c)
	}
}

func (l *loader) fileOf(n *yaml.Node) string {
	if n == nil {
		return l.file
	}
	if o, ok := l.origin[n]; ok {
		return o
	}
	return l.file
}

// errAt records a problem at n (nil: no position).
func (l *loader) errAt(n *yaml.Node, path, format string, a ...any) {
	e := &Error{File: l.fileOf(n), Path: path, Msg: fmt.Sprintf(format, a...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	l.errs = append(l.errs, e)
}

// errUnknownChoice reports s, the value of e, as an unknown what: the
// message lists the choices ("want a, b or c") and suggests the nearest.
func (l *loader) errUnknownChoice(e entry, what, s string, choices ...string) {
	last := len(choices) - 1
	msg := fmt.Sprintf("unknown %s %q; want %s or %s", what, s, strings.Join(choices[:last], ", "), choices[last])
	if sug := component.Suggest(s, choices); sug != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", sug)
	}
	l.errAt(e.val, e.path, "%s", msg)
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func index(parent string, i int) string { return fmt.Sprintf("%s[%d]", parent, i) }

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string { return component.Describe(n) }

// entry is one key: value pair of a mapping.
type entry struct {
	key, val *yaml.Node
	path     string
}

// mapping checks that n is a mapping with only allowed keys, each given
// once, and returns its entries by key. Null counts as an empty mapping.
func (l *loader) mapping(n *yaml.Node, path string, allowed []string) (map[string]entry, bool) {
	n = resolve(n)
	out := map[string]entry{}
	if isNull(n) {
		return out, true
	}
	if n.Kind != yaml.MappingNode {
		l.errAt(n, path, "want a mapping, got %s", describe(n))
		return out, false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.errAt(k, path, "a key must be a plain name, got %s", describe(k))
			continue
		}
		p := join(path, k.Value)
		if k.Tag == "!!merge" {
			l.errAt(k, p, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		if path == "" && k.Value == "$schema" {
			// Editors read "$schema" in JSON job files; the loader ignores it.
			continue
		}
		if !contains(allowed, k.Value) {
			msg := fmt.Sprintf("unknown key %q", k.Value)
			if s := component.Suggest(k.Value, allowed); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += "; valid keys: " + strings.Join(allowed, ", ")
			}
			l.errAt(k, p, "%s", msg)
			continue
		}
		if prev, dup := out[k.Value]; dup {
			l.errAt(k, p, "key %q is given twice (first at line %d)", k.Value, prev.key.Line)
			continue
		}
		out[k.Value] = entry{key: k, val: v, path: p}
	}
	return out, true
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// str decodes a string scalar (any non-null scalar's text).
func (l *loader) str(e entry) (string, bool) {
	n := resolve(e.val)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		l.errAt(n, e.path, "want a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

func (l *loader) boolean(e entry) (bool, bool) {
	n := resolve(e.val)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err == nil {
			return b, true
		}
	}
	l.errAt(n, e.path, "want true or false, got %s", describe(n))
	return false, false
}

// intRange decodes an integer in [minimum, maximum]; the message names the
// bound it breaks.
func (l *loader) intRange(e entry, minimum, maximum int) (int, bool) {
	n := resolve(e.val)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		l.errAt(n, e.path, "want an integer, got %s", describe(n))
		return 0, false
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if err != nil {
		l.errAt(n, e.path, "want an integer, got %s", describe(n))
		return 0, false
	}
	if i < int64(minimum) {
		l.errAt(n, e.path, "must be at least %d, got %d", minimum, i)
		return 0, false
	}
	if i > int64(maximum) {
		l.errAt(n, e.path, "must be at most %d, got %d", maximum, i)
		return 0, false
	}
	return int(i), true
}

// duration decodes a duration (md.ParseDuration: 500ms, 5s, 1m) of at
// least minimum, or above 0 when minimum is 0; the message names the bound
// it breaks.
func (l *loader) duration(e entry, minimum time.Duration) (time.Duration, bool) {
	s, ok := l.str(e)
	if !ok {
		return 0, false
	}
	d, err := md.ParseDuration(s)
	switch {
	case err != nil:
		l.errAt(e.val, e.path, "%v", err)
		return 0, false
	case minimum == 0 && d <= 0:
		l.errAt(e.val, e.path, "must be above 0s, got %s", s)
		return 0, false
	case d < minimum:
		l.errAt(e.val, e.path, "must be at least %s, got %s", minimum, s)
		return 0, false
	}
	return d, true
}

// fraction decodes a number in [lo, hi].
func (l *loader) fraction(e entry, lo, hi float64, loOpen bool) (float64, bool) {
	n := resolve(e.val)
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		l.errAt(n, e.path, "want a number, got %s", describe(n))
		return 0, false
	}
	x, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
	if err != nil || x > hi || x < lo || (loOpen && x == lo) {
		if loOpen {
			l.errAt(n, e.path, "must be above %g and at most %g, got %s", lo, hi, n.Value)
		} else {
			l.errAt(n, e.path, "must be between %g and %g, got %s", lo, hi, n.Value)
		}
		return 0, false
	}
	return x, true
}

func itoa(i int) string { return strconv.Itoa(i) }
