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
// the health window), and the job keeps running; the connection-state and
// subscription gauges follow.
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
	waitHealth := func(want runtime.HealthStatus, detail string) runtime.ComponentHealth {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; {
			c := component()
			if c.Status == want && strings.Contains(c.Detail, detail) {
				return c
			}
			if time.Now().After(deadline) {
				t.Fatalf("ib is %s (%s), want %s (%s)", c.Status, c.Detail, want, detail)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitHealth(runtime.HealthOK, "")
	gauge := func(name string) float64 {
		for _, m := range u.Job().Metrics().Series() {
			if m.Name == name && m.Node == "ib" {
				return m.Value()
			}
		}
		t.Fatalf("no series %s", name)
		return 0
	}
	waitGauges := func(state, active float64) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; {
			s, a := gauge("mdp_ibkr_connection_state"), gauge("mdp_ibkr_subscriptions_active")
			if s == state && a == active {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("connection state %v, active subscriptions %v; want %v, %v", s, a, state, active)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitGauges(2, 1)
	ss.SendFields(4, -1, 1100, "Connectivity between IB and Trader Workstation has been lost.", "", 1764167400456)
	waitGauges(1, 1)
	waitHealth(runtime.HealthDegraded, "ib_connectivity")
	ss.SendFields(4, -1, 1102, "Connectivity between IB and Trader Workstation has been restored - data maintained.", "", 1764167400456)
	waitGauges(2, 1)

	srv.SetRefuse(true)
	ss.Close()
	waitHealth(runtime.HealthDegraded, "disconnect")
	waitHealth(runtime.HealthDegraded, "connect_failed")
	waitGauges(0, 0)
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
