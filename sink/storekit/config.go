package storekit

import (
	"errors"
	"time"

	"github.com/mdpio/mdp/component"
)

// maxWorkers bounds workers (the Process split keeps its parts on the stack).
const maxWorkers = 64

// Config is the shared part of a store sink's params.
type Config struct {
	Workers          int           // worker goroutines, fed by symbol hash
	QueueSize        int           // rows accepted but not yet written, per sink instance
	BatchRows        int           // most rows per Write
	RetryMaxAttempts int           // attempts per batch, including the first
	RetryBackoff     time.Duration // first retry delay; doubles per attempt
	RetryBackoffMax  time.Duration // cap on the retry delay
	BreakerFailures  int           // consecutive failed attempts that open the breaker; 0 disables it
	BreakerCooldown  time.Duration // how long the breaker stays open before a probe
	DeadLetterPath   string        // JSON lines file; "" means DefaultDeadLetterPath
	// SoftAt and HardAt are the queue fill fractions reported as soft and
	// hard; 0 takes the job's engine.FeedbackConfig values (or 0.5 and 0.9).
	SoftAt float64
	HardAt float64
	// DefaultDeadLetterPath is used when DeadLetterPath is empty. With more
	// than one instance the instance number is added before the extension.
	DefaultDeadLetterPath string
}

// Defaults are the per-store defaults of the shared params. Zero fields take
// storekit's own defaults.
type Defaults struct {
	Workers   int // default 2
	QueueSize int // default 100000 rows
	BatchRows int // default 10000 rows
	// DeadLetter is the default dead-letter path shown in the docs; the
	// concrete sink usually derives the real default from its own params and
	// sets Config.DefaultDeadLetterPath.
	DeadLetter string
}

// Fields returns the shared params of a store sink, to append to its spec.
func Fields(d Defaults) []component.Field {
	if d.Workers <= 0 {
		d.Workers = 2
	}
	if d.QueueSize <= 0 {
		d.QueueSize = 100000
	}
	if d.BatchRows <= 0 {
		d.BatchRows = 10000
	}
	dl := "Dead-letter file (JSON lines: one record per line with the error). Rows that exhaust their retries or that the store rejects go here; it is created only when needed."
	if d.DeadLetter != "" {
		dl += " Default: " + d.DeadLetter + "."
	}
	return []component.Field{
		{Name: "workers", Type: component.Int, Default: d.Workers, Min: component.Bound(1), Max: component.Bound(64),
			Description: "Writer goroutines. Rows go to a worker by symbol hash, so each symbol's rows are written in order."},
		{Name: "queue_size", Type: component.Int, Default: d.QueueSize, Min: component.Bound(1), Max: component.Bound(1 << 24),
			Description: "Rows accepted but not yet written. When full, the sink blocks its input (backpressure); its fill level drives store feedback."},
		{Name: "batch_rows", Type: component.Int, Default: d.BatchRows, Min: component.Bound(1), Max: component.Bound(1 << 20),
			Description: "Most rows per write (one transaction). A worker writes whatever is queued for it, up to this many rows."},
		{Name: "retry_max_attempts", Type: component.Int, Default: 5, Min: component.Bound(1), Max: component.Bound(1000),
			Description: "Attempts per batch on transient errors, the first included. A batch that exhausts them goes to the dead-letter file."},
		{Name: "retry_backoff", Type: component.Duration, Default: "100ms", Min: component.Bound(0),
			Description: "Delay before the first retry; it doubles per attempt, with full jitter."},
		{Name: "retry_backoff_max", Type: component.Duration, Default: "10s", Min: component.Bound(0),
			Description: "Upper bound of the retry delay."},
		{Name: "breaker_failures", Type: component.Int, Default: 5, Min: component.Bound(0),
			Description: "Consecutive failed writes that open the circuit breaker: no writes are tried while it is open. 0 disables the breaker."},
		{Name: "breaker_cooldown", Type: component.Duration, Default: "5s", Min: component.Bound(0),
			Description: "How long the breaker stays open; then one write probes the store and closes it on success."},
		{Name: "dead_letter_path", Type: component.String, Path: true, Description: dl, Example: "bars.dead_letter.jsonl"},
		{Name: "soft_at", Type: component.Float, Min: component.Bound(0.01), Max: component.Bound(1),
			Description: "Queue fill (fraction of queue_size) at which the sink reports the soft feedback level, so sources slow to feedback.scale_soft. Default: the job's feedback.soft_at (0.5).", Example: 0.5},
		{Name: "hard_at", Type: component.Float, Min: component.Bound(0.01), Max: component.Bound(1),
			Description: "Queue fill at which the sink reports the hard level, so sources scale to feedback.scale_hard (0 pauses them). Default: the job's feedback.hard_at (0.9).", Example: 0.9},
	}
}

// Validate checks relations between the shared params; use it as (or call
// it from) the spec's Validate.
func Validate(p *component.Params) error {
	var errs []error
	if p.Has("soft_at") && p.Has("hard_at") && p.Float("soft_at") > p.Float("hard_at") {
		errs = append(errs, p.Errorf("soft_at", "soft_at (%g) must not exceed hard_at (%g)", p.Float("soft_at"), p.Float("hard_at")))
	}
	if p.Duration("retry_backoff_max") < p.Duration("retry_backoff") {
		errs = append(errs, p.Errorf("retry_backoff_max", "retry_backoff_max (%s) must not be below retry_backoff (%s)", p.Duration("retry_backoff_max"), p.Duration("retry_backoff")))
	}
	return errors.Join(errs...)
}

// ConfigFrom reads the shared params decoded with Fields.
func ConfigFrom(p *component.Params) (Config, error) {
	c := Config{
		Workers:          int(p.Int("workers")),
		QueueSize:        int(p.Int("queue_size")),
		BatchRows:        int(p.Int("batch_rows")),
		RetryMaxAttempts: int(p.Int("retry_max_attempts")),
		RetryBackoff:     p.Duration("retry_backoff"),
		RetryBackoffMax:  p.Duration("retry_backoff_max"),
		BreakerFailures:  int(p.Int("breaker_failures")),
		BreakerCooldown:  p.Duration("breaker_cooldown"),
		DeadLetterPath:   p.String("dead_letter_path"),
		SoftAt:           p.Float("soft_at"),
		HardAt:           p.Float("hard_at"),
	}
	return c, Validate(p)
}

// withDefaults fills zero fields, for sinks built from code.
func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 2
	}
	c.Workers = min(c.Workers, maxWorkers)
	if c.QueueSize <= 0 {
		c.QueueSize = 100000
	}
	if c.BatchRows <= 0 {
		c.BatchRows = 10000
	}
	if c.RetryMaxAttempts <= 0 {
		c.RetryMaxAttempts = 5
	}
	if c.RetryBackoffMax < c.RetryBackoff {
		c.RetryBackoffMax = c.RetryBackoff
	}
	return c
}
