package component

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mdpio/mdp/md"
)

// FieldType is the type of a param.
type FieldType string

// Param types.
const (
	String   FieldType = "string"
	Int      FieldType = "int"
	Float    FieldType = "float"
	Bool     FieldType = "bool"
	Duration FieldType = "duration" // "500ms", "1s", "5m", "1d"
	Time     FieldType = "time"     // RFC 3339; decoded to ns since epoch
	Strings  FieldType = "strings"  // a list of strings; a single string is a list of one
	Map      FieldType = "map"      // an object; checked by the spec's Validate
	List     FieldType = "list"     // a list of anything; checked by Validate
	Any      FieldType = "any"
)

// Field is one param of a component.
type Field struct {
	Name        string
	Type        FieldType
	Default     any // in config spelling: "1s" for a duration, 100 for an int
	Required    bool
	Enum        []string // allowed values of a string field
	Min, Max    *float64 // bounds of a number field, or of a duration in seconds
	Description string
	Example     any
	// Secret marks a value (a password in a DSN, a token) that must never be
	// shown in logs, status or API output.
	Secret bool
	// Path marks a string or strings param that names files or a
	// directory. A relative one resolves against the working directory;
	// mdp validate warns when that is not the job file's directory.
	Path bool
	// Input marks a Path param that names files to read (a file, a glob or
	// a list): mdp validate fails on a plain path that does not exist and
	// warns on a glob that matches nothing. Any other Path param is an
	// output, whose directory validate checks can be made.
	Input bool
}

// Bound is a helper for Field.Min and Field.Max.
func Bound(v float64) *float64 { return &v }

// FieldError is a problem with one param: which node, which key, where.
type FieldError struct {
	Node   string
	Key    string // param name, or a dotted path inside one
	Line   int
	Column int
	Msg    string
}

func (e *FieldError) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	return fmt.Sprintf("params.%s: %s", e.Key, e.Msg)
}

// Params are a node's decoded params: every declared field, with its default
// when the job file left it out. Getters return the zero value for an unset
// field with no default.
//
// A getter called with a name the spec does not declare, or with the getter
// of another type (Float on an int field), is a bug in the component, and it
// fails loudly: the getter panics with a *ParamAccessError, which the
// constructor wrapper of Node, and Decode around a spec's Validate and
// ProducesFn, turn into an error that fails the job's build, naming the
// component, the node and the name.
type Params struct {
	spec   *Spec
	node   string
	values map[string]any
	set    map[string]bool
	lines  map[string][2]int
	quoted map[string]bool // the value is a quoted scalar: its text starts a column later
	line   [2]int          // the params mapping itself
	schema *md.Schema      // declared by the spec's SchemaFn
}

// NewParams decodes values given as Go data (not from a file), for building
// nodes from code and for tests.
func NewParams(s *Spec, values map[string]any) (*Params, error) {
	var n yaml.Node
	if err := n.Encode(values); err != nil {
		return nil, fmt.Errorf("encode params: %w", err)
	}
	p, errs := Decode(s, "", &n)
	if len(errs) > 0 {
		es := make([]error, len(errs))
		for i, e := range errs {
			es[i] = e
		}
		return nil, errors.Join(es...)
	}
	return p, nil
}

