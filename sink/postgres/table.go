package postgres

import (
	"encoding/binary"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/md/rowschema"
	"github.com/mdpio/mdp/recfmt"
)

// colType is a column's PostgreSQL type as mdp writes it.
type colType uint8

const (
	colText  colType = iota
	colTime          // TIMESTAMPTZ, from int64 ns
	colFloat         // DOUBLE PRECISION
	colInt           // BIGINT
)

// sqlType is the type in DDL.
func (t colType) sqlType() string {
	switch t {
	case colTime:
		return "TIMESTAMPTZ"
	case colFloat:
		return "DOUBLE PRECISION"
	case colInt:
		return "BIGINT"
	}
	return "TEXT"
}

// pgType is what format_type() reports for the type, to check an existing
// table.
func (t colType) pgType() string {
	switch t {
	case colTime:
		return "timestamp with time zone"
	case colFloat:
		return "double precision"
	case colInt:
		return "bigint"
	}
	return "text"
}

func (t colType) arrayType() string {
	switch t {
	case colTime:
		return "timestamptz[]"
	case colFloat:
		return "float8[]"
	case colInt:
		return "int8[]"
	}
	return "text[]"
}

// column is one column of a target table. slot indexes the colset slice of
// the column's type that holds its values.
type column struct {
	name    string
	typ     colType
	slot    int
	notNull bool
	// added: rowschema.Column.Added, a column an existing table may lack
	// and gets (with create_tables) at open.
	added bool
}

// tableDef is the layout of one target table: its columns in COPY order and
// its natural key, on which the sink upserts.
type tableDef struct {
	kind   md.Kind
	schema *md.Schema // derived records
	cols   []column
	key    []string
	// version is the column holding a row's monotone version
	// (rowschema.Table.Version; "" for rows written once).
	version string
	// nText.. are how many columns of each type the table has: the colset
	// shape.
	nText, nTime, nFloat, nInt int
}

// newTableDef lays out a table from its rowschema definition: the stored
// columns in order, key columns NOT NULL.
func newTableDef(rt *rowschema.Table) *tableDef {
	t := &tableDef{kind: rt.Kind, key: rt.Key, schema: rt.Schema, version: rt.Version}
	for _, rc := range rt.Stored() {
		c := column{name: rc.Name}
		switch rc.Type {
		case rowschema.Time:
			c.typ, c.slot = colTime, t.nTime
			t.nTime++
		case rowschema.Float:
			c.typ, c.slot = colFloat, t.nFloat
			t.nFloat++
		case rowschema.Int, rowschema.Bool:
			c.typ, c.slot = colInt, t.nInt
			t.nInt++
		default:
			c.typ, c.slot = colText, t.nText
			t.nText++
		}
		c.notNull = rt.IsKey(rc.Name)
		c.added = rc.Added
		t.cols = append(t.cols, c)
	}
	return t
}

// The tables of the built-in kinds, from package rowschema: the same
// columns and keys as sink/sqlite and sink/parquet, so a job can move
// between stores without renaming anything downstream.
var (
	barsDef   = newTableDef(rowschema.Bar)
	tradesDef = newTableDef(rowschema.Trade)
	quotesDef = newTableDef(rowschema.Quote)
)

// target is a tableDef bound to a schema-qualified table, with its SQL
// built once.
type target struct {
	idx int // in Writer.targets, and in each worker's per-target state
	def *tableDef
	// ensured is set once the table was created or checked (Writer.mu).
	ensured bool
	ident   pgx.Identifier // schema, table
	name    string         // quoted schema.table
	stage   string         // quoted name of the per-connection temp table
	// missing is set at Open when the table does not exist and may not be
	// created; a write of this kind then fails the job with it.
	missing error

	createSQL   string
	stageSQL    string
	copySQL     string
	directSQL   string
	upsertStage string
	upsertArray string
}

