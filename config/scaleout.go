package config

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/mdpio/mdp/engine"
)

// Scale-out section defaults and bounds.
const (
	// ScaleoutEmbedded is the nats value that runs nats-server inside the
	// mdp process.
	ScaleoutEmbedded = "embedded"
	// defaultPartitions is the partition count when the section gives none.
	defaultPartitions = 64
	// MaxPartitions bounds scaleout.partitions.
	MaxPartitions = 1024
	// Embedded store sync policies.
	SyncAlways   = "always"
	SyncInterval = "interval"
	// DefaultRetentionAge is how long the stream keeps a message when
	// scaleout.retention.max_age is not given.
	DefaultRetentionAge = 72 * time.Hour
	// MaxRecordsPerMessage bounds scaleout.records_per_message: 65536
	// packed trades are about 1.2 MB, more than NATS's default 1 MiB
	// max_payload (the embedded server allows more; against another
	// server the ingest cuts a frame to its max_payload).
	MaxRecordsPerMessage = 65536
	// DefaultRecordsPerMessage is the ingest's records a message when
	// scaleout.records_per_message is not given, except for the embedded
	// store with sync: always (SyncAlwaysRecordsPerMessage).
	DefaultRecordsPerMessage = 4096
	// SyncAlwaysRecordsPerMessage is the default records a message for
	// the embedded store with sync: always, where the stream fsyncs every
	// message: fewer, larger messages cost fewer fsyncs (0.27 → 0.38 of the
	// one-process rate for a replay, README "Cost, measured"), while
	// without the fsyncs 16384 measured slower than 4096 (0.56 → 0.47).
	SyncAlwaysRecordsPerMessage = 16384
	// DefaultOutageLimit is how long the ingest rides out NATS not taking
	// its messages when scaleout.outage_limit is not given.
	DefaultOutageLimit = time.Minute
	// minOutageLimit bounds scaleout.outage_limit from below: the ingest's
	// backoff between attempts grows to 2 s.
	minOutageLimit = time.Second
)

var (
	scaleoutKeys  = []string{"nats", "partitions", "store", "sync", "retention", "records_per_message", "outage_limit"}
	retentionKeys = []string{"max_age", "max_bytes", "max_msgs"}
)

// Retention is the stream's limits. A publish past MaxBytes or MaxMsgs is
// refused (the ingest fails) rather than evicting unread messages; MaxAge
// removes older messages whether read or not, and a worker that still
// needed one stops with a retention error.
type Retention struct {
	// MaxAge is how long a message is kept (default 72h).
	MaxAge time.Duration
	// MaxBytes bounds the stream's size; 0 means no bound.
	MaxBytes int64
	// MaxMsgs bounds the stream's message count; 0 means no bound.
	MaxMsgs int64
}

// ScaleoutConfig is the scaleout section: the job's sources run as ingest,
// publishing into one NATS JetStream stream with a subject per partition,
// and the rest of the graph runs as workers reading the partitions.
type ScaleoutConfig struct {
	// NATS is ScaleoutEmbedded or the URL of a NATS server with JetStream.
	NATS string
	// Partitions is the fixed number of partitions (default 64).
	Partitions int
	// Store is the embedded server's file store directory.
	Store string
	// Sync is the embedded store's fsync policy: SyncAlways (default) or
	// SyncInterval (the server's default of every two minutes).
	Sync string
	// Retention is the stream's limits.
	Retention Retention
	// RecordsPerMessage is how many records of one partition the ingest
	// puts in a data message at most (0: MessageRecords's default).
	RecordsPerMessage int
	// OutageLimit is how long the ingest rides out NATS not taking its
	// messages (a server restart, a lost connection) before it fails
	// (default DefaultOutageLimit).
	OutageLimit time.Duration
	// Source is the id of the job's one source node, the part that runs as
	// ingest.
	Source string
}

// Embedded reports whether the job runs its own NATS server.
func (c *ScaleoutConfig) Embedded() bool { return c.NATS == ScaleoutEmbedded }

// MessageRecords is the records of one partition a data message carries at
// most: RecordsPerMessage when given, else SyncAlwaysRecordsPerMessage for
// the embedded store with sync: always and DefaultRecordsPerMessage
// otherwise (another server's fsync policy is its own).
func (c *ScaleoutConfig) MessageRecords() int {
	switch {
	case c.RecordsPerMessage > 0:
		return c.RecordsPerMessage
	case c.Embedded() && c.Sync == SyncAlways:
		return SyncAlwaysRecordsPerMessage
	}
	return DefaultRecordsPerMessage
}

