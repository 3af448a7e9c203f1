package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdpio/mdp/server"
)

// A running job's nodes are sampled once a second: the history has one
// time per sample and, per node, a rate and a lag for each; the source's
// rate is its paced rate.
func TestHistorySamplesRunningJobs(t *testing.T) {
	p := newInProcess(t)
	p.submit(t, fmt.Sprintf(`name: hist
dag:
  nodes:
    - {id: src, type: provider.synthetic, params: {symbols: [AAPL], rate: 1000, seed: 2}}
    - {id: out, type: sink.sqlite, params: {path: %q}}
  edges: [[src, out]]
`, filepath.Join(p.dir, "hist.db")))
	var h server.History
	get := func() {
		resp, err := http.Get(p.srv.URL + "/api/v1/jobs/hist/history")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("history: %d", resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "four samples", 20*time.Second, func() bool { get(); return len(h.Time) >= 4 })
	if len(h.Nodes) != 2 {
		t.Fatalf("nodes: %v", h.Nodes)
	}
	for id, n := range h.Nodes {
		if len(n.Rate) != len(h.Time) || len(n.Lag) != len(h.Time) {
			t.Fatalf("node %s: %d rates, %d lags for %d times", id, len(n.Rate), len(n.Lag), len(h.Time))
		}
	}
	r := h.Nodes["src"].Rate
	if last := r[len(r)-1]; last < 500 || last > 1500 {
		t.Fatalf("src rate %v, want about 1000", r)
	}
	for i := 1; i < len(h.Time); i++ {
		if d := h.Time[i] - h.Time[i-1]; d < 0.5 || d > 3 {
			t.Fatalf("samples %v apart", d)
		}
	}
	resp, err := http.Get(p.srv.URL + "/api/v1/jobs/nojob/history")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("unknown job: %d", resp.StatusCode)
	}
}
