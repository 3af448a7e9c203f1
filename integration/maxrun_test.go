package integration

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/component"
	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/testenv"
	"github.com/mdpio/mdp/md"
	mdprt "github.com/mdpio/mdp/runtime"
)

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p
}

// isolate returns the --set overrides that keep a shipped config on this
// machine and away from other tests: outputs in dir, a fresh PostgreSQL
// schema, unique NATS subjects and streams, live sources pointed at a
// loopback port nothing listens on, no metrics listener.
func isolate(t *testing.T, doc *config.Document, dir, pgSchemaName string) []string {
	t.Helper()
	sets := []string{"metrics.enable=false"}
	tag := fmt.Sprintf("%X", rand.Uint64())
	for _, n := range doc.Nodes {
		if n.Type == "sink.nats" || n.Type == "provider.nats" {
			natsStream(t, "MAXRUN_"+tag, "mdp.maxrun."+tag)
			break
		}
	}
	for i, n := range doc.Nodes {
		p := indexPath.ReplaceAllString(n.Path, ".$1") + ".params."
		switch n.Type {
		case "sink.sqlite":
			sets = append(sets, p+"path="+filepath.Join(dir, fmt.Sprintf("n%d.db", i)))
		case "sink.parquet":
			sets = append(sets, p+"dir="+filepath.Join(dir, fmt.Sprintf("pq%d", i)))
		case "sink.file":
			sets = append(sets, p+"path="+filepath.Join(dir, fmt.Sprintf("n%d.out", i)))
		case "sink.postgres":
			sets = append(sets, p+"schema="+pgSchemaName)
		case "sink.nats", "provider.nats":
			sets = append(sets, p+"subject=mdp.maxrun."+tag, p+"stream=MAXRUN_"+tag)
		case "provider.websocket":
			sets = append(sets, p+"url=ws://127.0.0.1:"+strconv.Itoa(closedPort(t))+"/ws")
		case "provider.ibkr":
			sets = append(sets, p+"host=127.0.0.1", p+"port="+strconv.Itoa(closedPort(t)))
		}
	}
	return sets
}

// natsStream creates a memory stream on the test server for a job's NATS
// nodes and deletes it at the end.
func natsStream(t *testing.T, name, subject string) {
	t.Helper()
	c, err := nats.Connect("nats://127.0.0.1:4222", nats.Timeout(2*time.Second))
	if err != nil {
		testenv.Missing(t, "NATS", err.Error(), testenv.NATSHint)
	}
	js, _ := jetstream.New(c)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = js.DeleteStream(context.Background(), name)
		c.Close()
	})
}

