package busfmt

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// sourceSpec is a bus source spec declaring SourceFields, for params.
func sourceSpec() *component.Spec {
	fields := append(SourceFields(), component.Field{Name: "kind", Type: component.String, Default: "trade", Enum: []string{"trade", "quote", "bar"}})
	return &component.Spec{Type: "provider.bustest", Kind: engine.KindSource, Fields: fields}
}

func sourceReader(t testing.TB, params map[string]any) (*Reader, *engine.NodeContext, error) {
	t.Helper()
	p, err := component.NewParams(sourceSpec(), params)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := md.ParseKind(p.String("kind"))
	cfg, err := SourceConfigFrom(p, k)
	if err != nil {
		return nil, nil, err
	}
	_, nc, _ := engine.NewDetachedOutput(nil, 1)
	r, err := NewSourceReader(nc, cfg)
	return r, nc, err
}

// TestJSONAndCSVRoundTrip: what the bus sinks write in json and csv reads
// back with every field equal (symbols by name), for every kind.
func TestJSONAndCSVRoundTrip(t *testing.T) {
	st, a, b := testSyms(t)
	trades := md.NewBatch(md.KindTrade)
	trades.Trades = []md.Trade{
		{TS: 1_700_000_000_123_456_789, Ingest: 1_700_000_000_200_000_000, Price: 42000.5, Size: 0.001, TradeID: 7, Seq: 1, Sym: a, Side: md.SideBuy},
		{TS: 1_700_000_000_223_456_789, Ingest: 1_700_000_000_223_456_790, Price: 0.1, Size: 1e-8, TradeID: -1, Seq: 2, Sym: b, Side: md.SideSell},
		{TS: 1_700_000_001_000_000_000, Ingest: 1_700_000_001_000_000_000, Price: 1, Size: 3, Sym: a, Side: md.SideUnknown},
	}
	bars := md.NewBatch(md.KindBar)
	bars.Bars = []md.Bar{
		{Start: 1_700_000_000e9, End: 1_700_000_001e9, Interval: 1e9, Open: 1, High: 2, Low: 0.5, Close: 1.5, Volume: 10.25, VWAP: 1.2, Trades: 4, Sym: a},
		{Start: 5, End: 99, Interval: 100, Open: 1, High: 1, Low: 1, Close: 1, Volume: 0, VWAP: 1, Trades: 100, Sym: b,
			Type: md.BarTick, Source: md.FromMid, LabelEnd: true, Update: true},
	}
	for _, in := range []*md.Batch{trades, quoteBatch(a, b), bars} {
		for _, f := range []Format{JSON, CSV} {
			t.Run(in.Kind.String()+"/"+f.String(), func(t *testing.T) {
				msg, err := NewWriter(f).Message(in, st.Snapshot())
				if err != nil {
					t.Fatal(err)
				}
				r, nc, err := sourceReader(t, map[string]any{"format": f.String(), "kind": in.Kind.String()})
				if err != nil {
					t.Fatal(err)
				}
				out := md.NewBatch(in.Kind)
				for range 2 { // twice: the second reuses the CSV header's columns
					out.Reset()
					if err := r.Decode(msg, out); err != nil {
						t.Fatal(err)
					}
				}
				remap := func(id md.SymID) md.SymID {
					g := nc.Symbols.Get(id)
					back, _ := st.Lookup(g.Provider, g.Symbol)
					return back
				}
				switch in.Kind {
				case md.KindTrade:
					for i := range out.Trades {
						out.Trades[i].Sym = remap(out.Trades[i].Sym)
					}
					eq(t, out.Trades, in.Trades)
				case md.KindQuote:
					for i := range out.Quotes {
						out.Quotes[i].Sym = remap(out.Quotes[i].Sym)
					}
					eq(t, out.Quotes, in.Quotes)
				case md.KindBar:
					for i := range out.Bars {
						out.Bars[i].Sym = remap(out.Bars[i].Sym)
					}
					eq(t, out.Bars, in.Bars)
				}
			})
		}
	}
}

// TestMappingForeignJSON reads Binance-style trade events through a
// mapping, as provider.replay's columns would.
func TestMappingForeignJSON(t *testing.T) {
	r, nc, err := sourceReader(t, map[string]any{"format": "json", "ts_format": "unix_ms", "provider": "binance",
		"mapping": map[string]any{"ts": "T", "symbol": "s", "price": "p", "size": "q", "trade_id": "t"}})
	if err != nil {
		t.Fatal(err)
	}
	msg := `{"e":"trade","E":1700000000124,"s":"BTCUSDT","t":12345,"p":"42000.10","q":"0.0150","T":1700000000123,"m":true,"M":true}
{"e":"trade","s":"BTCUSDT","t":12346,"p":"42000.20","q":"0.5","T":1700000000125,"nested":{"a":[1,2]}}
{"e":"trade","s":"BTCUSDT","t":12347,"p":"-1","q":"0.5","T":1700000000126}
{"e":"trade","s":"BTCUSDT","t":12348,"q":"0.5","T":1700000000126}
not json
`
	b := md.NewBatch(md.KindTrade)
	err = r.Decode([]byte(msg), b)
	var re *RowsError
	if !errors.As(err, &re) || re.Refused != 3 {
		t.Fatalf("err %v", err)
	}
	sym, ok := nc.Symbols.Lookup("binance", "BTCUSDT")
	if !ok {
		t.Fatal("symbol not interned under binance")
	}
	want := []md.Trade{
		{TS: 1_700_000_000_123e6, Ingest: 1_700_000_000_123e6, Price: 42000.10, Size: 0.015, TradeID: 12345, Sym: sym},
		{TS: 1_700_000_000_125e6, Ingest: 1_700_000_000_125e6, Price: 42000.20, Size: 0.5, TradeID: 12346, Sym: sym},
	}
	eq(t, b.Trades, want)
	if d := nc.Stats.Drops()["malformed"]; d != 3 {
		t.Fatalf("malformed drops %d, want 3", d)
	}
	counts := nc.Stats.Counters()
	if counts["malformed_bad_number"] != 1 || counts["malformed_missing_field"] != 1 || counts["malformed_syntax"] != 1 {
		t.Fatalf("counters %v", counts)
	}
	if r.total.Load() != 3 {
		t.Fatalf("metric %d", r.total.Load())
	}
}

