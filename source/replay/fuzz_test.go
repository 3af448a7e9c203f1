package replay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/tsparse"
)

// fuzzReplay runs a whole provider.replay job over one file and checks what
// comes out: whatever the bytes, the job does not panic, every record
// emitted obeys the number and time rules, and every line is either a record
// or counted (malformed, or skipped as blank).
func fuzzReplay(t *testing.T, name string, data []byte) {
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := replay(t, map[string]any{"path": path, "kind": "trade", "ts_format": "auto", "max_line_bytes": 4096,
		"columns": map[string]any{"ts": "ts", "symbol": "sym", "price": "px", "size": "qty", "side": "side", "trade_id": "id"}})
	if r.err != nil {
		// A CSV without the header columns fails at the start; nothing else may.
		if !strings.Contains(r.err.Error(), "not in the header") && !strings.Contains(r.err.Error(), "header") {
			t.Fatalf("job failed: %v", r.err)
		}
		return
	}
	for _, tr := range r.c.trades {
		if p := md.CheckTrade(&tr); !p.OK() {
			t.Fatalf("emitted %+v: %s", tr, p)
		}
		if tr.TS < tsparse.MinNanos || tr.TS > tsparse.MaxNanos {
			t.Fatalf("emitted time %d out of range", tr.TS)
		}
	}
	lines := int64(strings.Count(string(data), "\n") + 1)
	if n := int64(len(r.c.trades)) + r.job.Status().Nodes[0].Drops["malformed"]; n > lines {
		t.Fatalf("%d records and malformed rows from %d lines", n, lines)
	}
}

// FuzzReplayCSV feeds arbitrary CSV files through the whole source.
func FuzzReplayCSV(f *testing.F) {
	for _, s := range []string{
		"ts,sym,px,qty\n1704205800,A,1.5,2\n1704205801,A,1.25,1\n",
		"ts,sym,px,qty,side,id\n1704205800,A,1.5,2,buy,7\n7258118400,A,1,1,sell,8\n1704205801,A,-5,1,,\n",
		"ts,sym,px,qty\n2300-01-01T00:00:00Z,A,1,1\n9223372036.9,A,1,1\n\"1704205800\",\"A\",\"0x1p3\",1\n",
		"ts,sym,px,qty\n1704205800,A,1e400,NaN\n1704205800,\"A,1,1\n,,,\n",
		"ts,sym,px,qty\n2024-01-02 14:30:00.5+0100,A,1.5,2\n2024-01-02T14:30:00Z,B,0.1,0\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzReplay(t, "f.csv", data) })
}

// FuzzReplayJSONL feeds arbitrary JSON-lines files through the whole source.
func FuzzReplayJSONL(f *testing.F) {
	for _, s := range []string{
		`{"ts":1704205800,"sym":"A","px":1.5,"qty":2}` + "\n" + `{"ts":"1704205801","sym":"A","px":"1.25","qty":"1","side":"buy","id":9}` + "\n",
		`{"ts":7258118400,"sym":"A","px":1,"qty":1}` + "\n" + `{"ts":1704205800,"sym":"A\u0042","px":-1,"qty":1}` + "\n[1,2]\n{\"ts\":",
		`{"ts":"2024-01-02T14:30:00Z","sym":"A","px":0x10,"qty":1}` + "\n" + `{"ts":1e9,"sym":"\ud83d","px":1,"qty":1} x` + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzReplay(t, "f.jsonl", data) })
}
