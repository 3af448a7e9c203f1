package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/runtime"
)

func TestEmbeddedJob(t *testing.T) {
	for _, typ := range []string{"provider.synthetic", "operator.bars", "sink.null"} {
		if _, ok := component.Lookup(typ); !ok {
			t.Skipf("%s is not registered (components/components.go); this test runs once it is", typ)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if bytes.Contains(stdout.Bytes(), []byte(`\u003e`)) || !bytes.Contains(stdout.Bytes(), []byte(`"name": "src -> bars"`)) {
		t.Fatalf("status output escapes the edge names:\n%s", stdout.String())
	}
	var st runtime.Status
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		t.Fatalf("status output: %v\n%s", err, stdout.String())
	}
	// 200,000 trades, 1ms apart over two symbols: 200s of event time, so
	// 200 one-second bars per symbol.
	if st.State != runtime.StateStopped || st.Job != "embedded-bars" || len(st.Nodes) != 3 ||
		st.Nodes[0].EventsOut != 200000 || st.Nodes[1].EventsIn != 200000 || st.Nodes[2].EventsIn != 400 {
		t.Fatalf("status: %s", stdout.String())
	}
}