func TestCSVMessageProblems(t *testing.T) {
	r, nc, err := sourceReader(t, map[string]any{"format": "csv"})
	if err != nil {
		t.Fatal(err)
	}
	b := md.NewBatch(md.KindTrade)
	if err := r.Decode([]byte("provider,symbol,when\nx,y,z\n"), b); err == nil || !strings.Contains(err.Error(), `column "ts" (for ts) is not in the header`) {
		t.Fatalf("header: %v", err)
	}
	if nc.Stats.Counters()["malformed_bad_header"] != 1 {
		t.Fatalf("counters %v", nc.Stats.Counters())
	}
	msg := "provider,symbol,ts,ingest_ts,price,size,side,trade_id,seq\nx,y,2024-01-02T00:00:00Z,,1.5,2,buy,1,1\nx,y\nx,y,yesterday,,1,1,buy,1,2\n"
	err = r.Decode([]byte(msg), b)
	var re *RowsError
	if !errors.As(err, &re) || re.Refused != 2 || b.Len() != 1 {
		t.Fatalf("err %v, kept %d", err, b.Len())
	}
	if c := nc.Stats.Counters(); c["malformed_short_row"] != 1 || c["malformed_invalid_field"] != 1 {
		t.Fatalf("counters %v", c)
	}
}

func TestSourceConfigErrors(t *testing.T) {
	for _, c := range []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{"format": "mdp", "mapping": map[string]any{"ts": "T"}}, "mapping applies only to format json or csv"},
		{map[string]any{"format": "json", "ts_format": "unix_ms"}, "ts_format applies only with mapping"},
		{map[string]any{"format": "json", "kind": "bar", "mapping": map[string]any{"ts": "T"}}, "a mapping reads trades or quotes"},
		{map[string]any{"format": "json", "mapping": map[string]any{"ts": "T", "price": "p"}, "symbol": "X"}, "a trade mapping needs a column for size"},
		{map[string]any{"format": "json", "mapping": map[string]any{"ts": "T", "price": "p", "size": "q"}}, "map mapping.symbol or set a constant symbol"},
		{map[string]any{"format": "json", "mapping": map[string]any{"ts": "T", "prize": "p"}}, `unknown record field "prize"; did you mean "price"?`},
		{map[string]any{"format": "json", "mapping": map[string]any{"ts": 0, "price": "p", "size": "q", "symbol": "s"}}, "JSON names fields by key"},
	} {
		_, _, err := sourceReader(t, c.params)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.params, err, c.want)
		}
	}
}

// FuzzMappingJSON: any message through a mapping either decodes into
// valid trades or is counted; it never panics, and every record kept
// passes md.CheckTrade.
func FuzzMappingJSON(f *testing.F) {
	f.Add([]byte(`{"T":1700000000123,"s":"BTCUSDT","p":"42000.1","q":"0.5","t":1}` + "\n" + `{"T":"x"}`))
	f.Add([]byte(`{"s":"A\u00e9\"","p":1e3,"q":0,"T":-1,"n":{"x":[1,{"y":"}"}]}}`))
	f.Add([]byte("{\"T\":1,\"s\":\"\\ud83d\\ude00\",\"p\":1,\"q\":1}\r\n\n  \n{}"))
	f.Add([]byte(`{"T":1,"s":"S","p":"NaN","q":"0x1p3"}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, nc, err := sourceReader(t, map[string]any{"format": "json", "ts_format": "unix_ms",
			"mapping": map[string]any{"ts": "T", "symbol": "s", "price": "p", "size": "q", "trade_id": "t", "side": "m"}})
		if err != nil {
			t.Fatal(err)
		}
		b := md.NewBatch(md.KindTrade)
		err = r.Decode(msg, b)
		var re *RowsError
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		refused := int64(0)
		if re != nil {
			refused = int64(re.Refused)
		}
		if d := nc.Stats.Drops()["malformed"]; d != refused {
			t.Fatalf("drops %d, refused %d", d, refused)
		}
		for i := range b.Trades {
			if p := md.CheckTrade(&b.Trades[i]); !p.OK() {
				t.Fatalf("kept a bad trade %+v: %v", b.Trades[i], p)
			}
		}
		if !reflect.DeepEqual(b.Kind, md.KindTrade) {
			t.Fatal("kind changed")
		}
	})
}
