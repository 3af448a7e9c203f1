package scaleout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/md"
)

// workerFileJob is a job whose worker writes what it makes to a CSV file
// (returned), over an embedded server with two partitions: the trades it
// reads, or with bars their 1 s bars.
func workerFileJob(t *testing.T, name string, bars bool) (*config.Document, string) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "out.csv")
	mid, edges := "", "    - [src, sink]\n"
	if bars {
		mid = "    - id: bars\n      type: operator.bars\n      params: {interval: 1s}\n"
		edges = "    - [src, bars]\n    - [bars, sink]\n"
	}
	src := fmt.Sprintf(`mode: dag
name: %s
dag:
  nodes:
    - id: src
      type: provider.synthetic
      params: {model: bench, symbol_count: 2, n: 10, seed: 5}
%s    - id: sink
      type: sink.file
      params: {path: %q, format: csv}
  edges:
%sscaleout: {nats: embedded, partitions: 2, store: %q, sync: interval}
`, name, mid, out, edges, filepath.Join(dir, "nats"))
	doc, err := config.LoadBytes("job.yaml", []byte(src), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return doc, out
}

// readerFixture is the fixture of the reader tests: workerFileJob's job
// (with bars or not), the file its worker writes, its stream, empty, and
// the symbol table of the frames a test publishes by hand (one symbol,
// A).
func readerFixture(t *testing.T, ctx context.Context, bars bool) (*config.Document, string, names, jetstream.JetStream, jetstream.Stream, []md.Instrument) {
	t.Helper()
	doc, out := workerFileJob(t, "so-reader", bars)
	n := namesOf(doc.Name)
	_, js := testStream(t, doc, newPublisher(nil, n, doc.Scaleout.Partitions))
	stream, err := ensureStream(ctx, js, n, doc.Scaleout, false)
	if err != nil {
		t.Fatal(err)
	}
	st := md.NewSymbolTable()
	st.Intern("x", "A")
	return doc, out, n, js, stream, st.Snapshot()
}

// framePublisher publishes hand-cut trade frames of partition 0 with the
// ingest's message ids: trade i has price i.
type framePublisher struct {
	t    *testing.T
	ctx  context.Context
	js   jetstream.JetStream
	n    names
	syms []md.Instrument
	seqs []uint64 // stream sequence of each frame published
}

// frame publishes records a…b of partition 0 as a run of epoch e would.
func (f *framePublisher) frame(e uint64, a, b int64) {
	f.t.Helper()
	batch := &md.Batch{Kind: md.KindTrade}
	for i := a; i <= b; i++ {
		batch.Trades = append(batch.Trades, md.Trade{TS: 1_700_000_000_000_000_000 + i*int64(time.Millisecond), Price: float64(i), Size: 1, TradeID: i})
	}
	var enc busfmt.Encoder
	data, err := enc.AppendFrame(nil, batch, f.syms)
	if err != nil {
		f.t.Fatal(err)
	}
	id := string(appendMsgID(nil, e, 0, a, b))
	ack, err := f.js.PublishMsg(f.ctx, &nats.Msg{Subject: f.n.subject(0), Data: data}, jetstream.WithMsgID(id))
	if err != nil {
		f.t.Fatal(err)
	}
	f.seqs = append(f.seqs, ack.Sequence)
}

// end publishes the end marker to both partitions.
func (f *framePublisher) end() {
	f.t.Helper()
	for k := range 2 {
		if _, err := f.js.Publish(f.ctx, f.n.subject(k), appendMarker(nil, markerEnd, md.MaxTime)); err != nil {
			f.t.Fatal(err)
		}
	}
}

// TestReaderDropsWhatItRead checks the reader's trimming by record
// number: a frame wholly below the partition's next record is dropped, a
// frame overlapping it is read from that record on, and one starting past
// it is a gap (RetentionError), as before.
func TestReaderDropsWhatItRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	doc, out, n, js, stream, syms := readerFixture(t, ctx, false)
	f := &framePublisher{t: t, ctx: ctx, js: js, n: n, syms: syms}

	// A first run publishes records 0-9 and crashes; a re-read (epoch
	// 20) cuts its frames differently: 0-4 (read already), 3-12 (3-9 read
	// already), 13-19, then its end markers.
	f.frame(1, 0, 9)
	f.frame(20, 0, 4)
	f.frame(20, 3, 12)
	f.frame(20, 13, 19)
	f.end()
	r := newReader(js, n, []int{0, 1})
	if err := workerRun(t, ctx, doc, r); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	col := -1
	for i, h := range strings.Split(lines[0], ",") {
		if h == "price" {
			col = i
		}
	}
	if col < 0 {
		t.Fatalf("no price column in %q", lines[0])
	}
	var prices []string
	for _, l := range lines[1:] {
		prices = append(prices, strings.Split(l, ",")[col])
	}
	want := make([]string, 20)
	for i := range want {
		want[i] = fmt.Sprint(i)
	}
	if strings.Join(prices, " ") != strings.Join(want, " ") {
		t.Fatalf("the worker wrote prices %v, want 0…19 once each in order", prices)
	}
	var dup int64
	for _, pp := range r.progress.snapshot() {
		if pp.Partition == 0 {
			dup = pp.Duplicates
		}
	}
	if dup != 5+7 {
		t.Fatalf("duplicates counted %d, want 12 (0-4 and 3-9)", dup)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&lagCollector{job: doc.Name, r: r, log: slog.New(slog.DiscardHandler)})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "mdp_scaleout_duplicate_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "partition" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	if got["0"] != 12 || got["1"] != 0 || len(got) != 2 {
		t.Fatalf("mdp_scaleout_duplicate_records_total by partition %v, want 0: 12, 1: 0", got)
	}

	// A frame starting past the next record is a gap, as before.
	if err := stream.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	f.seqs = nil
	f.frame(2, 0, 9) // another epoch: the stream's duplicate window holds 1:0:0:9
	f.frame(2, 12, 15)
	f.end()
	err = workerRun(t, ctx, doc, newReader(js, n, []int{0, 1}))
	var re *RetentionError
	if !errors.As(err, &re) {
		t.Fatalf("worker: %v, want a RetentionError", err)
	}
	if *re != (RetentionError{Stream: n.stream, Partition: 0, Needed: f.seqs[0] + 1, First: f.seqs[1]}) {
		t.Fatalf("retention error %+v, want partition 0, needed %d, first %d", *re, f.seqs[0]+1, f.seqs[1])
	}
}

