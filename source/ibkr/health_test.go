package ibkr_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/mdpio/mdp/components"
	"github.com/mdpio/mdp/runtime"
	"github.com/mdpio/mdp/source/ibkr/tws/faketws"
)

// TestHealthDegradedWhileDisconnected: through the runtime, the provider's
// node is OK while connected and DEGRADED while TWS refuses it, for as long
// as it does (every failed attempt counts an error; the backoff stays under
// the health window), and the job keeps running.
func TestHealthDegradedWhileDisconnected(t *testing.T) {
	srv, err := faketws.New()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	job := `
mode: dag
name: ibkr-health
dag:
  nodes:
    - id: ib
      type: provider.ibkr
      params:
        port: ` + itoa(srv.Port()) + `
        contracts: [{symbol: AAPL, primary_exchange: NASDAQ}]
        quotes: false
        reconnect_backoff: 20ms
        reconnect_max_backoff: 50ms
    - {id: out, type: sink.null}
  edges:
    - [ib, out]
`
	u, err := runtime.NewFromBytes("job.yaml", []byte(job), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := u.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ss, err := srv.Accept(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ss.Ready()
	if _, err := ss.Next(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	ss.SendFields(99, 1, 2, 1764167400, 189.5, 100, 0, "NASDAQ", "")
	component := func() runtime.ComponentHealth {
		for _, c := range u.Health().Components {
			if c.Name == "ib" {
				return c
			}
		}
		t.Fatal("no health for node ib")
		return runtime.ComponentHealth{}
	}
	waitHealth := func(want runtime.HealthStatus) runtime.ComponentHealth {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; {
			c := component()
			if c.Status == want {
				return c
			}
			if time.Now().After(deadline) {
				t.Fatalf("ib is %s (%s), want %s", c.Status, c.Detail, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitHealth(runtime.HealthOK)

	srv.SetRefuse(true)
	ss.Close()
	c := waitHealth(runtime.HealthDegraded)
	if !strings.Contains(c.Detail, "disconnect") {
		t.Errorf("detail %q", c.Detail)
	}
	time.Sleep(300 * time.Millisecond)
	c = waitHealth(runtime.HealthDegraded)
	if !strings.Contains(c.Detail, "connect_failed") {
		t.Errorf("detail while refused %q", c.Detail)
	}
	if st := u.State(); st != runtime.StateRunning {
		t.Errorf("state %s", st)
	}
	srv.SetRefuse(false)
	ss2, err := srv.Accept(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// (The re-request of AAPL's tick-by-tick waits out IB's 15 s per
	// instrument on the real clock; the pacing tests cover it.)
	ss2.Ready()
	if !u.Job().Ready() {
		t.Error("job not ready")
	}
	cancel()
	if err := u.Wait(); err != nil {
		t.Errorf("the job did not stop cleanly: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
