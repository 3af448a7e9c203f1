// Package sostatus holds the status of a scaled-out job (package
// scaleout measures it; runtime.Status carries it for mdp status): the
// live workers, the partitions each owns, each partition's lag.
package sostatus

// Status is a scaled-out job's workers, the partitions each owns and each
// partition's lag, as one process of the job measures them: the live
// members from the membership bucket, the owners from the lease bucket,
// and the lag from the progress each worker publishes with its heartbeat
// (its own live progress for the process asked) against the stream.
type Status struct {
	Stream     string `json:"stream"`
	Partitions int    `json:"partitions"`
	// Workers are the live members, sorted by id.
	Workers []Worker `json:"workers"`
	// PartitionLag has every partition, in order.
	PartitionLag []Partition `json:"partition_lag"`
	// Unowned lists the partitions no worker holds a lease of.
	Unowned []int `json:"unowned,omitempty"`
	// LagMessages sums the partitions' unread messages, LagSeconds is the
	// largest event-time lag (partitions whose lag is reported only).
	LagMessages int64   `json:"lag_messages"`
	LagSeconds  float64 `json:"lag_seconds"`
	// MeasuredAt is when the stream was asked (RFC 3339 UTC).
	MeasuredAt string `json:"measured_at"`
}

// Worker is one live worker.
type Worker struct {
	ID      string `json:"id"`
	Host    string `json:"host,omitempty"`
	PID     int    `json:"pid,omitempty"`
	Started string `json:"started,omitempty"`
	// Partitions are those whose lease it holds, sorted.
	Partitions []int `json:"partitions"`
	// LagMessages and LagSeconds are its partitions' sum and largest.
	LagMessages int64   `json:"lag_messages"`
	LagSeconds  float64 `json:"lag_seconds"`
	// Retries counts its restarts of its job after transient failures
	// (NATS or PostgreSQL not reachable) since it started.
	Retries int64 `json:"retries,omitempty"`
}

// Partition is one partition's owner and lag.
type Partition struct {
	Partition int    `json:"partition"`
	Owner     string `json:"owner,omitempty"`
	// Reported is true when the owner has published its progress of the
	// partition (its heartbeat after it started reading): only then are
	// the lag figures known; they are 0 otherwise.
	Reported    bool    `json:"reported"`
	LagMessages int64   `json:"lag_messages"`
	LagSeconds  float64 `json:"lag_seconds"`
	// Duplicates is the records the owner dropped, since it started,
	// because it had read them already: an ingest's re-read (mdp ingest
	// --reread) republishes a crashed run's records.
	Duplicates int64 `json:"duplicates,omitempty"`
	// Checkpointed is true when the partition has a checkpoint (a worker
	// of mdp worker writes one every checkpoint interval): its last
	// stream sequence covered, when it was taken and how old it was at
	// MeasuredAt. Done says the partition was read to its end.
	Checkpointed         bool    `json:"checkpointed,omitempty"`
	CheckpointSeq        uint64  `json:"checkpoint_seq,omitempty"`
	CheckpointTime       string  `json:"checkpoint_time,omitempty"`
	CheckpointAgeSeconds float64 `json:"checkpoint_age_seconds,omitempty"`
	Done                 bool    `json:"done,omitempty"`
}
