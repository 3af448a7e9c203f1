package replay

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// ckSink keeps the trades it receives; its checkpoint state is how many.
type ckSink struct {
	mu     sync.Mutex
	trades []md.Trade
	// pace is slept after each batch: it stretches a run that takes
	// checkpoints every few milliseconds over enough of them to land
	// mid-stream, however fast the parse is.
	pace time.Duration
}

// named rewrites each trade's Sym, an id of the job's table, as the low
// bits of its symbol's stable hash (a resumed job interns the symbols in
// another order).
func named(ts []md.Trade, tbl *md.SymbolTable) []md.Trade {
	out := slices.Clone(ts)
	for i := range out {
		out[i].Sym = md.SymID(md.HashSymbol(tbl.Get(out[i].Sym).Symbol) & 0xffff)
	}
	return out
}

func (c *ckSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trades = append(c.trades, b.Trades...)
	if c.pace > 0 {
		time.Sleep(c.pace)
	}
	return nil
}

func (c *ckSink) Snapshot(ctx context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return []byte(strconv.Itoa(len(c.trades))), nil
}

func (c *ckSink) Restore(ctx context.Context, states [][]byte) error { return nil }

type ckStore struct {
	mu  sync.Mutex
	cps []*engine.Checkpoint
}

func (m *ckStore) Save(ctx context.Context, c *engine.Checkpoint) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cps = append(m.cps, c)
	return 1, nil
}

