// Package jobtest runs job tests: files named *_test.yaml next to job files
// that give input records for a job's sources and the records expected at
// named nodes. A test runs the job's own graph — its operators with their
// params, parallelism and edges — with every source replaced by the test's
// records and every sink by a collector, so no real source is read and no
// store, file or connection is touched. `mdp test` is the command line of
// this package.
//
// A test file:
//
//	job: bars.yaml              # the job file, relative to this file (default: the
//	                            # test file's name without _test: bars_test.yaml -> bars.yaml)
//	env: {DATABASE_URL: unused} # variables for ${VAR} interpolation (optional)
//	cases:
//	  - name: two trades, one bar
//	    set: [dag.nodes.bars.params.interval=1m]   # --set overrides (optional)
//	    inputs:                 # per source node id (or id.port for a named port)
//	      src:
//	        kind: trade         # trade or quote; default: what the source produces
//	        records:            # inline, with the field names of JSON-lines output
//	          - {ts: "2024-01-02T14:30:00.1Z", symbol: AAPL, price: 100.5, size: 2}
//	          - {ts: "2024-01-02T14:30:00.9Z", symbol: AAPL, price: 101, size: 1}
//	        # file: trades.jsonl   or records from a JSON-lines file next to this one
//	    expect:                 # per node id (its main output) or id.port; a sink's
//	      bars:                 # records are what it received
//	        - {symbol: AAPL, ts: "2024-01-02T14:30:00Z", open: 100.5, close: 101, volume: 3, trades: 2}
//	    tolerance: 1e-9         # absolute tolerance for numbers (default 0: exact)
//	    ordered: true           # records in this order (default); false: any order
//
// Input fields: trades take ts (RFC 3339 text, or integer ns since the epoch),
// symbol, provider (default "test"), price, size, side (buy, sell), trade_id,
// ingest_ts (default ts), seq (default the record's 1-based position); quotes
// take ts, symbol, provider, bid, bid_size, ask, ask_size, ingest_ts, seq;
// bars take start (or ts), interval, end (default start + interval), symbol,
// provider, open, high, low, close, volume, vwap, trades, update. A source
// with no input emits nothing. Expected records list only the fields
// that matter: a field not written is not compared, and the count and order of
// records must match. Times compare as instants ("…T14:30:00Z" equals
// "…T14:30:00.000000000Z"), numbers within the tolerance, text exactly.
package jobtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/recfmt"
)

// Suffix ends the name of every test file.
const Suffix = "_test.yaml"

// File is a parsed test file.
type File struct {
	// Path is the test file; Job the job file it tests.
	Path string `yaml:"-"`
	Job  string `yaml:"job"`
	// Env are variables for the job's ${VAR} interpolation; they win over
	// the process environment.
	Env   map[string]string `yaml:"env"`
	Cases []Case            `yaml:"cases"`
	// NoChaining runs the cases with engine.Options.NoChaining: every
	// node in goroutines of its own, no edge chained.
	NoChaining bool `yaml:"-"`
}

// Case is one test case.
type Case struct {
	Name      string                      `yaml:"name"`
	Set       []string                    `yaml:"set"`
	Inputs    map[string]Input            `yaml:"inputs"`
	Expect    map[string][]map[string]any `yaml:"expect"`
	Tolerance float64                     `yaml:"tolerance"`
	Ordered   *bool                       `yaml:"ordered"`
}

// Input is the records one source (or one of its ports) emits.
type Input struct {
	Kind    string           `yaml:"kind"`
	Records []map[string]any `yaml:"records"`
	File    string           `yaml:"file"`
}

// Result is the outcome of one case.
type Result struct {
	File string
	Case string
	// Problems explain a failure, one per line; empty when the case passed.
	Problems []string
	// Err is set when the case could not run (a bad test file, a job that
	// does not load or fails).
	Err error
}

// Passed reports whether the case passed.
func (r Result) Passed() bool { return r.Err == nil && len(r.Problems) == 0 }