// Decode checks a params mapping against the spec and converts every value.
// It returns all problems at once: unknown keys (with the nearest valid one),
// wrong types, values out of range or not allowed, missing required keys,
// and whatever the spec's Validate finds.
func Decode(s *Spec, node string, m *yaml.Node) (*Params, []*FieldError) {
	p := &Params{spec: s, node: node, values: map[string]any{}, set: map[string]bool{}, lines: map[string][2]int{}, quoted: map[string]bool{}}
	var errs []*FieldError
	add := func(key string, n *yaml.Node, format string, a ...any) {
		e := &FieldError{Node: node, Key: key, Msg: fmt.Sprintf(format, a...)}
		if n != nil {
			e.Line, e.Column = n.Line, n.Column
		}
		errs = append(errs, e)
	}
	if m != nil && m.Kind == yaml.DocumentNode && len(m.Content) == 1 {
		m = m.Content[0]
	}
	if m != nil {
		p.line = [2]int{m.Line, m.Column}
	}
	if m != nil && !(m.Kind == yaml.ScalarNode && m.Tag == "!!null") {
		if m.Kind != yaml.MappingNode {
			add("", m, "params must be a mapping of key: value, got %s", Describe(m))
			return p, errs
		}
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			f := s.field(k.Value)
			if f == nil {
				msg := fmt.Sprintf("unknown param %q for %s", k.Value, s.Type)
				if sug := Suggest(k.Value, s.FieldNames()); sug != "" {
					msg += fmt.Sprintf("; did you mean %q?", sug)
				} else if len(s.Fields) > 0 {
					msg += "; valid params: " + strings.Join(s.FieldNames(), ", ")
				} else {
					msg += "; it takes no params"
				}
				errs = append(errs, &FieldError{Node: node, Key: k.Value, Line: k.Line, Column: k.Column, Msg: msg})
				continue
			}
			if p.set[f.Name] {
				add(f.Name, k, "param %q is given twice", f.Name)
				continue
			}
			p.set[f.Name] = true
			p.lines[f.Name] = [2]int{v.Line, v.Column}
			if v.Kind == yaml.ScalarNode && (v.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle)) != 0 {
				p.quoted[f.Name] = true
			}
			val, err := f.decodeNode(v)
			if err != nil {
				add(f.Name, v, "%v", err)
				continue
			}
			p.values[f.Name] = val
		}
	}
	for i := range s.Fields {
		f := &s.Fields[i]
		if p.set[f.Name] {
			continue
		}
		if f.Required {
			e := &FieldError{Node: node, Key: f.Name, Line: p.line[0], Column: p.line[1], Msg: fmt.Sprintf("missing required param %q (%s)", f.Name, f.Description)}
			errs = append(errs, e)
			continue
		}
		if f.Default != nil {
			v, _ := f.convert(f.Default) // checked at Register
			p.values[f.Name] = v
		}
	}
	if len(errs) == 0 && s.Validate != nil {
		if err := guardSpec(func() error { return s.Validate(p) }); err != nil {
			errs = append(errs, p.fieldErrors(err)...)
		}
	}
	if len(errs) == 0 && s.ProducesFn != nil {
		if err := guardSpec(func() error { s.ProducesFn(p); return nil }); err != nil {
			errs = append(errs, p.fieldErrors(err)...)
		}
	}
	if len(errs) == 0 && s.SchemaFn != nil {
		var sc *md.Schema
		err := guardSpec(func() (err error) { sc, err = s.SchemaFn(p); return err })
		if err != nil {
			errs = append(errs, p.fieldErrors(err)...)
		}
		p.schema = sc
	}
	return p, errs
}

// ParamAccessError is a component reading a param its spec does not declare,
// or reading it with the getter of another type.
type ParamAccessError struct {
	Type string // the component type id
	Node string
	Name string // the name the component asked for
	Msg  string // what is wrong with it
}

func (e *ParamAccessError) Error() string {
	return fmt.Sprintf("component %s reads param %q, %s", e.Type, e.Name, e.Msg)
}

// guardParams runs f and returns, as an error, a *ParamAccessError that a
// getter panicked with; any other panic goes on (a constructor's panic is
// the engine's to recover and name).
func guardParams(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(*ParamAccessError)
			if !ok {
				panic(r)
			}
			err = pe
		}
	}()
	return f()
}

// guardSpec is guardParams for a spec's own checks (Validate, ProducesFn,
// SchemaFn), which run while a job file is validated: any other panic, a
// bug in the component, becomes an error too, so a bad component makes the
// config invalid instead of crashing mdp validate.
func guardSpec(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if pe, ok := r.(*ParamAccessError); ok {
				err = pe
				return
			}
			err = fmt.Errorf("component spec code panicked: %v", r)
		}
	}()
	return f()
}

// check panics with a *ParamAccessError unless the spec declares name with
// one of the types (any type when none is given).
func (p *Params) check(name string, types ...FieldType) {
	if p.spec == nil {
		return
	}
	f := p.spec.field(name)
	if f == nil {
		msg := "which its spec does not declare"
		if sug := Suggest(name, p.spec.FieldNames()); sug != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", sug)
		} else if len(p.spec.Fields) > 0 {
			msg += " (it declares " + strings.Join(p.spec.FieldNames(), ", ") + ")"
		}
		panic(&ParamAccessError{Type: p.spec.Type, Node: p.node, Name: name, Msg: msg})
	}
	if len(types) == 0 || slices.Contains(types, f.Type) {
		return
	}
	panic(&ParamAccessError{Type: p.spec.Type, Node: p.node, Name: name,
		Msg: fmt.Sprintf("declared as %s, with the getter for %s", f.Type, types[0])})
}

