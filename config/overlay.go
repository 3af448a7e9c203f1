package config

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mdpio/mdp/component"
)

// Environment variables that override the file (and are overridden by flags).
const (
	EnvMode           = "MDP_UNIFIED_MODE"
	EnvDAGJSON        = "MDP_UNIFIED_DAG_JSON"
	EnvClassicJSON    = "MDP_UNIFIED_CLASSIC_JSON"
	envMetricsEnable  = "MDP_METRICS_ENABLE"
	envMetricsListen  = "MDP_METRICS_LISTEN"
	envFeedbackEnable = "MDP_FB_ENABLE"
	envFeedbackOK     = "MDP_FB_SCALE_OK"
	envFeedbackSoft   = "MDP_FB_SCALE_SOFT"
	envFeedbackHard   = "MDP_FB_SCALE_HARD"
	envFeedbackSoftAt = "MDP_FB_SOFT_AT"
	envFeedbackHardAt = "MDP_FB_HARD_AT"
)

// scalarEnv maps the scalar environment overrides to the key they set, in
// the order they are applied.
var scalarEnv = []struct {
	name string
	path []string
	kind string // "str", "bool" or "yaml"
}{
	{EnvMode, []string{"mode"}, "str"},
	{envMetricsEnable, []string{"metrics", "enable"}, "bool"},
	{envMetricsListen, []string{"metrics", "listen"}, "str"},
	{envFeedbackEnable, []string{"feedback", "enable_feedback"}, "bool"},
	{envFeedbackOK, []string{"feedback", "scale_ok"}, "yaml"},
	{envFeedbackSoft, []string{"feedback", "scale_soft"}, "yaml"},
	{envFeedbackHard, []string{"feedback", "scale_hard"}, "yaml"},
	{envFeedbackSoftAt, []string{"feedback", "soft_at"}, "yaml"},
	{envFeedbackHardAt, []string{"feedback", "hard_at"}, "yaml"},
}

// overlayEnv applies the MDP_* environment variables to the tree. An empty
// variable counts as unset.
func (l *loader) overlayEnv(root *yaml.Node) {
	get := func(name string) (string, bool) {
		v, ok := l.env(name)
		return v, ok && strings.TrimSpace(v) != ""
	}
	for _, sec := range []struct{ name, key string }{{EnvDAGJSON, "dag"}, {EnvClassicJSON, "classic"}} {
		v, ok := get(sec.name)
		if !ok {
			continue
		}
		origin := "env " + sec.name
		l.rank[origin] = len(l.rank)
		n, ok := l.parse(origin, []byte(v))
		if !ok {
			continue
		}
		l.mark(n, origin)
		if n.Kind != yaml.MappingNode {
			l.errAt(n, sec.key, "%s must hold a JSON object, got %s", sec.name, describe(n))
			continue
		}
		if sec.key == "classic" && lookup(n, "spec") == nil {
			// The variable may hold the spec itself rather than the section.
			n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column, Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Tag: "!!str", Value: "spec", Line: n.Line, Column: n.Column}, n,
			}}
			l.mark(n, origin)
		}
		setKey(root, sec.key, n, l.keyNode(sec.key, origin))
		l.sources = append(l.sources, origin)
	}
	for _, s := range scalarEnv {
		v, ok := get(s.name)
		if !ok {
			continue
		}
		origin := "env " + s.name
		l.rank[origin] = len(l.rank)
		var n *yaml.Node
		switch s.kind {
		case "str":
			n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
		case "bool":
			// Environment booleans are commonly 1/0 as well as true/false.
			if b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(v))); err == nil {
				n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
			} else {
				n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
			}
		default:
			n = scalarValue(v)
		}
		l.mark(n, origin)
		if l.setPath(root, s.path, n, origin) {
			l.sources = append(l.sources, origin)
		}
	}
}

// scalarValue parses v as a YAML scalar, so 10 is an integer and 0.5 a
// number; anything that is not one scalar stays a string.
func scalarValue(v string) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(v), &doc); err == nil && len(doc.Content) == 1 {
		if c := doc.Content[0]; c.Kind == yaml.ScalarNode && c.Value == strings.TrimSpace(v) {
			unposition(c)
			return c
		}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
}