// Find returns the test files under paths: a file is taken as it is, a
// directory is searched for *_test.yaml, recursively. Sorted.
func Find(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != p && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(d.Name(), Suffix) {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// Load reads and checks a test file. Unknown keys are errors.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	f := &File{Path: path}
	if err := dec.Decode(f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Job == "" {
		f.Job = strings.TrimSuffix(filepath.Base(path), Suffix) + ".yaml"
	}
	if !filepath.IsAbs(f.Job) {
		f.Job = filepath.Join(filepath.Dir(path), f.Job)
	}
	if len(f.Cases) == 0 {
		return nil, fmt.Errorf("%s: no cases", path)
	}
	for i, c := range f.Cases {
		if c.Name == "" {
			return nil, fmt.Errorf("%s: cases[%d]: a case needs a name", path, i)
		}
		if len(c.Expect) == 0 {
			return nil, fmt.Errorf("%s: case %q: expect names no node", path, c.Name)
		}
		for id, in := range c.Inputs {
			if (in.File == "") == (in.Records == nil) {
				return nil, fmt.Errorf("%s: case %q: inputs.%s: give either records or file", path, c.Name, id)
			}
		}
	}
	return f, nil
}

// Run runs every case of f.
func Run(ctx context.Context, f *File) []Result {
	out := make([]Result, 0, len(f.Cases))
	for i := range f.Cases {
		r := Result{File: f.Path, Case: f.Cases[i].Name}
		r.Problems, r.Err = f.runCase(ctx, &f.Cases[i])
		out = append(out, r)
	}
	return out
}

func (f *File) env(k string) (string, bool) {
	if v, ok := f.Env[k]; ok {
		return v, true
	}
	return os.LookupEnv(k)
}

// caseTimeout bounds one case: the inputs are finite, so a case that runs
// longer is stuck (a source of the job left unreplaced cannot happen; a
// deadlock in a component can).
const caseTimeout = time.Minute

func (f *File) runCase(ctx context.Context, c *Case) ([]string, error) {
	doc, err := config.LoadFile(f.Job, config.LoadOptions{Sets: c.Set, Env: f.env})
	if err != nil {
		return nil, fmt.Errorf("load the job: %w", err)
	}
	g, err := doc.Graph()
	if err != nil {
		return nil, fmt.Errorf("the job's graph: %w", err)
	}
	byID := map[string]*engine.Node{}
	for _, n := range g.Nodes {
		byID[n.ID] = n
	}
	// Inputs: one test source per source node, emitting on the ports the
	// test names.
	perSource := map[string]map[string]portInput{}
	for key, in := range c.Inputs {
		id, port, _ := strings.Cut(key, ".")
		n := byID[id]
		if n == nil || n.Kind != engine.KindSource {
			return nil, fmt.Errorf("inputs.%s: the job has no source %q (sources: %s)", key, id, strings.Join(kindIDs(g, engine.KindSource), ", "))
		}
		portKind, ok := n.Ports[port]
		if !ok {
			return nil, fmt.Errorf("inputs.%s: source %q has no port %q", key, id, port)
		}
		kind := portKind
		if in.Kind != "" {
			if kind, err = md.ParseKind(in.Kind); err != nil {
				return nil, fmt.Errorf("inputs.%s.kind: %w", key, err)
			}
			if kind&portKind == 0 {
				return nil, fmt.Errorf("inputs.%s.kind: %s, but that output carries %s", key, kind, portKind)
			}
		}
		rows := in.Records
		if in.File != "" {
			if rows, err = readRecords(filepath.Join(filepath.Dir(f.Path), in.File)); err != nil {
				return nil, fmt.Errorf("inputs.%s.file: %w", key, err)
			}
		}
		recs, err := decodeRecords(kind, rows)
		if err != nil {
			return nil, fmt.Errorf("inputs.%s: %w", key, err)
		}
		if perSource[id] == nil {
			perSource[id] = map[string]portInput{}
		}
		perSource[id][port] = portInput{kind: kind, recs: recs}
	}
	for _, n := range g.Nodes {
		switch n.Kind {
		case engine.KindSource:
			src := &testSource{ports: perSource[n.ID]}
			n.Parallelism = 1
			n.IdleTimeout = 0
			n.NewSource = func(int) (engine.Source, error) { return src, nil }
		case engine.KindSink:
			// A sink only receives: a collector takes its place (never
			// opened, so no store is touched).
			col := &collector{}
			n.Parallelism = 1
			n.NewProcessor = func(int) (engine.Processor, error) { return col, nil }
		}
	}
	// Expectations: a collector per named node (a sink's own collector).
	cols := map[string]*collector{}
	for key := range c.Expect {
		id, port, _ := strings.Cut(key, ".")
		n := byID[id]
		if n == nil {
			return nil, fmt.Errorf("expect.%s: the job has no node %q (nodes: %s)", key, id, strings.Join(kindIDs(g, 0), ", "))
		}
		col := &collector{}
		cols[key] = col
		if n.Kind == engine.KindSink {
			if port != "" {
				return nil, fmt.Errorf("expect.%s: a sink has no output port", key)
			}
			n.NewProcessor = func(int) (engine.Processor, error) { return col, nil }
			continue
		}
		if _, ok := n.Ports[port]; !ok {
			return nil, fmt.Errorf("expect.%s: node %q has no output port %q", key, id, port)
		}
		cid := "expect " + key
		g.Nodes = append(g.Nodes, &engine.Node{ID: cid, Type: "jobtest.expect", Kind: engine.KindSink, Accepts: md.KindAny,
			Ports: map[string]md.Kind{}, NewProcessor: func(int) (engine.Processor, error) { return col, nil }})
		g.Edges = append(g.Edges, &engine.Edge{From: id, FromPort: port, To: cid})
	}
	job, err := engine.New(g, engine.Options{Job: doc.Name, Logger: slog.New(slog.DiscardHandler), NoChaining: f.NoChaining})
	if err != nil {
		return nil, fmt.Errorf("build the job: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, caseTimeout)
	defer cancel()
	if err := job.Run(ctx); err != nil {
		return nil, fmt.Errorf("the job failed: %w", err)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("the job did not finish within %s", caseTimeout)
	}
	var problems []string
	for _, key := range slices.Sorted(maps.Keys(c.Expect)) {
		ordered := c.Ordered == nil || *c.Ordered
		problems = append(problems, compare(key, c.Expect[key], cols[key].records(), c.Tolerance, ordered)...)
	}
	return problems, nil
}

func kindIDs(g *engine.Graph, k engine.NodeKind) []string {
	var ids []string
	for _, n := range g.Nodes {
		if k == 0 || n.Kind == k {
			ids = append(ids, n.ID)
		}
	}
	return ids
}

// readRecords reads a JSON-lines file of records.
func readRecords(path string) ([]map[string]any, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var out []map[string]any
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// record is one decoded input record: a trade or a quote with its
// instrument's text (interned when the source runs).
type record struct {
	provider, symbol string
	trade            md.Trade
	quote            md.Quote
	bar              md.Bar
}

var (
	tradeFields = []string{"ts", "symbol", "provider", "price", "size", "side", "trade_id", "ingest_ts", "seq", "type"}
	quoteFields = []string{"ts", "symbol", "provider", "bid", "bid_size", "ask", "ask_size", "ingest_ts", "seq", "type"}
	barFields   = []string{"ts", "start", "end", "interval", "symbol", "provider", "open", "high", "low", "close", "volume", "vwap", "trades", "partial", "update", "type"}
)

func decodeRecords(kind md.Kind, rows []map[string]any) ([]record, error) {
	var fields []string
	switch kind {
	case md.KindTrade:
		fields = tradeFields
	case md.KindQuote:
		fields = quoteFields
	case md.KindBar:
		fields = barFields
	default:
		return nil, fmt.Errorf("inputs of kind %s are not supported: give trades, quotes or bars", kind)
	}
	out := make([]record, 0, len(rows))
	for i, m := range rows {
		var errs []error
		for k := range m {
			if !slices.Contains(fields, k) {
				errs = append(errs, fmt.Errorf("unknown field %q (a %s has %s)", k, kind, strings.Join(fields, ", ")))
			}
		}
		num := func(k string) float64 {
			v, ok := m[k]
			if !ok {
				return 0
			}
			f, err := toFloat(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
			return f
		}
		ts := func(k string, def int64) int64 {
			v, ok := m[k]
			if !ok {
				return def
			}
			t, err := toTime(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
			return t
		}
		str := func(k, def string) string {
			v, ok := m[k]
			if !ok {
				return def
			}
			return fmt.Sprint(v)
		}
		r := record{provider: str("provider", "test"), symbol: str("symbol", "")}
		if r.symbol == "" {
			errs = append(errs, errors.New("symbol is missing"))
		}
		_, hasTS := m["ts"]
		_, hasStart := m["start"]
		if !hasTS && !(kind == md.KindBar && hasStart) {
			errs = append(errs, errors.New("ts is missing"))
		}
		t := ts("ts", 0)
		seq := uint64(i + 1)
		if _, ok := m["seq"]; ok {
			seq = uint64(num("seq"))
		}
		switch kind {
		case md.KindBar:
			iv, err := md.ParseDuration(str("interval", ""))
			if err != nil || iv <= 0 {
				errs = append(errs, fmt.Errorf("interval: want a duration such as 1s or 1m, got %q", str("interval", "")))
			}
			start := ts("start", t)
			b, _ := m["update"].(bool)
			p, _ := m["partial"].(bool)
			r.bar = md.Bar{Start: start, End: ts("end", start+int64(iv)), Interval: int64(iv), Open: num("open"), High: num("high"),
				Low: num("low"), Close: num("close"), Volume: num("volume"), VWAP: num("vwap"), Trades: int64(num("trades")), Update: b, Partial: p}
		case md.KindTrade:
			r.trade = md.Trade{TS: t, Ingest: ts("ingest_ts", t), Price: num("price"), Size: num("size"),
				TradeID: int64(num("trade_id")), Seq: seq, Side: md.ParseSide(str("side", ""))}
		default:
			r.quote = md.Quote{TS: t, Ingest: ts("ingest_ts", t), Bid: num("bid"), BidSize: num("bid_size"),
				Ask: num("ask"), AskSize: num("ask_size"), Seq: seq}
		}
		if len(errs) > 0 {
			return nil, fmt.Errorf("record %d: %w", i+1, errors.Join(errs...))
		}
		out = append(out, r)
	}
	return out, nil
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case float64:
		return x, nil
	case string:
		return strconv.ParseFloat(x, 64)
	}
	return 0, fmt.Errorf("want a number, got %v", v)
}

// toTime reads RFC 3339 text or integer ns since the epoch.
func toTime(v any) (int64, error) {
	switch x := v.(type) {
	case string:
		return md.ParseTime(x)
	case time.Time:
		return x.UnixNano(), nil
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case uint64:
		return int64(x), nil
	case float64:
		if x == math.Trunc(x) {
			return int64(x), nil
		}
	}
	return 0, fmt.Errorf("want RFC 3339 text or integer ns, got %v", v)
}

// portInput is what a test source emits on one port.
type portInput struct {
	kind md.Kind
	recs []record
}

// testSource emits the test's records, in batches, on its ports.
type testSource struct {
	ports map[string]portInput
}

func (s *testSource) Run(ctx context.Context, out *engine.Output) error {
	for _, port := range slices.Sorted(maps.Keys(s.ports)) {
		kind := s.ports[port].kind
		var b *md.Batch
		for _, r := range s.ports[port].recs {
			if b == nil {
				b = out.NewBatch(kind)
			}
			sym := out.Symbols().Intern(r.provider, r.symbol)
			switch kind {
			case md.KindTrade:
				t := r.trade
				t.Sym = sym
				b.Trades = append(b.Trades, t)
			case md.KindQuote:
				q := r.quote
				q.Sym = sym
				b.Quotes = append(b.Quotes, q)
			default:
				br := r.bar
				br.Sym = sym
				b.Bars = append(b.Bars, br)
			}
			if b.Len() >= md.DefaultBatchSize {
				if err := out.EmitTo(port, b); err != nil {
					return err
				}
				b = nil
			}
		}
		if b != nil {
			if err := out.EmitTo(port, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// collector keeps every record it receives as its JSON-lines form.
type collector struct {
	mu   sync.Mutex
	recs []map[string]any
}

func (c *collector) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	syms := out.Symbols().Snapshot()
	var line []byte
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range b.Len() {
		line = recfmt.AppendJSON(line[:0], b, i, syms)
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			return fmt.Errorf("jobtest: decode %s: %w", line, err)
		}
		c.recs = append(c.recs, m)
	}
	return nil
}

func (c *collector) records() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recs
}