// Schema is the derived-record schema the spec's SchemaFn declared from
// these params (nil without one).
func (p *Params) Schema() *md.Schema { return p.schema }

func (p *Params) fieldErrors(err error) []*FieldError {
	var out []*FieldError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, p.fieldErrors(e)...)
		}
		return out
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return []*FieldError{fe}
	}
	return []*FieldError{{Node: p.node, Line: p.line[0], Column: p.line[1], Msg: err.Error()}}
}

// Errorf returns a FieldError for key, placed at the key's line, for a
// spec's Validate.
func (p *Params) Errorf(key, format string, a ...any) error {
	lc, ok := p.lines[key]
	if !ok {
		lc = p.line
	}
	return &FieldError{Node: p.node, Key: key, Line: lc[0], Column: lc[1], Msg: fmt.Sprintf(format, a...)}
}

// ErrorfAt is Errorf placed at a position inside key's value: line and
// col count from 1 within the value's own text (where an expression parser
// found the problem) and are added to where the value starts in the file.
func (p *Params) ErrorfAt(key string, line, col int, format string, a ...any) error {
	lc, ok := p.lines[key]
	if !ok {
		lc = p.line
	}
	if line > 1 {
		lc[0] += line - 1
		lc[1] = col
	} else {
		if p.quoted[key] {
			lc[1]++ // past the opening quote
		}
		lc[1] += col - 1
	}
	return &FieldError{Node: p.node, Key: key, Line: lc[0], Column: lc[1], Msg: fmt.Sprintf(format, a...)}
}

// NodeID is the id of the node these params belong to.
func (p *Params) NodeID() string { return p.node }

// Has reports whether the job file set the param explicitly.
func (p *Params) Has(name string) bool { p.check(name); return p.set[name] }

// Value returns the decoded value (nil when unset without default).
func (p *Params) Value(name string) any { p.check(name); return p.values[name] }

// String returns a string param.
func (p *Params) String(name string) string {
	p.check(name, String)
	s, _ := p.values[name].(string)
	return s
}

// Int returns an int param.
func (p *Params) Int(name string) int64 {
	p.check(name, Int)
	v, _ := p.values[name].(int64)
	return v
}

// Float returns a float param.
func (p *Params) Float(name string) float64 {
	p.check(name, Float)
	v, _ := p.values[name].(float64)
	return v
}

// Bool returns a bool param.
func (p *Params) Bool(name string) bool {
	p.check(name, Bool)
	v, _ := p.values[name].(bool)
	return v
}

// Duration returns a duration param.
func (p *Params) Duration(name string) time.Duration {
	p.check(name, Duration)
	v, _ := p.values[name].(time.Duration)
	return v
}

// Time returns a time param as ns since the epoch, and whether it is set.
func (p *Params) Time(name string) (int64, bool) {
	p.check(name, Time)
	v, ok := p.values[name].(int64)
	return v, ok
}

// Strings returns a strings param.
func (p *Params) Strings(name string) []string {
	p.check(name, Strings)
	v, _ := p.values[name].([]string)
	return v
}

// Map returns a map param (a field of type Map or Any).
func (p *Params) Map(name string) map[string]any {
	p.check(name, Map, Any)
	v, _ := p.values[name].(map[string]any)
	return v
}

// List returns a list param (a field of type List or Any).
func (p *Params) List(name string) []any {
	p.check(name, List, Any)
	v, _ := p.values[name].([]any)
	return v
}

// Describe names what a YAML node holds, for error messages: "a mapping",
// "a list", "null", "the string \"x\"", "the integer 3". Config errors use
// it too, so every message says it the same way.
func Describe(n *yaml.Node) string {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!bool":
			return "the bool " + n.Value
		case "!!int":
			return "the integer " + n.Value
		case "!!float":
			return "the number " + n.Value
		}
		return fmt.Sprintf("%s %s", strings.TrimPrefix(n.Tag, "!!"), n.Value)
	}
	return "an alias"
}

