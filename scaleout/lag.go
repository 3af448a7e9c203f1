package scaleout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mdpio/mdp/md"
)

// headerWatermark carries, on a data message, the last watermark the
// ingest had sent to every partition: the partition's latest marker
// watermark, which the lag reads from the partition's newest message.
const headerWatermark = "Mdp-Wm"

// progress is what a reader has read of each partition it owns: written by
// the reader once per message, read when the lag is asked for.
type progress struct {
	index map[int]int // partition -> position in parts
	parts []partProgress
}

type partProgress struct {
	read  atomic.Int64 // messages of the partition read since the reader started
	wm    atomic.Int64 // the highest watermark marker read (md.MinTime: none)
	dup   atomic.Int64 // records dropped as read already (an ingest's re-read)
	ended atomic.Bool  // the end marker was read
}

func newProgress(partitions []int) *progress {
	p := &progress{index: make(map[int]int, len(partitions)), parts: make([]partProgress, len(partitions))}
	for i, k := range partitions {
		p.index[k] = i
		p.parts[i].wm.Store(md.MinTime)
	}
	return p
}

// message records one message of partition k: a watermark marker's value
// (wm, when marker), the end marker (end).
func (p *progress) message(k int, marker, end bool, wm int64) {
	i, ok := p.index[k]
	if !ok {
		return
	}
	pp := &p.parts[i]
	pp.read.Add(1)
	switch {
	case end:
		pp.ended.Store(true)
	case marker && wm > pp.wm.Load():
		// A re-read's markers start over from the beginning; the
		// reader's watermark does not go back with them.
		pp.wm.Store(wm)
	}
}

// duplicates counts n records of partition k dropped as read already.
func (p *progress) duplicates(k, n int) {
	if i, ok := p.index[k]; ok {
		p.parts[i].dup.Add(int64(n))
	}
}

// PartitionLag is how far a worker is behind the stream in one partition.
type PartitionLag struct {
	Partition int
	// Messages is the partition's messages in the stream the worker has
	// not read.
	Messages int64
	// Seconds is the event time between the partition's latest watermark
	// in the stream and the last the worker read; 0 once the worker has
	// read the partition's end, or when the stream holds no watermark.
	Seconds float64
}

// Lag is a worker's lag, per partition it owns and in total (messages
// summed, seconds the largest).
type Lag struct {
	Partitions []PartitionLag
	Messages   int64
	Seconds    float64
}

// PartitionProgress is what a worker has read of one partition: it
// publishes its partitions' progress in its membership key at every
// heartbeat, so that any process can tell every partition's lag.
type PartitionProgress struct {
	Partition int `json:"p"`
	// Read is the partition's messages read since the worker started.
	Read int64 `json:"read"`
	// Watermark is the last watermark marker read (md.MinTime: none).
	Watermark int64 `json:"wm"`
	// Ended is true once the partition's end marker was read.
	Ended bool `json:"ended,omitempty"`
	// Duplicates is the records dropped since the worker started because
	// it had read them already: an ingest's re-read (mdp ingest --reread).
	Duplicates int64 `json:"dup,omitempty"`
}

// snapshot is the progress of every partition p tracks.
func (p *progress) snapshot() []PartitionProgress {
	out := make([]PartitionProgress, 0, len(p.parts))
	for k, i := range p.index {
		pp := &p.parts[i]
		out = append(out, PartitionProgress{Partition: k, Read: pp.read.Load(), Watermark: pp.wm.Load(), Ended: pp.ended.Load(), Duplicates: pp.dup.Load()})
	}
	slices.SortFunc(out, func(a, b PartitionProgress) int { return a.Partition - b.Partition })
	return out
}

// lag measures r's lag against the stream (measureLag of its progress).
func (r *reader) lag(ctx context.Context) (Lag, error) {
	return measureLag(ctx, r.js, r.n, r.progress.snapshot())
}