func (l *loader) decodeScaleout(e entry) {
	m, ok := l.mapping(e.val, e.path, scaleoutKeys)
	if !ok {
		return
	}
	c := &ScaleoutConfig{Partitions: defaultPartitions, Sync: SyncAlways, Retention: Retention{MaxAge: DefaultRetentionAge}, OutageLimit: DefaultOutageLimit}
	good := true
	if v, ok := m["nats"]; ok {
		if s, ok := l.str(v); ok {
			switch {
			case s == ScaleoutEmbedded:
			case strings.HasPrefix(s, "nats://"), strings.HasPrefix(s, "tls://"):
			default:
				l.errAt(v.val, v.path, "want embedded or a nats:// or tls:// URL, got %q", s)
				good = false
			}
			c.NATS = s
		} else {
			good = false
		}
	} else {
		l.errAt(e.val, e.path, "scaleout needs nats: embedded (a server inside mdp) or the URL of a NATS server with JetStream")
		good = false
	}
	if v, ok := m["partitions"]; ok {
		c.Partitions, ok = l.intRange(v, 1, MaxPartitions)
		good = good && ok
	}
	if v, ok := m["store"]; ok {
		if s, ok := l.str(v); ok {
			if c.NATS != "" && !c.Embedded() {
				l.errAt(v.val, v.path, "store is the embedded server's directory; with nats: %s the server keeps its own", c.NATS)
				good = false
			} else if s == "" {
				l.errAt(v.val, v.path, "want a directory, got an empty string")
				good = false
			}
			c.Store = s
		} else {
			good = false
		}
	} else if c.Embedded() {
		l.errAt(e.val, e.path, "scaleout with nats: embedded needs a store: the directory of the embedded server's stream")
		good = false
	}
	if v, ok := m["sync"]; ok {
		if s, ok := l.str(v); ok {
			switch {
			case s != SyncAlways && s != SyncInterval:
				l.errUnknownChoice(v, "sync policy", s, SyncAlways, SyncInterval)
				good = false
			case c.NATS != "" && !c.Embedded():
				l.errAt(v.val, v.path, "sync is the embedded server's fsync policy; with nats: %s the server sets its own", c.NATS)
				good = false
			default:
				c.Sync = s
			}
		} else {
			good = false
		}
	}
	if v, ok := m["retention"]; ok {
		good = l.decodeRetention(v, &c.Retention) && good
	}
	if v, ok := m["records_per_message"]; ok {
		c.RecordsPerMessage, ok = l.intRange(v, 1, MaxRecordsPerMessage)
		good = good && ok
	}
	if v, ok := m["outage_limit"]; ok {
		d, ok := l.duration(v, minOutageLimit)
		if ok {
			c.OutageLimit = d
		}
		good = good && ok
	}
	if !good {
		return
	}
	// The sources run as ingest, everything else as workers: one source node
	// whose records leave by its main port, so a worker's graph is the job's
	// graph with that node reading the partitions instead.
	var sources []string
	for i := range l.doc.Nodes {
		if n := &l.doc.Nodes[i]; n.Spec != nil && n.Spec.Kind == engine.KindSource {
			sources = append(sources, n.ID)
		}
	}
	switch len(sources) {
	case 0:
		if len(l.doc.Nodes) > 0 {
			l.errAt(e.val, e.path, "scaleout needs a source node; the job has none")
		}
		return
	case 1:
	default:
		l.errAt(e.val, e.path, "scaleout runs jobs with one source node; this job has %d (%s)", len(sources), strings.Join(sources, ", "))
		return
	}
	for _, ed := range l.doc.Edges {
		if ed.From == sources[0] && ed.FromPort != engine.PortMain {
			l.errAt(e.val, e.path, "scaleout carries a source's main output only; edge %s -> %s leaves %s by port %s", ed.From+"."+ed.FromPort, ed.To, ed.From, ed.FromPort)
			return
		}
	}
	c.Source = sources[0]
	l.doc.Scaleout = c
}

func (l *loader) decodeRetention(e entry, r *Retention) bool {
	m, ok := l.mapping(e.val, e.path, retentionKeys)
	if !ok {
		return false
	}
	good := true
	if v, ok := m["max_age"]; ok {
		d, ok := l.duration(v, 100*time.Millisecond)
		if ok {
			r.MaxAge = d
		}
		good = good && ok
	}
	if v, ok := m["max_bytes"]; ok {
		n, ok := l.intRange(v, 0, math.MaxInt64)
		r.MaxBytes = int64(n)
		good = good && ok
	}
	if v, ok := m["max_msgs"]; ok {
		n, ok := l.intRange(v, 0, math.MaxInt64)
		r.MaxMsgs = int64(n)
		good = good && ok
	}
	return good
}

// ScaleoutRereadable reports why the job's scale-out source cannot be read
// again to the same records, or nil when it can. A re-read (mdp ingest --reread, mdp run
// --resume) numbers each partition's records from 0 again, and workers drop
// as already read every record up to the numbers they had: a source whose
// second reading differs (a live feed; a paced generator, which stamps the
// wall clock) would have that many of its new records dropped. Recorded
// files (provider.replay) and the unpaced generator (provider.synthetic
// without a rate: its records follow from its seed alone) read the same
// records in the same order every time. The job server resumes a
// scaled-out job with checkpoints only when it is nil.
func (d *Document) ScaleoutRereadable() error {
	if d.Scaleout == nil {
		return fmt.Errorf("job %q has no scaleout section", d.Name)
	}
	id := d.Scaleout.Source
	for i := range d.Nodes {
		n := &d.Nodes[i]
		if n.ID != id {
			continue
		}
		switch {
		case n.Type == "provider.replay":
			return nil
		case n.Type == "provider.synthetic" && n.Params != nil && n.Params.Float("rate") == 0:
			return nil
		case n.Type == "provider.synthetic":
			return fmt.Errorf("source %q is a paced provider.synthetic (rate set): its records carry the wall clock, so a re-read would not give the same records and the workers would drop new ones as read; "+
				"a re-read (mdp ingest --reread, mdp run --resume) needs recorded input (provider.replay) or provider.synthetic without a rate", id)
		}
		return fmt.Errorf("source %q (%s) cannot be read again to the same records, so the workers would drop new ones as read; "+
			"a re-read (mdp ingest --reread, mdp run --resume) needs recorded input (provider.replay) or provider.synthetic without a rate", id, n.Type)
	}
	return fmt.Errorf("job %q has no source node %q", d.Name, id)
}
