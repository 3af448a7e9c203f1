// Package rowschema is the one definition of the columns each record kind
// has when it leaves mdp: their names, types, order, which ones form the
// natural key stores upsert on, and which ones only streams carry. recfmt
// (JSON lines and CSV), sink.sqlite, sink.postgres and sink.parquet all take
// their columns, DDL and keys from here, so a trade has the same columns in
// every sink and they cannot drift apart.
//
// Two kinds of output read a table differently:
//
//   - streams (stdout, files, dead-letter outputs) write every column, in
//     order; a bar's ts is its label time (start, or end with label: close);
//   - stores (SQLite, PostgreSQL, Parquet) write the columns not marked
//     StreamOnly, key on Key, and stamp a bar's ts with its start whatever
//     its label. Stream-only columns are those that would make a re-run
//     store different rows: the wall-clock ingest time, a bar's update flag,
//     and start/end (ts and interval already give them).
package rowschema

import (
	"github.com/mdpio/mdp/md"
)

// Type is a column's value type.
type Type uint8

// Column types.
const (
	Text  Type = iota // UTF-8 text
	Time              // an instant: int64 ns in mdp, microseconds in stores
	Float             // float64
	Int               // int64
	Bool              // true or false (a bar's partial and update flags); stores hold 0 or 1
)

// String names the type.
func (t Type) String() string {
	switch t {
	case Time:
		return "time"
	case Float:
		return "float64"
	case Int:
		return "int64"
	case Bool:
		return "bool"
	}
	return "text"
}

// Column is one column of a record kind.
type Column struct {
	Name string
	Type Type
	// StreamOnly columns are written by streams (JSON, CSV) and not stored.
	StreamOnly bool
	// Optional columns are written to JSON only when set (a bar's partial
	// and update flags).
	Optional bool
	// Added marks a column that came after stores first made the kind's
	// table: a store adds it, with the zero value as default, to an
	// existing table that lacks it, instead of refusing the table.
	Added bool
}

// Table is the row layout of one record kind.
type Table struct {
	Kind md.Kind
	// Name is the default table name of stores and the Parquet dataset
	// directory: bars_ohlcv (bars, dataset bars), trades, quotes, or a
	// derived schema's name.
	Name string
	// Dataset is the Parquet dataset directory under the sink's dir.
	Dataset string
	// Columns in order (streams write all of them, stores those not
	// StreamOnly).
	Columns []Column
	// Key is the natural key stores upsert on, in index order.
	Key []string
	// Version, when set, is the column holding a row's monotone version:
	// stores replace a row only by one whose version is at least its own,
	// so replaying older output (a restore from a checkpoint) never moves a
	// row backwards. A bar's is its trade count, which every late update
	// (late_policy update) increases.
	Version string
	// Schema is the derived schema the table was made from (KindDerived).
	Schema *md.Schema
}

// The tables of the built-in kinds.
var (
	Trade = &Table{Kind: md.KindTrade, Name: "trades", Dataset: "trades",
		Columns: []Column{
			{Name: "provider", Type: Text},
			{Name: "symbol", Type: Text},
			{Name: "ts", Type: Time},
			{Name: "ingest_ts", Type: Time, StreamOnly: true},
			{Name: "price", Type: Float},
			{Name: "size", Type: Float},
			{Name: "side", Type: Text},
			{Name: "trade_id", Type: Int},
			{Name: "seq", Type: Int},
		},
		Key: []string{"provider", "symbol", "ts", "trade_id"},
	}
	Quote = &Table{Kind: md.KindQuote, Name: "quotes", Dataset: "quotes",
		Columns: []Column{
			{Name: "provider", Type: Text},
			{Name: "symbol", Type: Text},
			{Name: "ts", Type: Time},
			{Name: "ingest_ts", Type: Time, StreamOnly: true},
			{Name: "bid", Type: Float},
			{Name: "bid_size", Type: Float},
			{Name: "ask", Type: Float},
			{Name: "ask_size", Type: Float},
			{Name: "seq", Type: Int},
		},
		Key: []string{"provider", "symbol", "ts", "seq"},
	}
	// Bar: interval is the bar's size as text (1s, 1m for time bars); ts is
	// the start in stores and the label time in streams; trades counts the
	// records folded in (trades, or quote updates when source is not
	// trade); bar_type is time, tick, volume, value, tick_imbalance or
	// volume_imbalance; source is trade, mid, bid, ask or bid_ask; partial
	// is true when the bar's interval touches a gap in the feed
	// (md.Bar.Partial).
	Bar = &Table{Kind: md.KindBar, Name: "bars_ohlcv", Dataset: "bars",
		Columns: []Column{
			{Name: "provider", Type: Text},
			{Name: "symbol", Type: Text},
			{Name: "interval", Type: Text},
			{Name: "ts", Type: Time},
			{Name: "start", Type: Time, StreamOnly: true},
			{Name: "end", Type: Time, StreamOnly: true},
			{Name: "open", Type: Float},
			{Name: "high", Type: Float},
			{Name: "low", Type: Float},
			{Name: "close", Type: Float},
			{Name: "volume", Type: Float},
			{Name: "vwap", Type: Float},
			{Name: "trades", Type: Int},
			{Name: "bar_type", Type: Text},
			{Name: "source", Type: Text},
			{Name: "partial", Type: Bool, Optional: true, Added: true},
			{Name: "update", Type: Bool, StreamOnly: true, Optional: true},
		},
		Key:     []string{"provider", "symbol", "bar_type", "source", "interval", "ts"},
		Version: "trades",
	}
)

// Derived returns the table of a derived schema: provider, symbol, ts, then
// the schema's fields; keyed on (provider, symbol, ts) and named by the
// schema, so the schema's name is part of every stored row's identity.
func Derived(s *md.Schema) *Table {
	t := &Table{Kind: md.KindDerived, Name: s.Name(), Dataset: s.Name(), Schema: s,
		Columns: []Column{{Name: "provider", Type: Text}, {Name: "symbol", Type: Text}, {Name: "ts", Type: Time}},
		Key:     []string{"provider", "symbol", "ts"},
	}
	for i := 0; i < s.Len(); i++ {
		f := s.Field(i)
		typ := Float
		if f.Type == md.Int {
			typ = Int
		}
		t.Columns = append(t.Columns, Column{Name: f.Name, Type: typ})
	}
	return t
}

// For returns the table of a built-in kind (nil for KindDerived: use
// Derived).
func For(k md.Kind) *Table {
	switch k {
	case md.KindTrade:
		return Trade
	case md.KindQuote:
		return Quote
	case md.KindBar:
		return Bar
	}
	return nil
}

// Stored returns the columns stores write, in order.
func (t *Table) Stored() []Column {
	var out []Column
	for _, c := range t.Columns {
		if !c.StreamOnly {
			out = append(out, c)
		}
	}
	return out
}

// IsKey reports whether the named column is part of the key.
func (t *Table) IsKey(name string) bool {
	for _, k := range t.Key {
		if k == name {
			return true
		}
	}
	return false
}

// StoredNames returns the names of the stored columns, in order.
func (t *Table) StoredNames() []string {
	var out []string
	for _, c := range t.Stored() {
		out = append(out, c.Name)
	}
	return out
}

// ValueNames returns the stored columns that are not part of the key, in
// order: what an upsert updates.
func (t *Table) ValueNames() []string {
	var out []string
	for _, c := range t.Stored() {
		if !t.IsKey(c.Name) {
			out = append(out, c.Name)
		}
	}
	return out
}

// StreamNames returns every column's name, in order.
func (t *Table) StreamNames() []string {
	out := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		out[i] = c.Name
	}
	return out
}
