package engine_test

import (
	"math"
	"strings"
	"testing"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
	"github.com/mdpio/mdp/md"
)

// TestAbsurdSizesAreErrorsNotCrashes: settings no machine can honour are
// errors from Validate and New, never a makechan panic or an exhausted
// memory.
func TestAbsurdSizesAreErrorsNotCrashes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		capacity    int
		parallelism int
		want        string
	}{
		{"capacity max int64", math.MaxInt64, 1, "edge src -> sink: capacity 9223372036854775807 is more than the limit of 1048576 batches"},
		{"capacity 1e10", 10_000_000_000, 1, "edge src -> sink: capacity 10000000000 is more than the limit of 1048576 batches"},
		{"parallelism 100000", 0, 100_000, `node "sink": parallelism 100000 is more than the limit of 4096`},
		{"queues in total", engine.MaxQueueCapacity, 4096, "edge src -> sink: the job's queues would hold more than 16777216 batches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := enginetest.SinkNode("sink", &enginetest.Sink{})
			sink.Parallelism = tc.parallelism
			g := &engine.Graph{
				Nodes: []*engine.Node{enginetest.SourceNode("src", md.KindTrade, &enginetest.Source{}), sink},
				Edges: []*engine.Edge{{From: "src", To: "sink", Capacity: tc.capacity}},
			}
			errs := g.Validate()
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Msg, tc.want) {
				t.Fatalf("Validate: %v, want %q", errs, tc.want)
			}
			if _, err := engine.New(g, engine.Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v", err)
			}
		})
	}
}
