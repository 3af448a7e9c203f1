package scaleout

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// TestLag checks the lag of a worker reading partitions 0 and 1: nothing
// once it has read everything; after it stopped and more was published,
// per partition the unread messages and the event time between the
// stream's latest watermark (a marker's, or a data message's Mdp-Wm) and
// the last it read; the totals; and the same figures on the metrics.
func TestLag(t *testing.T) {
	doc := synthJob(t, 10, "")
	n := namesOf(doc.Name)
	pub := newPublisher(nil, n, doc.Scaleout.Partitions)
	_, js := testStream(t, doc, pub)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := ensureStream(ctx, js, n, doc.Scaleout, false); err != nil {
		t.Fatal(err)
	}
	sec := func(s int) int64 { return int64(s) * int64(time.Second) }
	marker := func(k, s int) {
		t.Helper()
		if _, err := js.Publish(ctx, n.subject(k), appendMarker(nil, markerWatermark, sec(s))); err != nil {
			t.Fatal(err)
		}
	}
	marker(0, 10)
	marker(0, 12)
	marker(1, 10)
	marker(2, 99) // not the worker's

	r := newReader(js, n, []int{0, 1})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- workerRun(t, wctx, doc, r) }()
	for r.progress.parts[0].read.Load() < 2 || r.progress.parts[1].read.Load() < 1 {
		if ctx.Err() != nil {
			t.Fatal("the worker did not read the markers")
		}
		time.Sleep(10 * time.Millisecond)
	}
	l, err := r.lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.Messages != 0 || l.Seconds != 0 || len(l.Partitions) != 2 || l.Partitions[0] != (PartitionLag{Partition: 0}) || l.Partitions[1] != (PartitionLag{Partition: 1}) {
		t.Fatalf("lag after reading everything: %+v", l)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	marker(0, 15)
	data := &nats.Msg{Subject: n.subject(0), Data: []byte("MD…"), Header: nats.Header{headerWatermark: []string{strconv.FormatInt(sec(20), 10)}}}
	if _, err := js.PublishMsg(ctx, data); err != nil {
		t.Fatal(err)
	}
	marker(1, 13)
	l, err = r.lag(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Lag{Partitions: []PartitionLag{{Partition: 0, Messages: 2, Seconds: 8}, {Partition: 1, Messages: 1, Seconds: 3}}, Messages: 3, Seconds: 8}
	if len(l.Partitions) != 2 || l.Partitions[0] != want.Partitions[0] || l.Partitions[1] != want.Partitions[1] || l.Messages != want.Messages || l.Seconds != want.Seconds {
		t.Fatalf("lag %+v, want %+v", l, want)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(&lagCollector{job: doc.Name, r: r, log: slog.New(slog.DiscardHandler)})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, lp := range m.GetLabel() {
				key += " " + lp.GetName() + "=" + lp.GetValue()
			}
			got[key] = m.GetGauge().GetValue()
		}
	}
	for key, v := range map[string]float64{
		"mdp_scaleout_lag_messages job=so-dedupe partition=0": 2,
		"mdp_scaleout_lag_messages job=so-dedupe partition=1": 1,
		"mdp_scaleout_lag_seconds job=so-dedupe partition=0":  8,
		"mdp_scaleout_lag_seconds job=so-dedupe partition=1":  3,
		"mdp_scaleout_job_lag_messages job=so-dedupe":         3,
		"mdp_scaleout_job_lag_seconds job=so-dedupe":          8,
	} {
		if g, ok := got[key]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", key, g, ok, v)
		}
	}
	// Plus mdp_scaleout_duplicate_records_total per partition (0 here:
	// TestReaderDropsWhatItRead checks a count).
	if len(got) != 8 {
		t.Errorf("%d series: %v", len(got), got)
	}
}
