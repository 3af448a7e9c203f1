// Package busio holds what the Redis, RabbitMQ and MQTT components share
// beyond the message encodings (busfmt): destination templates
// (md.{kind}.{symbol}), splitting a batch by symbol or partition so each
// message goes to its own destination in order, and TLS params.
package busio

import (
	"fmt"
	"strings"

	"github.com/mdpio/mdp/md"
)

// Template is a destination name (a routing key, a stream, a topic) with
// placeholders: {kind} (trade, quote, bar, derived), {symbol} (the record's
// symbol) and {partition} (md.Split of the symbol's hash at the instances
// level over the sink's partitions, as operator.partition does). A template
// with {symbol} or {partition} splits each batch into one message per
// symbol or partition, records kept in their order.
type Template struct {
	raw   string
	parts []tmplPart
	// Symbol and Partition report which per-record placeholders the
	// template has.
	Symbol, Partition bool
}

type tmplPart struct {
	lit string
	ph  byte // 0 literal, 'k' kind, 's' symbol, 'p' partition
}

// ParseTemplate parses s; an unknown or unclosed placeholder is an error.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{raw: s}
	rest := s
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			t.parts = append(t.parts, tmplPart{lit: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("template %q: unclosed {", s)
		}
		switch name := rest[i+1 : i+j]; name {
		case "kind":
			t.parts = append(t.parts, tmplPart{ph: 'k'})
		case "symbol":
			t.parts = append(t.parts, tmplPart{ph: 's'})
			t.Symbol = true
		case "partition":
			t.parts = append(t.parts, tmplPart{ph: 'p'})
			t.Partition = true
		default:
			return nil, fmt.Errorf("template %q: unknown placeholder {%s} (want {kind}, {symbol} or {partition})", s, name)
		}
		rest = rest[i+j+1:]
	}
	if strings.ContainsRune(s, '}') && strings.Count(s, "}") != strings.Count(s, "{") {
		return nil, fmt.Errorf("template %q: unmatched }", s)
	}
	return t, nil
}

// String is the template as written.
func (t *Template) String() string { return t.raw }

// Append appends the name for records of kind k, symbol sym and partition
// p to dst.
func (t *Template) Append(dst []byte, k md.Kind, sym string, p int) []byte {
	for _, pt := range t.parts {
		switch pt.ph {
		case 0:
			dst = append(dst, pt.lit...)
		case 'k':
			dst = append(dst, k.String()...)
		case 's':
			dst = append(dst, sym...)
		case 'p':
			dst = fmt.Appendf(dst, "%d", p)
		}
	}
	return dst
}

// Expand returns the name as a string.
func (t *Template) Expand(k md.Kind, sym string, p int) string {
	return string(t.Append(nil, k, sym, p))
}
