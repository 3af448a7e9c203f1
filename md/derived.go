package md

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// FieldType is the type of a derived record's field.
//
// There are two: float64 and int64. A flag is an int64 0 or 1 (every store
// holds it exactly; SQLite has no boolean type anyway). Strings are left out
// on purpose: a string field makes a record variable-sized, so batches would
// allocate per record (or carry an arena) and every sink would need
// dictionary handling, while the one text a derived record needs — its
// symbol — is already a column; a categorical output is an int64 code.
type FieldType uint8

// Field types.
const (
	Float FieldType = iota // float64
	Int                    // int64
)

// String returns float64 or int64.
func (t FieldType) String() string {
	if t == Int {
		return "int64"
	}
	return "float64"
}

// Field is one named field of a derived record.
type Field struct {
	Name string
	Type FieldType
}

// Schema describes the records of a derived kind: a name (the table or
// dataset they are stored in, and so part of every stored row's identity)
// and the fields each record carries besides its symbol and event time. A
// node declares it at build time from its params; it is immutable after
// NewSchema, and batches share it by pointer.
type Schema struct {
	name   string
	fields []Field
}

// reservedNames are the columns every derived row has, which a field may not
// shadow.
var reservedNames = []string{"provider", "symbol", "ts", "type", "reason"}

// reservedSchemas are names a schema may not take: the built-in kinds (JSON
// output names a derived record's kind by its schema) and their default
// tables and datasets.
var reservedSchemas = []string{"trade", "quote", "bar", "derived", "none", "trades", "quotes", "bars", "bars_ohlcv"}

// NewSchema checks and returns a schema. Names (the schema's and its
// fields') are lower-case identifiers — a letter, then letters, digits or
// underscores, at most 63 bytes — so every store can use them unquoted; field
// names are unique and none is provider, symbol, ts, type or reason; the
// schema's name is none of trade, quote, bar, derived, none, trades,
// quotes, bars, bars_ohlcv.
func NewSchema(name string, fields ...Field) (*Schema, error) {
	var errs []error
	if err := checkIdent(name); err != nil {
		errs = append(errs, fmt.Errorf("schema name: %w", err))
	}
	for _, r := range reservedSchemas {
		if name == r {
			errs = append(errs, fmt.Errorf("schema name %s is reserved for a built-in record kind or its table", name))
		}
	}
	if len(fields) == 0 {
		errs = append(errs, fmt.Errorf("schema %s has no fields", name))
	}
	seen := map[string]bool{}
	for _, f := range fields {
		if err := checkIdent(f.Name); err != nil {
			errs = append(errs, fmt.Errorf("schema %s: field name: %w", name, err))
			continue
		}
		for _, r := range reservedNames {
			if f.Name == r {
				errs = append(errs, fmt.Errorf("schema %s: field %s: the name is reserved (every derived row has provider, symbol and ts)", name, f.Name))
			}
		}
		if seen[f.Name] {
			errs = append(errs, fmt.Errorf("schema %s: field %s declared twice", name, f.Name))
		}
		seen[f.Name] = true
		if f.Type != Float && f.Type != Int {
			errs = append(errs, fmt.Errorf("schema %s: field %s: unknown type %d", name, f.Name, f.Type))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Schema{name: name, fields: append([]Field(nil), fields...)}, nil
}

func checkIdent(s string) error {
	if s == "" || len(s) > 63 {
		return fmt.Errorf("%q must be 1 to 63 bytes", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return fmt.Errorf("%q is not a lower-case identifier (a-z, 0-9, _; not starting with a digit)", s)
	}
	return nil
}

// Name is the schema's name.
func (s *Schema) Name() string { return s.name }

// Len is the number of fields: the stride of a batch's Values.
func (s *Schema) Len() int { return len(s.fields) }

// Field returns field i.
func (s *Schema) Field(i int) Field { return s.fields[i] }

// Fields returns a copy of the fields in order.
func (s *Schema) Fields() []Field { return append([]Field(nil), s.fields...) }

// Index returns the position of the named field, or -1.
func (s *Schema) Index(name string) int {
	for i, f := range s.fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// Equal reports whether s and o have the same name and fields.
func (s *Schema) Equal(o *Schema) bool {
	if s == o {
		return true
	}
	if s == nil || o == nil || s.name != o.name || len(s.fields) != len(o.fields) {
		return false
	}
	for i := range s.fields {
		if s.fields[i] != o.fields[i] {
			return false
		}
	}
	return true
}

// String renders the schema as name(field type, …).
func (s *Schema) String() string {
	if s == nil {
		return "<nil schema>"
	}
	parts := make([]string, len(s.fields))
	for i, f := range s.fields {
		parts[i] = f.Name + " " + f.Type.String()
	}
	return s.name + "(" + strings.Join(parts, ", ") + ")"
}

// Derived is the fixed part of a derived record; its field values are in the
// batch's Values, Schema.Len() of them per record.
type Derived struct {
	TS  int64 // event time, ns
	Sym SymID
}

// Value is one field value of a derived record: the 64 bits of a float64 or
// an int64, as the schema's field type says.
type Value uint64

// FloatValue makes a Value of a float64.
func FloatValue(f float64) Value { return Value(math.Float64bits(f)) }

// IntValue makes a Value of an int64.
func IntValue(i int64) Value { return Value(i) }

// Float reads a float64 field.
func (v Value) Float() float64 { return math.Float64frombits(uint64(v)) }

// Int reads an int64 field.
func (v Value) Int() int64 { return int64(v) }

// AddDerived appends a derived record with event time ts and symbol sym to a
// KindDerived batch and returns its field values to fill (zero, in the
// schema's order). The slice is valid until the next AddDerived. In steady
// state (a pooled batch that has held as many records before) it does not
// allocate.
func (b *Batch) AddDerived(ts int64, sym SymID) []Value {
	stride := b.Schema.Len()
	b.Derived = append(b.Derived, Derived{TS: ts, Sym: sym})
	n := len(b.Values)
	if cap(b.Values)-n >= stride {
		b.Values = b.Values[:n+stride]
		clear(b.Values[n:])
	} else {
		b.Values = append(b.Values, make([]Value, stride)...)
	}
	return b.Values[n : n+stride : n+stride]
}

// Row returns the field values of derived record i.
func (b *Batch) Row(i int) []Value {
	stride := b.Schema.Len()
	return b.Values[i*stride : (i+1)*stride : (i+1)*stride]
}

// CopyDerived appends derived record i of src to b, which must carry the
// same schema; partitioning uses it.
func (b *Batch) CopyDerived(src *Batch, i int) {
	b.Derived = append(b.Derived, src.Derived[i])
	b.Values = append(b.Values, src.Row(i)...)
}