// writeTardis writes n tardis trade rows whose times interleave with the
// other files' (file k of 3 at ts = 3i + k µs), with a two-hour gap after
// two thirds (a jump the rows after it confirm), plain or gzipped.
func writeTardis(t *testing.T, path string, k, n int, gz bool) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w *bufio.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(f)
		w = bufio.NewWriter(zw)
	} else {
		w = bufio.NewWriter(f)
	}
	fmt.Fprintln(w, "exchange,symbol,timestamp,local_timestamp,id,side,price,amount")
	us := int64(1582329602000000)
	for i := range n {
		ts := us + int64(3*i+k)
		if i > 2*n/3 {
			ts += 2 * 3600 * 1e6
		}
		fmt.Fprintf(w, "binance-futures,SYM%d,%d,%d,%d,buy,%d.%d,0.%03d\n", i%3, ts, ts+100, i+1, 9000+i%100, i%10, 1+i%999)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runCk runs the replay of files into a ckSink with checkpoints per ck and
// returns what the sink received and the source.
func runCk(t *testing.T, files []string, ck *engine.CheckpointOptions) ([]md.Trade, *Source) {
	t.Helper()
	return runCkWith(t, files, nil, ck)
}

// runCkWith is runCk with more params for the source.
func runCkWith(t *testing.T, files []string, params map[string]any, ck *engine.CheckpointOptions) ([]md.Trade, *Source) {
	t.Helper()
	p := map[string]any{"path": files, "preset": "tardis_trades"}
	for k, v := range params {
		p[k] = v
	}
	src := componentNode(t, "provider.replay", "src", p)
	var s *Source
	captureSource(src, &s)
	sink := &ckSink{}
	if ck != nil && ck.Interval < time.Second {
		sink.pace = time.Millisecond
	}
	g := &engine.Graph{Nodes: []*engine.Node{src, {ID: "sink", Type: "sink.ck", Kind: engine.KindSink, Accepts: md.KindAny,
		Ports: map[string]md.Kind{}, NewProcessor: func(int) (engine.Processor, error) { return sink, nil }}},
		Edges: []*engine.Edge{{From: "src", To: "sink", Capacity: 4}}}
	tbl := md.NewSymbolTable()
	j, err := engine.New(g, engine.Options{Job: "ck", Checkpoint: ck, Symbols: tbl})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := j.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return named(sink.trades, tbl), s
}

// TestCheckpointResumesEachFileAtItsOffset: a replay of three files (one
// gzipped) checkpointed mid-file resumes from each checkpoint with exactly
// the records an uninterrupted run emits after it (sequence numbers and
// the merge order across files included, across a confirmed time jump),
// and the resumed run reads only the rest of the plain files: it seeks to
// the byte offset instead of reading and skipping what came before.
func TestCheckpointResumesEachFileAtItsOffset(t *testing.T) {
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv"), filepath.Join(dir, "c.csv.gz")}
	const n = 30_000
	var size int64
	for k, f := range files {
		writeTardis(t, f, k, n, filepath.Ext(f) == ".gz")
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
	}
	store := &ckStore{}
	full, _ := runCk(t, files, &engine.CheckpointOptions{Interval: 2 * time.Millisecond, Timeout: time.Minute, Store: store})
	if len(full) != 3*n {
		t.Fatalf("the uninterrupted run emitted %d trades, want %d", len(full), 3*n)
	}
	var mid []*engine.Checkpoint
	for _, cp := range store.cps {
		var p position
		var count int
		for _, nd := range cp.Nodes {
			switch nd.ID {
			case "src":
				if err := json.Unmarshal(nd.Instances[0].State, &p); err != nil {
					t.Fatal(err)
				}
			case "sink":
				count, _ = strconv.Atoi(string(nd.Instances[0].State))
			}
		}
		if p.V != positionVersion || len(p.Files) != 3 || int(p.Seq) != count {
			t.Fatalf("checkpoint %d: position %+v, sink count %d", cp.ID, p, count)
		}
		if count > 0 && count < 3*n && p.Files[0].At.End > 0 && p.Files[1].At.End > 0 {
			mid = append(mid, cp)
		}
	}
	if len(mid) < 2 {
		t.Fatalf("%d of %d checkpoints fell mid-file: too few to test", len(mid), len(store.cps))
	}
	for _, cp := range []*engine.Checkpoint{mid[0], mid[len(mid)/2], mid[len(mid)-1]} {
		var p position
		var count int
		for _, nd := range cp.Nodes {
			if nd.ID == "src" {
				_ = json.Unmarshal(nd.Instances[0].State, &p)
			} else {
				count, _ = strconv.Atoi(string(nd.Instances[0].State))
			}
		}
		rest, src := runCk(t, files, &engine.CheckpointOptions{Interval: time.Hour, Store: &ckStore{}, Restore: cp})
		got := append(slices.Clone(full[:count]), rest...)
		if !slices.Equal(got, full) {
			i := 0
			for i < min(len(got), len(full)) && got[i] == full[i] {
				i++
			}
			t.Fatalf("resumed from checkpoint %d (seq %d, %+v): %d trades, want %d; first difference at %d: %+v, want %+v", cp.ID, p.Seq, p.Files, len(got), len(full), i, got[i], full[i])
		}
		skipped := p.Files[0].At.End + p.Files[1].At.End
		// Besides the rest of the files, a resumed run reads each file's
		// header with the first buffer (at most 256 KiB) before it seeks.
		if read, limit := src.prog.bytes.Load(), size-skipped+3*256<<10; read > limit {
			t.Errorf("resumed from checkpoint %d: read %d bytes of %d; with %d bytes of plain files behind the checkpoint, at most %d", cp.ID, read, size, skipped, limit)
		}
	}
}

// TestCheckpointResumesEveryFormat: the same trades as gzip and zstd CSV,
// JSON lines (plain, gzip, zstd) and Parquet (plain, zstd) in one replay,
// equal times across files merged by path order, resume from checkpoints
// mid-stream exactly: compressed files are decompressed up to their
// offset, Parquet seeks to its row.
func TestCheckpointResumesEveryFormat(t *testing.T) {
	files := variants(t, t.TempDir())
	store := &ckStore{}
	full, _ := runCk(t, files, &engine.CheckpointOptions{Interval: 2 * time.Millisecond, Timeout: time.Minute, Store: store})
	var mid []*engine.Checkpoint
	for _, cp := range store.cps {
		for _, nd := range cp.Nodes {
			if n, _ := strconv.Atoi(string(nd.Instances[0].State)); nd.ID == "sink" && n > 0 && n < len(full) {
				mid = append(mid, cp)
			}
		}
	}
	if len(mid) < 2 {
		t.Fatalf("%d of %d checkpoints fell mid-stream: too few to test", len(mid), len(store.cps))
	}
	for _, cp := range []*engine.Checkpoint{mid[0], mid[len(mid)/2], mid[len(mid)-1]} {
		count := 0
		for _, nd := range cp.Nodes {
			if nd.ID == "sink" {
				count, _ = strconv.Atoi(string(nd.Instances[0].State))
			}
		}
		rest, _ := runCk(t, files, &engine.CheckpointOptions{Interval: time.Hour, Store: &ckStore{}, Restore: cp})
		if got := append(slices.Clone(full[:count]), rest...); !slices.Equal(got, full) {
			t.Fatalf("resumed from checkpoint %d (after %d records): %d records, want %d", cp.ID, count, len(got), len(full))
		}
	}
}