func newTarget(def *tableDef, schema, table string) *target {
	t := &target{def: def, ident: pgx.Identifier{schema, table}}
	t.name = t.ident.Sanitize()
	stage := "_mdp_stage_" + kindWord(def.kind)
	if def.schema != nil {
		stage += "_" + def.schema.Name()
	}
	t.stage = pgx.Identifier{"pg_temp", stage}.Sanitize()

	quoted := make([]string, len(def.cols))
	var nonKey []string
	for i, c := range def.cols {
		quoted[i] = pgx.Identifier{c.name}.Sanitize()
		if !def.isKey(c.name) {
			nonKey = append(nonKey, quoted[i])
		}
	}
	keyQ := make([]string, len(def.key))
	for i, k := range def.key {
		keyQ[i] = pgx.Identifier{k}.Sanitize()
	}
	cols := strings.Join(quoted, ", ")
	keys := strings.Join(keyQ, ", ")

	var ddl strings.Builder
	ddl.WriteString("CREATE TABLE IF NOT EXISTS " + t.name + " (")
	for i, c := range def.cols {
		ddl.WriteString(quoted[i] + " " + c.typ.sqlType())
		if c.notNull {
			ddl.WriteString(" NOT NULL")
		}
		ddl.WriteString(", ")
	}
	ddl.WriteString("PRIMARY KEY (" + keys + "))")
	t.createSQL = ddl.String()

	// The stage has exactly the target's columns. Duplicate keys within a
	// batch are resolved before COPY (colset.dedupe), so the merge reads
	// the stage as it is, with no sort.
	t.stageSQL = "CREATE TEMP TABLE IF NOT EXISTS " + t.stage + " (LIKE " + t.name +
		" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
	t.copySQL = "COPY " + t.stage + " (" + cols + ") FROM STDIN (FORMAT binary)"
	t.directSQL = "COPY " + t.name + " (" + cols + ") FROM STDIN (FORMAT binary)"

	// Diff-aware: a conflicting row is updated only when a value differs,
	// so rewriting stored rows creates no row versions and no WAL.
	set := make([]string, len(nonKey))
	for i, c := range nonKey {
		set[i] = c + " = EXCLUDED." + c
	}
	conflict := " ON CONFLICT (" + keys + ") DO UPDATE SET " + strings.Join(set, ", ") +
		" WHERE (t." + strings.Join(nonKey, ", t.") + ") IS DISTINCT FROM (EXCLUDED." +
		strings.Join(nonKey, ", EXCLUDED.") + ")"
	if v := def.version; v != "" {
		// Monotone: an older version never replaces a newer one, so a
		// replay after a restore from a checkpoint never moves a row
		// backwards.
		vq := pgx.Identifier{v}.Sanitize()
		conflict += " AND (t." + vq + " IS NULL OR EXCLUDED." + vq + " >= t." + vq + ")"
	}
	t.upsertStage = "INSERT INTO " + t.name + " AS t (" + cols + ") SELECT " + cols + " FROM " + t.stage + conflict

	args := make([]string, len(def.cols))
	for i, c := range def.cols {
		args[i] = "$" + itoa(i+1) + "::" + c.typ.arrayType()
	}
	t.upsertArray = "INSERT INTO " + t.name + " AS t (" + cols + ") SELECT " + cols + " FROM unnest(" +
		strings.Join(args, ", ") + ") AS s(" + cols + ")" + conflict
	return t
}

func (d *tableDef) isKey(name string) bool {
	for _, k := range d.key {
		if k == name {
			return true
		}
	}
	return false
}

func kindWord(k md.Kind) string {
	switch k {
	case md.KindTrade:
		return "trades"
	case md.KindQuote:
		return "quotes"
	case md.KindDerived:
		return "derived"
	}
	return "bars"
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	return string(b[n:])
}

// colset holds one batch's rows column by column, typed, in reused slices:
// the one shape both write paths (binary COPY and the unnest upsert) read.
type colset struct {
	n      int
	texts  [][]string
	times  [][]int64 // ns
	floats [][]float64
	ints   [][]int64
}