// TestIngestCrashRereads is the research note's §4.9 on loopback: an mdp
// ingest publishing 20 trades a message is killed (kill -9) once every
// partition has a checkpoint mid-stream; a plain ingest is then refused
// (exit 1, naming --reread), and mdp ingest --reread reads the input again
// from its start at 7 trades a message while the two workers run on. The
// workers drop the records they read from the first ingest (whose frames
// the re-read cuts differently): the bars equal the oracle's and no other
// value was ever written.
func TestIngestCrashRereads(t *testing.T) {
	var reread *liveProc
	runScene(t, scene{extra: ", records_per_message: 20"}, func(h *handoff) {
		h.worker(t, "w0", 2)
		h.worker(t, "w1", 2)
	}, func(h *handoff) {
		first := h.ingest
		h.killed[first] = true
		if err := first.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-first.done
		first.done <- nil
		text, err := os.ReadFile(h.direct)
		if err != nil {
			t.Fatal(err)
		}
		job2 := filepath.Join(filepath.Dir(h.direct), "job7.yaml")
		if err := os.WriteFile(job2, []byte(strings.Replace(string(text), "records_per_message: 20", "records_per_message: 7", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		plain := h.startIngest(t, job2)
		h.killed[plain] = true
		err = <-plain.done
		plain.done <- err
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(plain.stderr.String(), "mdp ingest --reread") {
			t.Fatalf("an ingest over the crashed one's messages: %v, want exit 1 naming --reread\n%s", err, plain.stderr)
		}
		reread = h.startIngest(t, job2, "--reread")
	})
	if len(reread.stderr.lines("scale-out ingest re-reads its input after an earlier run's messages")) == 0 {
		t.Fatalf("the re-read did not start over the first ingest's messages:\n%s", reread.stderr)
	}
}

// A re-read needs a source that reads the same records again: recorded
// files and the unpaced generator pass; a paced generator and a live feed
// are refused by mdp ingest --reread and mdp run --resume before anything
// connects.
func TestRereadNeedsTheSameRecords(t *testing.T) {
	doc := func(source, extra string) *config.Document {
		t.Helper()
		d, err := config.LoadBytes("job.yaml", []byte(`name: rr
scaleout: {nats: "nats://127.0.0.1:1", partitions: 4}
`+extra+`dag:
  nodes:
    - {id: src, `+source+`}
    - {id: bars, type: operator.bars, params: {interval: 1s}}
    - {id: out, type: sink.null}
  edges: [[src, bars], [bars, out]]
`), config.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, src := range []string{
		`type: provider.replay, params: {path: trades.csv, kind: trade, columns: {symbol: symbol, ts: ts, price: price, size: size}}`,
		`type: provider.synthetic, params: {symbols: [AAPL], count: 10, seed: 1}`,
	} {
		if err := doc(src, "").ScaleoutRereadable(); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
	for _, c := range []struct{ src, want string }{
		{`type: provider.synthetic, params: {symbols: [AAPL], rate: 100}`, `source "src" is a paced provider.synthetic (rate set)`},
		{`type: provider.websocket, params: {url: "ws://127.0.0.1:1/ws", preset: binance}`, `source "src" (provider.websocket) cannot be read again to the same records`},
	} {
		err := RunIngest(context.Background(), doc(c.src, ""), Options{Reread: true})
		if err == nil || !strings.Contains(err.Error(), `job "rr": --reread: `+c.want) {
			t.Errorf("ingest --reread of %s: %v, want %q", c.src, err, c.want)
		}
		d := doc(c.src, "checkpoint: {interval: 1s, store: ck}\n")
		d.Scaleout.NATS = config.ScaleoutEmbedded
		err = Run(context.Background(), d, Options{Resume: true})
		if err == nil || !strings.Contains(err.Error(), `job "rr": resuming a scaled-out run re-reads its input: `+c.want) {
			t.Errorf("run --resume of %s: %v, want %q", c.src, err, c.want)
		}
	}
}
