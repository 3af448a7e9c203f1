package busfmt

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/rowmap"
)

// mappingParams are the names a bus source gives the layout params: its
// column mapping is "mapping", and there is no preset, header or
// delimiter (a CSV message starts with a header line and uses commas).
var mappingParams = rowmap.ParamNames{Kind: "kind", Columns: "mapping", Symbol: "symbol", Provider: "provider",
	TSFormat: "ts_format", Timezone: "timezone", What: "mapping", DefaultProvider: "bus"}

// SourceFields are the params every bus source declares for the encoding
// of its messages (besides kind, which each source declares itself).
func SourceFields() []component.Field {
	return []component.Field{
		{Name: "format", Type: component.String, Default: "mdp", Enum: FormatNames,
			Description: "Message encoding: mdp (the binary frame of one batch, README \"The mdp frame\"), json (JSON lines) or csv (a header line, then rows). " +
				"Without mapping, json and csv are the records as sink.file and the bus sinks write them (every field, RFC 3339 times); " +
				"with mapping, any flat JSON objects or CSV columns (trades and quotes)."},
		{Name: "mapping", Type: component.Map,
			Description: "With format json or csv: record field -> JSON key or CSV header name, as provider.replay's columns: ts, ingest_ts, symbol, provider, " +
				"price, size, side, trade_id (trades), bid, bid_size, ask, ask_size (quotes). Trades need ts, price, size; quotes need ts, bid, ask.",
			Example: map[string]any{"ts": "T", "symbol": "s", "price": "p", "size": "q"}},
		{Name: "ts_format", Type: component.String,
			Description: "With mapping: how ts and ingest_ts are written, as provider.replay's ts_format (unix_s, unix_ms, unix_us, unix_ns, rfc3339, a Go layout, or auto)."},
		{Name: "timezone", Type: component.String,
			Description: "With mapping: zone of text timestamps without an offset (IANA name or +02:00). Default UTC."},
		{Name: "symbol", Type: component.String,
			Description: "With mapping: constant symbol for messages without a symbol field."},
		{Name: "provider", Type: component.String,
			Description: "With mapping: provider the symbols are interned under. Default: the mapped provider field, else bus."},
		{Name: "on_error", Type: component.String, Default: "drop", Enum: OnErrorNames,
			Description: "Malformed messages and rows, as provider.replay's: drop (count and log), dead_letter (also append them to dead_letter_path), " +
				"fail (stop the job at the first one, with an error naming the reason and where the message was read). " +
				"Under drop and dead_letter the message is acknowledged or committed like a good one; under fail it is not."},
		{Name: "dead_letter_path", Type: component.String, Path: true,
			Description: "JSON-lines file that on_error: dead_letter appends to: per refused mdp frame, the bus, topic/subject/queue/stream, " +
				"its position where the bus has one (partition and offset, seq, id), reason and the frame in base64 (raw_base64); " +
				"per refused json or csv row, the same with its line in the message and its text (row). At most 4 KiB of a message " +
				"or row is kept (raw_bytes then gives its length)."},
	}
}

// SourceConfig is a bus source's decoded encoding params.
type SourceConfig struct {
	Format Format
	Kind   md.Kind
	// Layout maps JSON keys or CSV columns to record fields (json and csv).
	Layout *rowmap.Layout
	// OnError is the on_error policy; DeadLetterPath its file.
	OnError        OnError
	DeadLetterPath string
}