func (f *Field) decodeNode(n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch f.Type {
	case Strings:
		if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
			return f.convert(n.Value)
		}
		if n.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("want a list of strings, got %s", Describe(n))
		}
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("want a list of strings, got %s in the list", Describe(c))
			}
			out = append(out, c.Value)
		}
		return out, nil
	case Map, List, Any:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, err
		}
		v = normalize(v)
		switch f.Type {
		case Map:
			if _, ok := v.(map[string]any); !ok {
				return nil, fmt.Errorf("want a mapping, got %s", Describe(n))
			}
		case List:
			if _, ok := v.([]any); !ok {
				return nil, fmt.Errorf("want a list, got %s", Describe(n))
			}
		}
		return v, nil
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return nil, fmt.Errorf("want %s, got %s", f.typeDesc(), Describe(n))
	}
	switch f.Type {
	case String, Duration, Time:
		return f.convert(n.Value)
	case Int:
		if n.Tag != "!!int" {
			return nil, fmt.Errorf("want %s, got %s", f.typeDesc(), Describe(n))
		}
	case Float:
		if n.Tag != "!!int" && n.Tag != "!!float" {
			return nil, fmt.Errorf("want %s, got %s", f.typeDesc(), Describe(n))
		}
	case Bool:
		if n.Tag != "!!bool" {
			return nil, fmt.Errorf("want %s, got %s", f.typeDesc(), Describe(n))
		}
	}
	return f.convert(n.Value)
}

func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	case int:
		return int64(x)
	}
	return v
}

func (f *Field) typeDesc() string {
	switch f.Type {
	case Int:
		return "an integer"
	case Float:
		return "a number"
	case Bool:
		return "true or false"
	case Duration:
		return "a duration such as 500ms, 1s or 5m"
	case Time:
		return "an RFC 3339 time such as 2024-01-02T14:30:00Z"
	}
	return "a string"
}

// convert turns a config-spelled value (string, number, bool) into the
// field's Go type and checks enum and bounds.
func (f *Field) convert(v any) (any, error) {
	s := fmt.Sprint(v)
	switch f.Type {
	case String:
		if len(f.Enum) > 0 && !contains(f.Enum, s) {
			msg := fmt.Sprintf("%q is not allowed; want one of %s", s, strings.Join(f.Enum, ", "))
			if sug := Suggest(s, f.Enum); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			}
			return nil, errors.New(msg)
		}
		return s, nil
	case Int:
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64)
		if err != nil {
			return nil, fmt.Errorf("want %s, got %q", f.typeDesc(), s)
		}
		return i, f.inRange(float64(i), s)
	case Float:
		x, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
		if err != nil || math.IsNaN(x) {
			return nil, fmt.Errorf("want %s, got %q", f.typeDesc(), s)
		}
		return x, f.inRange(x, s)
	case Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("want %s, got %q", f.typeDesc(), s)
		}
		return b, nil
	case Duration:
		if d, ok := v.(time.Duration); ok {
			return d, f.inRange(d.Seconds(), s)
		}
		d, err := md.ParseDuration(s)
		if err != nil {
			return nil, err
		}
		return d, f.inRange(d.Seconds(), s)
	case Time:
		ns, err := md.ParseTime(s)
		if err != nil {
			return nil, err
		}
		return ns, nil
	case Strings:
		if l, ok := v.([]string); ok {
			return l, nil
		}
		if l, ok := v.([]any); ok {
			out := make([]string, len(l))
			for i, e := range l {
				out[i] = fmt.Sprint(e)
			}
			return out, nil
		}
		return []string{s}, nil
	}
	return normalize(v), nil
}

func (f *Field) inRange(x float64, s string) error {
	if f.Min != nil && x < *f.Min {
		return fmt.Errorf("%s is below the minimum %s", s, f.boundText(*f.Min))
	}
	if f.Max != nil && x > *f.Max {
		return fmt.Errorf("%s is above the maximum %s", s, f.boundText(*f.Max))
	}
	return nil
}

func (f *Field) boundText(b float64) string {
	if f.Type == Duration {
		return time.Duration(b * float64(time.Second)).String()
	}
	if f.Type == Int {
		return strconv.FormatInt(int64(b), 10) // 1048576, not 1.048576e+06
	}
	return strconv.FormatFloat(b, 'g', -1, 64)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Suggest returns the candidate nearest to word by edit distance, if it is
// close enough to be a likely typo; "" otherwise.
func Suggest(word string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		d := editDistance(strings.ToLower(word), strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	limit := max(1, min(3, len(word)/3))
	if bestD <= limit || (best != "" && (strings.HasPrefix(best, word) || strings.HasPrefix(word, best)) && len(word) >= 3) {
		return best
	}
	return ""
}

// editDistance is the Damerau–Levenshtein (optimal string alignment)
// distance, so a swapped pair of letters counts as one typo.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
