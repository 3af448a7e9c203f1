package bustest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/engine/enginetest"
)

// CheckSinkMasked runs trades -> a sink of type typ with params (whose
// broker does not answer, so it fails to connect) for d, with the job's
// log captured, and fails the test if secret shows in the log, in the
// job's status as JSON (every node's errors and last error) or in the
// job's error (a job that does not stop within 5s of its cancellation is
// aborted, and that is logged). It returns the sink's status (node "pub"), for the caller
// to check that the failure was counted and the masked form shown.
func CheckSinkMasked(t *testing.T, typ string, params map[string]any, secret string, d time.Duration) engine.NodeStatus {
	t.Helper()
	var logs enginetest.SyncBuffer
	syms := []string{"A"}
	src := &enginetest.Source{Symbols: syms, Trades: Trades(1000, syms), BatchSize: 10}
	g := &engine.Graph{Nodes: []*engine.Node{enginetest.SourceNode("src", src.Kind(), src), Node(t, typ, "pub", params)},
		Edges: []*engine.Edge{{From: "src", To: "pub"}}}
	j, err := engine.New(g, engine.Options{Job: "masked", Logger: enginetest.Logger(&logs)})
	if err != nil {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("%s: the job's build error shows the secret: %v", typ, err)
		}
		t.Fatal(err)
	}
	// The deadline also ends an Open that dials until it connects.
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var runErr error
	if runErr = j.Start(ctx); runErr == nil {
		<-ctx.Done()
		select {
		case <-j.Done():
		case <-time.After(5 * time.Second):
			// The sink waits for acknowledgements no broker will send.
			t.Logf("%s: the job did not stop within 5s of its cancellation without a broker; aborted", typ)
			j.Abort()
		}
		runErr = j.Wait()
	}
	status, err := json.Marshal(j.Status())
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"log": logs.String(), "status": string(status), "error": fmt.Sprint(runErr)} {
		if strings.Contains(text, secret) {
			t.Errorf("%s: the secret shows in the job's %s:\n%s", typ, what, text)
		}
	}
	return NodeStatus(j, "pub")
}