// measureLag measures the lag of the given progress against the stream:
// one stream info request (the message count per partition subject) and
// one direct read of each partition's newest message. Messages behind are
// the subject's count minus the messages read: exact while the stream
// still holds everything that was read (a run purges the stream at start;
// max_age removing read messages makes it an underestimate).
func measureLag(ctx context.Context, js jetstream.JetStream, n names, parts []PartitionProgress) (Lag, error) {
	s, err := js.Stream(ctx, n.stream)
	if err != nil {
		return Lag{}, fmt.Errorf("stream %s: %w", n.stream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(n.prefix+"*"))
	if err != nil {
		return Lag{}, fmt.Errorf("stream %s: %w", n.stream, err)
	}
	var out Lag
	for _, pp := range parts {
		k := pp.Partition
		subj := n.subject(k)
		pl := PartitionLag{Partition: k, Messages: max(0, int64(info.State.Subjects[subj])-pp.Read)}
		if !pp.Ended {
			streamWm, ok, err := latestWatermark(ctx, s, subj)
			if err != nil {
				return Lag{}, fmt.Errorf("stream %s: partition %d: %w", n.stream, k, err)
			}
			if wm := pp.Watermark; ok && streamWm > wm {
				if wm == md.MinTime {
					wm = streamWm // no watermark read yet: event time unknown, messages tell
				}
				pl.Seconds = time.Duration(streamWm - wm).Seconds()
			}
		}
		out.Partitions = append(out.Partitions, pl)
		out.Messages += pl.Messages
		out.Seconds = max(out.Seconds, pl.Seconds)
	}
	return out, nil
}

// latestWatermark returns the watermark of a partition's newest message: a
// marker's value, the marker a data frame carries (Mdp-Mark), or else a
// data message's Mdp-Wm header. ok is false when the partition holds
// nothing, or ends with the end marker.
func latestWatermark(ctx context.Context, s jetstream.Stream, subject string) (int64, bool, error) {
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if isMarker(m.Data) {
		kind, wm, err := parseMarker(m.Data)
		if err != nil || kind == markerEnd {
			return 0, false, err
		}
		return wm, true, nil
	}
	if mk, err := markOf(m.Header); err != nil || mk.set {
		// A frame that carries a marker: its watermark, or the end.
		return mk.wm, err == nil && mk.kind == markerWatermark, err
	}
	v := m.Header.Get(headerWatermark)
	if v == "" {
		return 0, false, nil
	}
	wm, err := strconv.ParseInt(v, 10, 64)
	if err != nil || wm == md.MinTime {
		return 0, false, nil
	}
	return wm, true, nil
}

// Lag series, labelled job and partition; the job's totals without
// partition.
var (
	descLagMessages    = prometheus.NewDesc("mdp_scaleout_lag_messages", "Messages of the partition in the stream the worker has not read.", []string{"job", "partition"}, nil)
	descLagSeconds     = prometheus.NewDesc("mdp_scaleout_lag_seconds", "Event time between the partition's latest watermark in the stream and the worker's.", []string{"job", "partition"}, nil)
	descJobLagMessages = prometheus.NewDesc("mdp_scaleout_job_lag_messages", "Messages in the job's stream its workers in this process have not read (the partitions' sum).", []string{"job"}, nil)
	descJobLagSeconds  = prometheus.NewDesc("mdp_scaleout_job_lag_seconds", "The largest event-time lag of the job's partitions read in this process.", []string{"job"}, nil)
	descCheckpointAge  = prometheus.NewDesc("mdp_scaleout_checkpoint_age_seconds", "Time since the last checkpoint of the partition a worker in this process reads was saved (or since it took the partition, before its first).", []string{"job", "partition"}, nil)
	descCheckpointSeq  = prometheus.NewDesc("mdp_scaleout_checkpoint_seq", "Last stream sequence the partition's latest checkpoint covers.", []string{"job", "partition"}, nil)
	descDuplicates     = prometheus.NewDesc("mdp_scaleout_duplicate_records_total", "Records of the partition dropped because the worker had read them already (an ingest's re-read), since its reader started.", []string{"job", "partition"}, nil)
)

// LagDescs describes the lag series (the metrics reference lists them).
func LagDescs() []*prometheus.Desc {
	return []*prometheus.Desc{descLagMessages, descLagSeconds, descJobLagMessages, descJobLagSeconds, descCheckpointAge, descCheckpointSeq, descDuplicates}
}

// lagCollector exports a reader's lag at scrape time.
type lagCollector struct {
	job string
	r   *reader
	log *slog.Logger
	// store, for a worker that checkpoints, gives the checkpoint series.
	store *ckptStore
}

// Describe implements prometheus.Collector.
func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range LagDescs() {
		ch <- d
	}
}

// Collect implements prometheus.Collector: a scrape asks the stream, so it
// is bounded by a timeout; on failure the series are left out and the
// failure logged.
func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := c.r.lag(ctx)
	if err != nil {
		c.log.Warn("scale-out lag not measured", "err", err)
		return
	}
	for _, p := range l.Partitions {
		k := strconv.Itoa(p.Partition)
		ch <- prometheus.MustNewConstMetric(descLagMessages, prometheus.GaugeValue, float64(p.Messages), c.job, k)
		ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, p.Seconds, c.job, k)
	}
	ch <- prometheus.MustNewConstMetric(descJobLagMessages, prometheus.GaugeValue, float64(l.Messages), c.job)
	ch <- prometheus.MustNewConstMetric(descJobLagSeconds, prometheus.GaugeValue, l.Seconds, c.job)
	for _, pp := range c.r.progress.snapshot() {
		ch <- prometheus.MustNewConstMetric(descDuplicates, prometheus.CounterValue, float64(pp.Duplicates), c.job, strconv.Itoa(pp.Partition))
	}
	if c.store == nil {
		return
	}
	now := time.Now()
	for p, pc := range c.store.latest() {
		k := strconv.Itoa(p)
		ch <- prometheus.MustNewConstMetric(descCheckpointAge, prometheus.GaugeValue, max(now.Sub(pc.Time).Seconds(), 0), c.job, k)
		ch <- prometheus.MustNewConstMetric(descCheckpointSeq, prometheus.GaugeValue, float64(pc.Read.Seq), c.job, k)
	}
}