func (c *colset) reset(d *tableDef, n int) {
	c.n = n
	c.texts = resize(c.texts, d.nText, n)
	c.times = resize(c.times, d.nTime, n)
	c.floats = resize(c.floats, d.nFloat, n)
	c.ints = resize(c.ints, d.nInt, n)
}

func resize[T any](s [][]T, cols, n int) [][]T {
	for len(s) < cols {
		s = append(s, nil)
	}
	s = s[:cols]
	for i := range s {
		if cap(s[i]) < n {
			s[i] = make([]T, n, max(n, 2*cap(s[i])))
		}
		s[i] = s[i][:n]
	}
	return s
}

// intervalText caches a bar's interval text (recfmt.AppendBarInterval)
// per interval and bar type so the hot loop does not format (and allocate)
// a string per bar.
type intervalText map[[2]int64]string

func (m intervalText) get(r *md.Bar) string {
	k := [2]int64{r.Interval, int64(r.Type)}
	if s, ok := m[k]; ok {
		return s
	}
	s := string(recfmt.AppendBarInterval(nil, r))
	m[k] = s
	return s
}

// fill loads the records of b (one kind) into c, in the column order of
// the kind's table (d: the target's layout). syms must cover every SymID in
// b.
func (c *colset) fill(b *md.Batch, d *tableDef, syms []md.Instrument, iv intervalText) {
	c.reset(d, b.Len())
	switch b.Kind {
	case md.KindBar:
		// provider symbol interval ts open high low close volume vwap trades bar_type source partial
		prov, sym, intv, typ, src := c.texts[0], c.texts[1], c.texts[2], c.texts[3], c.texts[4]
		ts := c.times[0]
		o, h, l, cl, v, vw := c.floats[0], c.floats[1], c.floats[2], c.floats[3], c.floats[4], c.floats[5]
		tr, part := c.ints[0], c.ints[1]
		lastIv, lastType, lastIvText := int64(-1), md.BarType(0), ""
		for i := range b.Bars {
			r := &b.Bars[i]
			in := &syms[r.Sym]
			prov[i], sym[i] = in.Provider, in.Symbol
			if r.Interval != lastIv || r.Type != lastType {
				lastIv, lastType, lastIvText = r.Interval, r.Type, iv.get(r)
			}
			intv[i] = lastIvText
			ts[i] = r.Start // the bar's start, whatever its label, as in every store
			o[i], h[i], l[i], cl[i], v[i], vw[i] = r.Open, r.High, r.Low, r.Close, r.Volume, r.VWAP
			tr[i] = r.Trades
			typ[i], src[i] = r.Type.String(), r.Source.String()
			part[i] = 0
			if r.Partial {
				part[i] = 1
			}
		}
	case md.KindTrade:
		// provider symbol ts price size side trade_id seq
		prov, sym, side := c.texts[0], c.texts[1], c.texts[2]
		ts := c.times[0]
		px, sz := c.floats[0], c.floats[1]
		tid, seq := c.ints[0], c.ints[1]
		for i := range b.Trades {
			r := &b.Trades[i]
			in := &syms[r.Sym]
			prov[i], sym[i], side[i] = in.Provider, in.Symbol, r.Side.String()
			ts[i], tid[i], seq[i] = r.TS, r.TradeID, int64(r.Seq)
			px[i], sz[i] = r.Price, r.Size
		}
	case md.KindQuote:
		// provider symbol ts bid bid_size ask ask_size seq
		prov, sym := c.texts[0], c.texts[1]
		ts := c.times[0]
		seq := c.ints[0]
		bid, bs, ask, as := c.floats[0], c.floats[1], c.floats[2], c.floats[3]
		for i := range b.Quotes {
			r := &b.Quotes[i]
			in := &syms[r.Sym]
			prov[i], sym[i] = in.Provider, in.Symbol
			ts[i], seq[i] = r.TS, int64(r.Seq)
			bid[i], bs[i], ask[i], as[i] = r.Bid, r.BidSize, r.Ask, r.AskSize
		}
	case md.KindDerived:
		// provider symbol ts, then the fields: column 3+f holds field f
		prov, sym := c.texts[0], c.texts[1]
		ts := c.times[0]
		fields := d.cols[3:]
		for i := range b.Derived {
			r := &b.Derived[i]
			in := &syms[r.Sym]
			prov[i], sym[i], ts[i] = in.Provider, in.Symbol, r.TS
			for f, v := range b.Row(i) {
				col := &fields[f]
				if col.typ == colInt {
					c.ints[col.slot][i] = v.Int()
				} else {
					c.floats[col.slot][i] = v.Float()
				}
			}
		}
	default:
		c.n = 0
	}
}