func (l *loader) keyNode(key, origin string) *yaml.Node {
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}
	l.origin[k] = origin
	return k
}

// lookup returns the value of key in mapping m (nil if absent).
func lookup(m *yaml.Node, key string) *yaml.Node {
	m = resolve(m)
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setKey sets key in mapping m to v, replacing every existing value.
func setKey(m *yaml.Node, key string, v, keyNode *yaml.Node) {
	found := false
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			found = true
		}
	}
	if !found {
		m.Content = append(m.Content, keyNode, v)
	}
}

// applySet applies one --set path=value flag.
func (l *loader) applySet(root *yaml.Node, arg string) {
	path, value, ok := strings.Cut(arg, "=")
	path = strings.TrimSpace(path)
	if !ok || path == "" {
		l.errs = append(l.errs, &Error{File: "--set", Msg: fmt.Sprintf("want path=value, got %q", arg)})
		return
	}
	// The origin names the path only: the value may be a secret, and
	// errors about it quote what they need.
	origin := "--set " + path
	l.rank[origin] = len(l.rank)
	segs, err := splitPath(path)
	if err != nil {
		l.errs = append(l.errs, &Error{File: origin, Msg: err.Error()})
		return
	}
	var n *yaml.Node
	if strings.TrimSpace(value) == "" {
		n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ""}
	} else {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(value), &doc); err != nil || len(doc.Content) != 1 {
			n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
		} else {
			n = doc.Content[0]
		}
	}
	unposition(n)
	l.mark(n, origin)
	if l.setPath(root, segs, n, origin) {
		l.sources = append(l.sources, origin)
	}
}

// splitPath splits a --set path into keys and [i] indexes (kept as "[i]").
func splitPath(path string) ([]string, error) {
	var segs []string
	for _, part := range strings.Split(path, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if key == "" && rest == "" {
			return nil, fmt.Errorf("bad path %q: empty key", path)
		}
		if key != "" {
			segs = append(segs, key)
		}
		if rest == "" {
			continue
		}
		rest = "[" + rest
		for rest != "" {
			end := strings.IndexByte(rest, ']')
			if rest[0] != '[' || end < 0 {
				return nil, fmt.Errorf("bad path %q: want key[index]", path)
			}
			if _, err := strconv.Atoi(rest[1:end]); err != nil {
				return nil, fmt.Errorf("bad path %q: index %q is not a number", path, rest[1:end])
			}
			segs = append(segs, rest[:end+1])
			rest = rest[end+1:]
		}
	}
	return segs, nil
}

// setPath sets the value at segs, creating missing mappings on the way.
// Keys it creates are checked later like keys in the file, so a misspelt key
// is reported as unknown with a suggestion. Problems on the way (an index out
// of range, no node with that id, a scalar where a mapping must be) are
// reported here under origin.
func (l *loader) setPath(root *yaml.Node, segs []string, v *yaml.Node, origin string) bool {
	cur := root
	done := ""
	for i, seg := range segs {
		last := i == len(segs)-1
		cur = resolve(cur)
		if strings.HasPrefix(seg, "[") || cur.Kind == yaml.SequenceNode {
			if cur.Kind != yaml.SequenceNode {
				l.errs = append(l.errs, &Error{File: origin, Path: done, Msg: fmt.Sprintf("cannot index %s with %s", describe(cur), seg)})
				return false
			}
			idx, ok := l.itemIndex(cur, seg, done, origin)
			if !ok {
				return false
			}
			done += fmt.Sprintf("[%d]", idx)
			if last {
				cur.Content[idx] = v
				return true
			}
			next := resolve(cur.Content[idx])
			if isNull(next) {
				next = l.newMapping(origin)
				cur.Content[idx] = next
			}
			cur = next
			continue
		}
		if cur.Kind != yaml.MappingNode {
			l.errs = append(l.errs, &Error{File: origin, Path: done, Msg: fmt.Sprintf("cannot set key %q in %s", seg, describe(cur))})
			return false
		}
		// dag.nodes and dag.edges reach into dag.graph when the file uses
		// the alias.
		if done == "dag" && (seg == "nodes" || seg == "edges") && lookup(cur, seg) == nil {
			if g := resolve(lookup(cur, "graph")); g != nil && g.Kind == yaml.MappingNode {
				cur = g
				done = "dag.graph"
			}
		}
		done = join(done, seg)
		if last {
			setKey(cur, seg, v, l.keyNode(seg, origin))
			return true
		}
		next := resolve(lookup(cur, seg))
		if isNull(next) && strings.HasPrefix(segs[i+1], "[") {
			l.errs = append(l.errs, &Error{File: origin, Path: done, Msg: fmt.Sprintf("not set, so there is no item %s", segs[i+1])})
			return false
		}
		if isNull(next) {
			next = l.newMapping(origin)
			setKey(cur, seg, next, l.keyNode(seg, origin))
		}
		cur = next
	}
	return true
}