// SourceConfigFrom reads the SourceFields params of a source of kind k;
// errors name the param (call it from the spec's Validate too).
func SourceConfigFrom(p *component.Params, k md.Kind) (SourceConfig, error) {
	f, err := ParseFormat(p.String("format"))
	if err != nil {
		return SourceConfig{}, p.Errorf("format", "%v", err)
	}
	c := SourceConfig{Format: f, Kind: k, DeadLetterPath: p.String("dead_letter_path")}
	switch p.String("on_error") {
	case "dead_letter":
		c.OnError = DeadLetter
	case "fail":
		c.OnError = Fail
	}
	if c.OnError == DeadLetter && c.DeadLetterPath == "" {
		return c, p.Errorf("dead_letter_path", "on_error: dead_letter needs dead_letter_path (a JSON-lines file)")
	}
	if p.Has("dead_letter_path") && c.OnError != DeadLetter {
		return c, p.Errorf("dead_letter_path", "dead_letter_path applies only with on_error: dead_letter")
	}
	mapped := p.Has("mapping")
	if !mapped {
		for _, n := range []string{"ts_format", "timezone", "symbol", "provider"} {
			if p.Has(n) {
				return c, p.Errorf(n, "%s applies only with mapping", n)
			}
		}
	}
	switch {
	case f == MDP && mapped:
		return c, p.Errorf("mapping", "mapping applies only to format json or csv")
	case f == MDP:
	case k == md.KindDerived:
		return c, p.Errorf("format", "derived records travel in format mdp only")
	case mapped && k == md.KindBar:
		return c, p.Errorf("mapping", "a mapping reads trades or quotes; bars are read in mdp's own json or csv")
	case mapped:
		c.Layout, err = rowmap.Resolve(p, mappingParams)
		if err != nil {
			return c, err
		}
		if f == JSON {
			if _, err := rowmap.NewJSONScanner(c.Layout); err != nil {
				return c, p.Errorf("mapping", "%v", err)
			}
		}
	default:
		c.Layout = rowmap.OwnLayout(k)
	}
	return c, nil
}

// RowsError reports rows of a json or csv message that were refused (the
// message's other rows were kept).
type RowsError struct {
	Refused int    // rows refused
	First   string // why the first was refused
	Reason  string // its counter reason
	Line    int    // its line in the message (from 1)
}

func (e *RowsError) Error() string {
	return fmt.Sprintf("%d malformed row(s); the first: %s", e.Refused, e.First)
}

// rowReason is the counter reason of a refused row.
func rowReason(p rowmap.Problem) string {
	switch p {
	case rowmap.ProbMissing:
		return "missing_field"
	case rowmap.ProbInvalid:
		return "invalid_field"
	case rowmap.ProbFields:
		return "short_row"
	case rowmap.ProbNumber:
		return "bad_number"
	}
	return "syntax"
}

// rows decodes json and csv messages with a layout.
type rows struct {
	kind   md.Kind
	lay    *rowmap.Layout
	dec    *rowmap.Decoder
	json   *rowmap.JSONScanner
	csv    rowmap.CSVSplitter
	header []byte // the last CSV header, whose columns are cols
	cols   []rowmap.SlotCol
	maxCol int
	vals   rowmap.Vals
	rerr   rowmap.RowErr
}

// NewSourceReader returns a reader of cfg's format, interning into nc's
// symbol table and counting refusals on nc's stats and metrics like
// NewReader: drops{reason=malformed} per refused message (mdp) or row (json,
// csv), and a status counter malformed_<reason>.
//
// Under on_error: dead_letter it opens the dead-letter file; the source
// calls Close in Cleanup. Malformed applies the policy.
func NewSourceReader(nc *engine.NodeContext, cfg SourceConfig) (*Reader, error) {
	r := NewReader(nc)
	r.format = cfg.Format
	r.mal.policy, r.mal.path = cfg.OnError, cfg.DeadLetterPath
	r.keepRows = cfg.OnError == DeadLetter
	if err := r.mal.open(); err != nil {
		return nil, err
	}
	if cfg.Format != MDP {
		rw := &rows{kind: cfg.Kind, lay: cfg.Layout, dec: rowmap.NewDecoder(cfg.Layout, nc.Symbols, nil), csv: rowmap.CSVSplitter{Delim: ','}}
		if cfg.Format == JSON {
			var err error
			if rw.json, err = rowmap.NewJSONScanner(cfg.Layout); err != nil {
				return nil, fmt.Errorf("mapping: %w", err)
			}
		}
		r.rows = rw
	}
	return r, nil
}