// pgEpochMicros is 2000-01-01T00:00:00Z, PostgreSQL's timestamp epoch, in
// microseconds since the Unix epoch.
const pgEpochMicros = 946684800 * 1000000

// pgMicros converts ns since the Unix epoch to PostgreSQL's binary
// timestamptz: microseconds since 2000-01-01, rounded toward minus infinity
// (timestamptz keeps microseconds).
func pgMicros(ns int64) int64 {
	us := ns / 1000
	if ns%1000 < 0 {
		us--
	}
	return us - pgEpochMicros
}

var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// appendCopy encodes rows [lo, hi) of c in PostgreSQL's binary COPY format
// (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format").
//
// Written by hand rather than through pgx.CopyFrom because pgx takes rows as
// []any and encodes each value through its type map: one interface boxing
// and dispatch per value. This table layout is fixed, so a direct encoder
// with no allocation per row is short and several times faster.
func appendCopy(buf []byte, d *tableDef, c *colset, lo, hi int) []byte {
	buf = append(buf, copyHeader...)
	nf := uint16(len(d.cols))
	for i := lo; i < hi; i++ {
		buf = binary.BigEndian.AppendUint16(buf, nf)
		for ci := range d.cols {
			col := &d.cols[ci]
			switch col.typ {
			case colText:
				s := c.texts[col.slot][i]
				buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
				buf = append(buf, s...)
			case colTime:
				buf = binary.BigEndian.AppendUint32(buf, 8)
				buf = binary.BigEndian.AppendUint64(buf, uint64(pgMicros(c.times[col.slot][i])))
			case colFloat:
				buf = binary.BigEndian.AppendUint32(buf, 8)
				buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(c.floats[col.slot][i]))
			case colInt:
				buf = binary.BigEndian.AppendUint32(buf, 8)
				buf = binary.BigEndian.AppendUint64(buf, uint64(c.ints[col.slot][i]))
			}
		}
	}
	return binary.BigEndian.AppendUint16(buf, 0xffff)
}

// arrayArgs are the unnest upsert's parameters for rows [lo, hi) of c, one
// typed slice per column. The slices alias c (and tbuf for times), so they
// are valid until the next fill.
func arrayArgs(args []any, d *tableDef, c *colset, lo, hi int, tbuf *[][]time.Time) []any {
	args = args[:0]
	for len(*tbuf) < d.nTime {
		*tbuf = append(*tbuf, nil)
	}
	for ci := range d.cols {
		col := &d.cols[ci]
		switch col.typ {
		case colText:
			args = append(args, c.texts[col.slot][lo:hi])
		case colTime:
			tb := (*tbuf)[col.slot][:0]
			for _, ns := range c.times[col.slot][lo:hi] {
				// Rounded down to the microsecond as on the COPY path.
				tb = append(tb, time.UnixMicro(pgMicros(ns)+pgEpochMicros).UTC())
			}
			(*tbuf)[col.slot] = tb
			args = append(args, tb)
		case colFloat:
			args = append(args, c.floats[col.slot][lo:hi])
		case colInt:
			args = append(args, c.ints[col.slot][lo:hi])
		}
	}
	return args
}

