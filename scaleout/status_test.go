package scaleout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// TestStatusLag measures a job's status from worker w0 against a real
// nats-server: w0 reads partitions 0 and 1 (its progress live), w1 reads
// 2 and published its progress with its heartbeat, partition 3 has no
// lease. Exact lag per partition, per worker and in total.
func TestStatusLag(t *testing.T) {
	srv := loopbackServer(t)
	_, js := testJS(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := namesOf("so-status")
	so := &config.ScaleoutConfig{NATS: srv.ClientURL(), Partitions: 4, Retention: config.Retention{MaxAge: time.Hour}}
	if _, err := ensureStream(ctx, js, n, so, false); err != nil {
		t.Fatal(err)
	}
	sec := func(s int) int64 { return int64(s) * int64(time.Second) }
	publish := func(k int, data []byte, wm int64) {
		t.Helper()
		m := &nats.Msg{Subject: n.subject(k), Data: data}
		if wm != 0 {
			m.Header = nats.Header{headerWatermark: []string{strconv.FormatInt(wm, 10)}}
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	marker := func(k, s int) { publish(k, appendMarker(nil, markerWatermark, sec(s)), 0) }
	// Partition 0: 3 messages, the newest a data message carrying 20 s.
	marker(0, 10)
	marker(0, 15)
	publish(0, []byte("MD…"), sec(20))
	// Partition 1: 2 markers; partition 2: 4; partition 3: 1.
	marker(1, 5)
	marker(1, 6)
	for s := range 4 {
		marker(2, 30+s)
	}
	marker(3, 50)

	tm := timing{memberTTL: time.Minute, leaseTTL: time.Minute, margin: time.Second}
	mkv, lkv, err := openBuckets(ctx, js, n, tm)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 12, 3, 20, 0, 0, 0, time.UTC)
	mem, err := join(ctx, mkv, MemberInfo{ID: "w0", Host: "h0", PID: 100, Started: started})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.close()
	// w0 read partition 0's first marker and all of partition 1.
	pr := newProgress([]int{0, 1})
	pr.message(0, true, false, sec(10))
	pr.message(1, true, false, sec(5))
	pr.message(1, true, false, sec(6))
	mem.reading.Store(pr)
	// w1 read one marker (31 s) of partition 2 when it last heartbeat.
	w1, _ := json.Marshal(MemberInfo{ID: "w1", Host: "h1", PID: 200, Started: started,
		Progress: []PartitionProgress{{Partition: 2, Read: 2, Watermark: sec(31)}}})
	if _, err := mkv.Put(ctx, memberPrefix+"w1", w1); err != nil {
		t.Fatal(err)
	}
	for p, owner := range map[int]string{0: "w0", 1: "w0", 2: "w1"} {
		if _, err := lkv.Create(ctx, leaseKey(p), []byte(owner)); err != nil {
			t.Fatal(err)
		}
	}

	st, err := workerStatus(ctx, js, n, 4, mem, lkv, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantParts := []PartitionStatus{
		{Partition: 0, Owner: "w0", Reported: true, LagMessages: 2, LagSeconds: 10},
		{Partition: 1, Owner: "w0", Reported: true, LagMessages: 0, LagSeconds: 0},
		{Partition: 2, Owner: "w1", Reported: true, LagMessages: 2, LagSeconds: 2},
		{Partition: 3},
	}
	if !slices.Equal(st.PartitionLag, wantParts) {
		t.Fatalf("partitions\n got %+v\nwant %+v", st.PartitionLag, wantParts)
	}
	wantWorkers := []string{
		fmt.Sprintf("%+v", WorkerStatus{ID: "w0", Host: "h0", PID: 100, Started: "2026-12-03T20:00:00Z", Partitions: []int{0, 1}, LagMessages: 2, LagSeconds: 10}),
		fmt.Sprintf("%+v", WorkerStatus{ID: "w1", Host: "h1", PID: 200, Started: "2026-12-03T20:00:00Z", Partitions: []int{2}, LagMessages: 2, LagSeconds: 2}),
	}
	var gotWorkers []string
	for _, w := range st.Workers {
		gotWorkers = append(gotWorkers, fmt.Sprintf("%+v", w))
	}
	if !slices.Equal(gotWorkers, wantWorkers) {
		t.Fatalf("workers\n got %v\nwant %v", gotWorkers, wantWorkers)
	}
	if st.Stream != "MDP_so-status" || st.Partitions != 4 || !slices.Equal(st.Unowned, []int{3}) || st.LagMessages != 4 || st.LagSeconds != 10 {
		t.Fatalf("status %+v", st)
	}

	// w0's progress is live: once it has read partition 0 to its end
	// marker, the partition has no lag.
	publish(0, appendMarker(nil, markerEnd, 0), 0)
	for range 3 {
		pr.message(0, false, false, 0)
	}
	pr.message(0, true, true, 0)
	if st, err = workerStatus(ctx, js, n, 4, mem, lkv, nil, 0); err != nil {
		t.Fatal(err)
	}
	if got := st.PartitionLag[0]; got != (PartitionStatus{Partition: 0, Owner: "w0", Reported: true}) || st.LagMessages != 2 || st.LagSeconds != 2 {
		t.Fatalf("after w0 read partition 0 to its end: %+v, total %d, %v s", got, st.LagMessages, st.LagSeconds)
	}
}

// statusSink records what a worker gives its status.
type statusSink struct {
	mu      sync.Mutex
	job     *engine.Job
	measure func(context.Context) (Status, error)
}

func (s *statusSink) WorkerJob(j *engine.Job, _ *engine.Feedback) {
	s.mu.Lock()
	s.job = j
	s.mu.Unlock()
}

func (s *statusSink) ScaleoutStatus(m func(context.Context) (Status, error)) {
	s.mu.Lock()
	s.measure = m
	s.mu.Unlock()
}

func (s *statusSink) get() (*engine.Job, func(context.Context) (Status, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.job, s.measure
}

// TestWorkersStatus runs two workers of a job on a real nats-server, 16
// partitions: the status either worker measures lists both, with disjoint
// partition sets covering all 16, every partition's lag reported; after a
// watermark marker on every partition, which the workers read, every lag
// is 0 messages and 0 s again, and the workers' nodes are in the status.
func TestWorkersStatus(t *testing.T) {
	srv := loopbackServer(t)
	doc := synthJob(t, 10, "")
	doc.Name = "so-workers"
	doc.Scaleout.NATS, doc.Scaleout.Partitions = srv.ClientURL(), 16
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wctx, stop := context.WithCancel(ctx)
	sinks := []*statusSink{{}, {}}
	done := make(chan error, 2)
	for i, s := range sinks {
		go func() {
			done <- RunWorker(wctx, doc, WorkerOptions{Options: Options{Status: s}, ID: "w" + strconv.Itoa(i), Workers: 2, timing: testTiming})
		}()
	}
	defer func() {
		stop()
		for range sinks {
			if err := <-done; err != nil && !errors.Is(err, engine.ErrAborted) {
				t.Errorf("worker: %v", err)
			}
		}
	}()

	// wait measures from worker i until ok accepts the status.
	wait := func(i int, what string, ok func(Status) bool) Status {
		t.Helper()
		var last Status
		var lastErr error
		for ctx.Err() == nil {
			if _, measure := sinks[i].get(); measure != nil {
				last, lastErr = measure(ctx)
				if lastErr == nil && ok(last) {
					return last
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("worker w%d: no status with %s; last %+v, err %v", i, what, last, lastErr)
		return Status{}
	}
	allReported := func(st Status) bool {
		if len(st.Workers) != 2 || len(st.PartitionLag) != 16 {
			return false
		}
		for _, p := range st.PartitionLag {
			if !p.Reported {
				return false
			}
		}
		return true
	}
	for i := range sinks {
		st := wait(i, "both workers reporting every partition", allReported)
		var all []int
		for w, ws := range st.Workers {
			if ws.ID != "w"+strconv.Itoa(w) || len(ws.Partitions) == 0 || len(ws.Partitions) > 8 || ws.PID == 0 {
				t.Fatalf("worker %d: %+v", w, ws)
			}
			for _, p := range ws.Partitions {
				if st.PartitionLag[p].Owner != ws.ID {
					t.Fatalf("partition %d: owner %q, but worker %s lists it", p, st.PartitionLag[p].Owner, ws.ID)
				}
			}
			all = append(all, ws.Partitions...)
		}
		slices.Sort(all)
		if len(all) != 16 || len(slices.Compact(slices.Clone(all))) != 16 || all[0] != 0 || all[15] != 15 || len(st.Unowned) != 0 {
			t.Fatalf("seen from w%d, the workers' partitions %v are not 16 disjoint covering 0..15", i, all)
		}
		t.Logf("seen from w%d: w0 owns %v, w1 owns %v", i, st.Workers[0].Partitions, st.Workers[1].Partitions)
	}

	// A watermark marker on every partition: both workers read it, and
	// the status seen from w0 (w1's part as of its heartbeat) is back to
	// no lag, with each worker's progress at that watermark.
	_, js := testJS(t, srv)
	n := namesOf(doc.Name)
	for p := range 16 {
		if _, err := js.Publish(ctx, n.subject(p), appendMarker(nil, markerWatermark, int64(40+p)*int64(time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	st := wait(0, "every partition read", func(st Status) bool {
		if !allReported(st) || st.LagMessages != 0 || st.LagSeconds != 0 {
			return false
		}
		for _, p := range st.PartitionLag {
			if p.LagMessages != 0 || p.LagSeconds != 0 {
				return false
			}
		}
		return true
	})
	if st.Workers[0].LagMessages != 0 || st.Workers[1].LagMessages != 0 {
		t.Fatalf("workers' lag %+v", st.Workers)
	}
	// The workers checkpoint every partition (mdp_ckpt_<job>): the status
	// gives each one's covered stream sequence, at least its marker's
	// (partition p's is sequence p+1), and the checkpoint's age.
	wait(1, "every partition checkpointed past its marker", func(st Status) bool {
		for _, p := range st.PartitionLag {
			if !p.Checkpointed || p.CheckpointSeq < uint64(p.Partition+1) || p.CheckpointTime == "" || p.Done {
				return false
			}
		}
		return len(st.PartitionLag) == 16
	})
	// Each worker published its read watermark with its heartbeat.
	mkv, err := js.KeyValue(ctx, n.bucket("members"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range []string{"w0", "w1"} {
		for {
			e, err := mkv.Get(ctx, memberPrefix+id)
			if err != nil {
				t.Fatal(err)
			}
			var mi MemberInfo
			if err := json.Unmarshal(e.Value(), &mi); err != nil {
				t.Fatal(err)
			}
			ok := len(mi.Progress) > 0
			for _, pp := range mi.Progress {
				ok = ok && pp.Read == 1 && pp.Watermark == int64(40+pp.Partition)*int64(time.Second) && pp.Watermark != md.MinTime
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's published progress %+v", id, mi.Progress)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i, s := range sinks {
		if j, _ := s.get(); j == nil || len(j.Status().Nodes) != 2 {
			t.Fatalf("worker w%d: no running job given to its status", i)
		}
	}
}