func (l *loader) newMapping(origin string) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	l.origin[m] = origin
	return m
}

// itemIndex finds a list item by [index], by a bare number, or by the id of
// a mapping item.
func (l *loader) itemIndex(seq *yaml.Node, seg, done, origin string) (int, bool) {
	if strings.HasPrefix(seg, "[") {
		idx, _ := strconv.Atoi(seg[1 : len(seg)-1])
		if idx < 0 || idx >= len(seq.Content) {
			l.errs = append(l.errs, &Error{File: origin, Path: done, Msg: fmt.Sprintf("index %d is out of range; the list has %d items", idx, len(seq.Content))})
			return 0, false
		}
		return idx, true
	}
	var ids []string
	for i, item := range seq.Content {
		if id := resolve(lookup(item, "id")); id != nil && id.Kind == yaml.ScalarNode {
			if id.Value == seg {
				return i, true
			}
			ids = append(ids, id.Value)
		}
	}
	if idx, err := strconv.Atoi(seg); err == nil && idx >= 0 && idx < len(seq.Content) {
		return idx, true
	}
	msg := fmt.Sprintf("no item with id %q", seg)
	if s := component.Suggest(seg, ids); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	} else if len(ids) > 0 {
		msg += "; ids are: " + strings.Join(ids, ", ")
	}
	l.errs = append(l.errs, &Error{File: origin, Path: done, Msg: msg})
	return 0, false
}

// interpolate expands ${VAR}, ${VAR:-default} and $$ in every string scalar
// of the tree.
func (l *loader) interpolate(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			l.interpolate(n.Content[i+1], join(path, n.Content[i].Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.interpolate(c, index(path, i))
		}
	case yaml.ScalarNode:
		if n.Tag != "!!str" || !strings.Contains(n.Value, "$") {
			return
		}
		out, err := l.expand(n.Value)
		if err != nil {
			l.errAt(n, path, "%v", err)
			return
		}
		if out == n.Value {
			return
		}
		whole := wholeRef(n.Value)
		n.Value = out
		// A plain scalar, or a quoted one that is exactly one reference,
		// takes the type of its value: `rate: ${RATE}` (block style) and
		// "rate": "${RATE}" (JSON, flow style) both give a number.
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 || whole {
			switch r := scalarValue(out); r.Tag {
			case "!!int", "!!float", "!!bool":
				n.Tag = r.Tag
			}
		}
	}
}

// wholeRef reports whether s is exactly one ${...} reference.
func wholeRef(s string) bool {
	return strings.HasPrefix(s, "${") && strings.IndexByte(s, '}') == len(s)-1
}

// expand is a small hand-written expander: os.Expand has no defaults and
// no $$ escape, and silently maps unset variables to "".
func (l *loader) expand(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unclosed ${ in %q", s)
		}
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validVarName(name) {
			return "", fmt.Errorf("bad variable reference ${%s}; want ${NAME} or ${NAME:-default}", expr)
		}
		v, ok := l.env(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set; set it or write ${%s:-default}", name, name)
		}
		b.WriteString(v)
		i += end
	}
	return b.String(), nil
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}