// keySet finds rows of one batch that share a table key. It is an open
// addressing hash set reused across batches: a generation number marks the
// live slots, so starting a batch clears nothing.
type keySet struct {
	slots []keySlot
	gen   uint32
}

type keySlot struct {
	a, b int64
	sym  md.SymID
	gen  uint32
	idx  int32
}

func (s *keySet) reset(n int) {
	size := 16
	for size < 2*n {
		size *= 2
	}
	if len(s.slots) < size {
		s.slots = make([]keySlot, size)
		s.gen = 0
	}
	s.gen++
	if s.gen == 0 { // wrapped: every old slot could look live
		clear(s.slots)
		s.gen = 1
	}
}

// put records row i under key (sym, a, b) and returns the row that held
// the key before, or -1.
func (s *keySet) put(sym md.SymID, a, b int64, i int32) int32 {
	h := (uint64(sym)+1)*0x9E3779B97F4A7C15 ^ uint64(a)*0xBF58476D1CE4E5B9 ^ uint64(b)*0x94D049BB133111EB
	h ^= h >> 31
	mask := uint64(len(s.slots) - 1)
	for j := h & mask; ; j = (j + 1) & mask {
		sl := &s.slots[j]
		if sl.gen != s.gen {
			*sl = keySlot{a: a, b: b, sym: sym, gen: s.gen, idx: i}
			return -1
		}
		if sl.sym == sym && sl.a == a && sl.b == b {
			prev := sl.idx
			sl.idx = i
			return prev
		}
	}
}

// dedupe removes from c every row whose key occurs again later in b, so
// the last one wins (a bar re-emitted with Update=true replaces the first
// emission), and returns how many rows it removed. The key is the table's:
// SymID stands for (provider, symbol); times count at the microsecond, the
// precision of timestamptz.
func (c *colset) dedupe(b *md.Batch, ks *keySet, drop *[]bool) int {
	n := c.n
	ks.reset(n)
	if cap(*drop) < n {
		*drop = make([]bool, n)
	}
	d := (*drop)[:n]
	clear(d)
	dups := 0
	switch b.Kind {
	case md.KindBar:
		for i := range b.Bars {
			r := &b.Bars[i]
			// Interval, type and source in one int64: exact (so no two
			// keys collide) for intervals below 2^58 ns, nine years.
			if prev := ks.put(r.Sym, pgMicros(r.Start), r.Interval<<5|int64(r.Type)<<2|int64(r.Source), int32(i)); prev >= 0 {
				d[prev] = true
				dups++
			}
		}
	case md.KindTrade:
		for i := range b.Trades {
			r := &b.Trades[i]
			if prev := ks.put(r.Sym, pgMicros(r.TS), r.TradeID, int32(i)); prev >= 0 {
				d[prev] = true
				dups++
			}
		}
	case md.KindQuote:
		for i := range b.Quotes {
			r := &b.Quotes[i]
			if prev := ks.put(r.Sym, pgMicros(r.TS), int64(r.Seq), int32(i)); prev >= 0 {
				d[prev] = true
				dups++
			}
		}
	case md.KindDerived:
		for i := range b.Derived {
			r := &b.Derived[i]
			if prev := ks.put(r.Sym, pgMicros(r.TS), 0, int32(i)); prev >= 0 {
				d[prev] = true
				dups++
			}
		}
	}
	if dups == 0 {
		return 0
	}
	for _, col := range c.texts {
		compact(col, d)
	}
	for _, col := range c.times {
		compact(col, d)
	}
	for _, col := range c.floats {
		compact(col, d)
	}
	for _, col := range c.ints {
		compact(col, d)
	}
	c.n = n - dups
	return dups
}

func compact[T any](s []T, drop []bool) {
	k := 0
	for i := range drop {
		if !drop[i] {
			s[k] = s[i]
			k++
		}
	}
}
