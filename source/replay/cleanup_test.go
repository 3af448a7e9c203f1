package replay

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// stuckSink blocks in its first Process until the job ends.
type stuckSink struct {
	once    sync.Once
	entered chan struct{}
}

func (s *stuckSink) Process(ctx context.Context, b *md.Batch, out *engine.Output) error {
	s.once.Do(func() { close(s.entered) })
	<-ctx.Done()
	return ctx.Err()
}

// failOpen is a source whose Open fails.
type failOpen struct{ enginetest.Source }

func (*failOpen) Open(ctx context.Context, nc *engine.NodeContext) error {
	return errors.New("no route to host")
}

// TestReplayClosesItsDeadLetterFileOnEveryWayOut: a replay that finishes,
// is aborted, or whose job fails to open another node flushes and closes its
// dead-letter file (and logs the malformed-row total when it read any),
// through Cleanup.
func TestReplayClosesItsDeadLetterFileOnEveryWayOut(t *testing.T) {
	for _, way := range []string{"finish", "abort", "open failure"} {
		t.Run(way, func(t *testing.T) { replayWayOut(t, way) })
	}
}

func replayWayOut(t *testing.T, way string) {
	dir := t.TempDir()
	var rows strings.Builder
	rows.WriteString(strings.SplitN(badTrades, "\n", 2)[0] + "\n")
	rows.WriteString("x,BTC,1000002,1000003,2,sell,abc,1\nx,BTC,1000004\n")
	for i := 0; i < 50000; i++ {
		fmt.Fprintf(&rows, "x,BTC,%d,%d,%d,buy,100.5,2\n", 2000000+i, 2000001+i, 10+i)
	}
	path := writeFile(t, filepath.Join(dir, "trades.csv"), rows.String())
	dl := filepath.Join(dir, "dead.jsonl")
	src := componentNode(t, "provider.replay", "src", map[string]any{"path": path, "preset": "tardis_trades", "on_error": "dead_letter", "dead_letter_path": dl})
	var inst *Source
	captureSource(src, &inst)
	stuck := &stuckSink{entered: make(chan struct{})}
	var sink engine.Processor = &enginetest.Sink{}
	if way == "abort" {
		sink = stuck
	}
	g := &engine.Graph{
		Nodes: []*engine.Node{src, enginetest.SinkNode("sink", sink)},
		Edges: []*engine.Edge{{From: "src", To: "sink", Capacity: 1}},
	}
	if way == "open failure" {
		// Declared first, so it opens after the replay (reverse
		// topological order) and its failure leaves the replay opened.
		other := enginetest.SourceNode("other", md.KindTrade, &failOpen{})
		g.Nodes = append([]*engine.Node{other}, g.Nodes...)
		g.Edges = append(g.Edges, &engine.Edge{From: "other", To: "sink"})
	}
	logs := &enginetest.SyncBuffer{}
	j, err := engine.New(g, engine.Options{Job: "t", Logger: enginetest.Logger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	err = j.Start(context.Background())
	switch way {
	case "open failure":
		if err == nil || !strings.Contains(err.Error(), "no route to host") {
			t.Fatalf("start: %v", err)
		}
	case "abort":
		if err != nil {
			t.Fatal(err)
		}
		<-stuck.entered
		j.Abort()
		if err := j.Wait(); err != engine.ErrAborted {
			t.Fatalf("job error %v", err)
		}
	default:
		if err := j.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if inst.mal == nil || inst.mal.dlFile != nil || !inst.mal.closed {
		t.Fatal("the dead-letter file is still open after the job ended")
	}
	if way == "open failure" {
		return // nothing was read
	}
	if got := jsonLines(t, dl); len(got) != 2 || got[0]["line"] != 2.0 || got[1]["line"] != 3.0 {
		t.Fatalf("dead letters: %v", got)
	}
	if !strings.Contains(logs.String(), "replay dropped malformed rows") {
		t.Fatalf("no malformed-row total in the logs:\n%s", logs.String())
	}
}