// TestEveryShippedConfigRunsAtItsMaximums refuses every shipped config
// with batch_size or a node's parallelism one above its bound (the node
// params' bounds are TestSizeLimitsInEveryShippedConfig's), then runs it with
// batch_size and every size-like param of its nodes (an integer with an
// upper bound) at its maximum at once (those a rule between params
// allows): the job must not crash, must end or stop on request within its
// shutdown timeout, and must not allocate its maximums eagerly — a
// capacity or a batch size is room that fills as records come, never
// memory taken at start. Finite sources are stopped after a short time
// too (a count at its maximum would run for days), as are live sources,
// which have nothing to connect to here.
func TestEveryShippedConfigRunsAtItsMaximums(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every shipped job")
	}
	files := shippedConfigs(t)
	t.Chdir("..") // shipped configs name their inputs from the repository root
	env := func(k string) (string, bool) {
		switch k {
		case "DATABASE_URL":
			return pgDSN(), true
		case "NATS_URL":
			return "nats://127.0.0.1:4222", true
		}
		return "", false
	}
	_, schema := pgSchema(t)
	for _, f := range files {
		f = strings.TrimPrefix(f, "../")
		t.Run(strings.TrimSuffix(strings.TrimPrefix(f, "configs/"), ".yaml"), func(t *testing.T) {
			dir := t.TempDir()
			doc, err := config.LoadFile(f, config.LoadOptions{Env: env})
			if err != nil {
				t.Fatal(err)
			}
			// The job-level sizes one above their bounds are refused with
			// the bound in the message: batch_size, and each operator's
			// and sink's parallelism.
			over := []struct{ set, want string }{{"batch_size=" + strconv.Itoa(md.MaxBatchSize+1),
				fmt.Sprintf("batch_size: must be at most %d, got %d", md.MaxBatchSize, md.MaxBatchSize+1)}}
			for _, n := range doc.Nodes {
				if n.Spec.Kind != engine.KindSource {
					over = append(over, struct{ set, want string }{indexPath.ReplaceAllString(n.Path, ".$1") + ".parallelism=" + strconv.Itoa(engine.MaxParallelism+1),
						fmt.Sprintf("parallelism: must be at most %d, got %d", engine.MaxParallelism, engine.MaxParallelism+1)})
				}
			}
			for _, o := range over {
				if _, err := config.LoadFile(f, config.LoadOptions{Env: env, Sets: []string{o.set}}); err == nil || !strings.Contains(err.Error(), o.want) {
					t.Errorf("%s: got %v, want …%s", o.set, err, o.want)
				}
			}
			sets := append(isolate(t, doc, dir, schema), "batch_size="+strconv.Itoa(md.MaxBatchSize))
			var maxed []string
			for _, n := range doc.Nodes {
				for _, fl := range n.Spec.Fields {
					if fl.Type != component.Int || fl.Max == nil {
						continue
					}
					if n.Type == "sink.postgres" && fl.Name == "workers" {
						// A worker is a connection: 64 per sink would take
						// the shared test server's connections from other
						// tests. It costs no memory up front either way.
						continue
					}
					s := indexPath.ReplaceAllString(n.Path, ".$1") + ".params." + fl.Name + "=" + strconv.FormatInt(int64(*fl.Max), 10)
					if _, err := config.LoadFile(f, config.LoadOptions{Env: env, Sets: append(append(sets[:len(sets):len(sets)], maxed...), s)}); err == nil {
						maxed = append(maxed, s)
					}
				}
			}
			u, err := mdprt.NewFromFile(f, mdprt.Options{LoadOptions: config.LoadOptions{Env: env, Sets: append(sets, maxed...)}, Stdout: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			var peak atomic.Uint64
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			base := ms.HeapAlloc
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				var ms runtime.MemStats
				tk := time.NewTicker(20 * time.Millisecond)
				defer tk.Stop()
				for {
					runtime.ReadMemStats(&ms)
					if ms.HeapAlloc > peak.Load() {
						peak.Store(ms.HeapAlloc)
					}
					select {
					case <-stop:
						return
					case <-tk.C:
					}
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			err = u.Run(ctx)
			close(stop)
			<-sampled
			took := time.Since(start)
			grew := int64(peak.Load()) - int64(base)
			t.Logf("%d params at the maximum (%s); ran %s; heap grew by at most %d MiB; err %v", len(maxed), strings.Join(maxed, " "), took.Round(time.Millisecond), grew>>20, err)
			if err != nil && strings.Contains(err.Error(), "panic") {
				t.Fatalf("crashed: %v", err)
			}
			if took > 40*time.Second {
				t.Errorf("took %s to stop", took)
			}
			// Records in flight are bounded by each edge's capacity times
			// the batch size: at batch_size 2^20 two unpaced sources
			// feeding a join fill about 1.3 GiB in these two seconds. An
			// eager allocation of a maximum (a 2^24-row queue, a 2^30-row
			// file buffer, 64 workers' 2^20-row batches) is several times
			// that.
			if grew > 2<<30 {
				t.Errorf("heap grew by %d MiB: a maximum is allocated eagerly", grew>>20)
			}
		})
	}
}