// decodeRows appends the rows of a json or csv message to b.
func (r *Reader) decodeRows(msg []byte, b *md.Batch) error {
	rw := r.rows
	var bad *RowsError
	whole, lineNo := msg, 0
	r.refused = r.refused[:0]
	var line []byte
	refuse := func(e *rowmap.RowErr, reason string) {
		if reason == "" {
			reason = rowReason(e.Prob)
		}
		if bad == nil {
			bad = &RowsError{First: e.Reason(), Reason: reason, Line: lineNo}
		}
		bad.Refused++
		if r.st != nil {
			r.st.Count("malformed_"+reason, 1)
		}
		if r.keepRows {
			text := line
			if reason == "bad_header" {
				text = whole
			}
			row := refusedRow{line: lineNo, reason: reason, size: len(text), whole: reason == "bad_header"}
			row.text = append([]byte(nil), text[:min(len(text), MaxDeadLetterBytes)]...)
			r.refused = append(r.refused, row)
		}
	}
	first := true
	for len(msg) > 0 {
		lineNo++
		i := bytes.IndexByte(msg, '\n')
		if i < 0 {
			line, msg = msg, nil
		} else {
			line, msg = msg[:i], msg[i+1:]
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if r.format == CSV {
			if first {
				first = false
				if err := rw.csvHeader(line); err != nil {
					rw.rerr = rowmap.RowErr{Prob: rowmap.ProbSyntax, Msg: "header: " + err.Error()}
					refuse(&rw.rerr, "bad_header")
					break
				}
				continue
			}
			if p := rw.csv.Split(line, rw.maxCol+1); p != "" {
				rw.rerr = rowmap.RowErr{Prob: rowmap.ProbSyntax, Msg: p}
				refuse(&rw.rerr, "")
				continue
			}
			if len(rw.csv.Fields) <= rw.maxCol {
				rw.rerr = rowmap.RowErr{Prob: rowmap.ProbFields, Have: len(rw.csv.Fields), Want: rw.maxCol + 1}
				refuse(&rw.rerr, "")
				continue
			}
			for _, sc := range rw.cols {
				rw.vals[sc.Slot] = rw.csv.Fields[sc.Col]
			}
		} else if p := rw.json.Scan(line, &rw.vals); p != "" {
			rw.rerr = rowmap.RowErr{Prob: rowmap.ProbSyntax, Msg: p}
			refuse(&rw.rerr, "")
			continue
		}
		if !rw.add(b) && rw.rerr.Prob != rowmap.ProbNone {
			refuse(&rw.rerr, "")
		}
	}
	if bad == nil {
		return nil
	}
	if r.st != nil {
		r.st.Drop("malformed", int64(bad.Refused))
	}
	r.total.Add(int64(bad.Refused))
	return bad
}

// csvHeader resolves the mapping against a message's header line; the
// columns of the previous message's header are reused when it is the same.
func (rw *rows) csvHeader(line []byte) error {
	if rw.header != nil && bytes.Equal(line, rw.header) {
		return nil
	}
	rw.header = nil
	if p := rw.csv.Split(line, 1<<20); p != "" {
		return errors.New(p)
	}
	var err error
	if rw.cols, rw.maxCol, err = rw.lay.CSVColumns(rw.csv.Fields); err != nil {
		return err
	}
	rw.header = append(rw.header[:0:0], line...)
	return nil
}

// add decodes rw.vals onto b; false when the row was refused (rw.rerr set)
// or skipped.
func (rw *rows) add(b *md.Batch) bool {
	rw.rerr.Prob = rowmap.ProbNone
	switch rw.kind {
	case md.KindTrade:
		n := len(b.Trades)
		b.Trades = append(b.Trades, md.Trade{})
		if !rw.dec.Trade(&rw.vals, &b.Trades[n], &rw.rerr) {
			b.Trades = b.Trades[:n]
			return false
		}
	case md.KindQuote:
		n := len(b.Quotes)
		b.Quotes = append(b.Quotes, md.Quote{})
		if !rw.dec.Quote(&rw.vals, &b.Quotes[n], &rw.rerr) {
			b.Quotes = b.Quotes[:n]
			return false
		}
	case md.KindBar:
		n := len(b.Bars)
		b.Bars = append(b.Bars, md.Bar{})
		if !rw.dec.Bar(&rw.vals, &b.Bars[n], &rw.rerr) {
			b.Bars = b.Bars[:n]
			return false
		}
	}
	return true
}
