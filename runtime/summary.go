package runtime

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mdpio/mdp/engine"
)

// Summary is what a job did, for the end-of-run report: records in per
// source, records out per node, rows written per sink, drops and errors by
// reason, elapsed time and rate. It is ready to serialise as JSON.
type Summary struct {
	Job   string `json:"job"`
	Mode  string `json:"mode"`
	State State  `json:"state"`
	// ElapsedSeconds runs from Start to the end of the job.
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// RecordsIn is every record the job's sources handed on.
	RecordsIn int64 `json:"records_in"`
	// RecordsPerSecond is RecordsIn over ElapsedSeconds.
	RecordsPerSecond float64       `json:"records_per_second"`
	Nodes            []NodeSummary `json:"nodes"`
	// Error is the job's error, when it failed.
	Error string `json:"error,omitempty"`
	// Bottleneck names the source that limited the job's rate, when one
	// did (engine.Status.Bottleneck).
	Bottleneck string `json:"bottleneck,omitempty"`
}

// NodeSummary is one node's part of a Summary.
type NodeSummary struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Kind string `json:"kind"`
	// In is the records a source handed on, or an operator or sink
	// received.
	In int64 `json:"in"`
	// Out is the records an operator or source emitted (sinks emit none).
	Out int64 `json:"out"`
	// Written is, for a sink, the rows it wrote: what a store sink
	// committed (dead-lettered rows are in Counts), what any other sink
	// received.
	Written int64            `json:"written,omitempty"`
	Drops   map[string]int64 `json:"drops,omitempty"`
	Errors  map[string]int64 `json:"errors,omitempty"`
	// Counts are the node's own figures (engine.Summarizer), such as a
	// store sink's rows_dead_lettered.
	Counts map[string]int64 `json:"counts,omitempty"`
}

// Summary returns what the job has done so far; after the job ended, what
// it did.
func (u *Unified) Summary() Summary {
	u.mu.Lock()
	s := Summary{Job: u.doc.Name, Mode: u.doc.Mode, State: u.state}
	started, ended, err := u.startedAt, u.endedAt, u.err
	u.mu.Unlock()
	if err != nil {
		s.Error = err.Error()
	}
	if !started.IsZero() {
		end := ended
		if end.IsZero() {
			end = time.Now()
		}
		s.ElapsedSeconds = end.Sub(started).Seconds()
	}
	es := u.job.Status()
	s.Bottleneck = es.Bottleneck
	for _, n := range es.Nodes {
		ns := NodeSummary{ID: n.ID, Type: n.Type, Kind: n.Kind, Drops: nonZero(n.Drops), Errors: nonZero(n.Errors)}
		counts := u.job.NodeSummary(n.ID)
		switch n.Kind {
		case engine.KindSource.String():
			ns.In, ns.Out = n.EventsOut, n.EventsOut
			s.RecordsIn += n.EventsOut
		case engine.KindSink.String():
			ns.In = n.EventsIn
			ns.Written = n.EventsIn
			if w, ok := counts["rows_written"]; ok {
				ns.Written = w
				delete(counts, "rows_written")
			}
		default:
			ns.In, ns.Out = n.EventsIn, n.EventsOut
		}
		ns.Counts = nonZero(counts)
		s.Nodes = append(s.Nodes, ns)
	}
	if s.ElapsedSeconds > 0 {
		s.RecordsPerSecond = float64(s.RecordsIn) / s.ElapsedSeconds
	}
	return s
}

func nonZero(m map[string]int64) map[string]int64 {
	var out map[string]int64
	for k, v := range m {
		if v != 0 {
			if out == nil {
				out = map[string]int64{}
			}
			out[k] = v
		}
	}
	return out
}

// logAttrs are the summary as log attributes: one group per node.
func (s Summary) logAttrs() []any {
	attrs := []any{
		"elapsed", s.elapsedText(),
		"records_in", s.RecordsIn, "records_per_second", int64(s.RecordsPerSecond),
	}
	for _, n := range s.Nodes {
		g := []any{"kind", n.Kind}
		switch n.Kind {
		case engine.KindSource.String():
			g = append(g, "out", n.Out)
		case engine.KindSink.String():
			g = append(g, "in", n.In, "written", n.Written)
		default:
			g = append(g, "in", n.In, "out", n.Out)
		}
		if len(n.Drops) > 0 {
			g = append(g, "drops", n.Drops)
		}
		if len(n.Errors) > 0 {
			g = append(g, "errors", n.Errors)
		}
		if len(n.Counts) > 0 {
			g = append(g, "counts", n.Counts)
		}
		attrs = append(attrs, groupAttr(n.ID, g))
	}
	if s.Bottleneck != "" {
		attrs = append(attrs, "bottleneck", s.Bottleneck)
	}
	return attrs
}

// WriteText writes the summary for people: one line for the job, one per
// node.
func (s Summary) WriteText(w io.Writer) {
	el := s.elapsedText()
	verdict := string(s.State)
	if s.State == StateStopped {
		verdict = "finished"
	}
	fmt.Fprintf(w, "job %s %s in %s: %s records in, %s/s\n", s.Job, verdict, el, thousands(s.RecordsIn), thousands(int64(s.RecordsPerSecond)))
	width := 0
	for _, n := range s.Nodes {
		width = max(width, len(n.ID))
	}
	for _, n := range s.Nodes {
		var line string
		switch n.Kind {
		case engine.KindSource.String():
			line = fmt.Sprintf("%s records out", thousands(n.Out))
		case engine.KindSink.String():
			line = fmt.Sprintf("%s records in, %s written", thousands(n.In), thousands(n.Written))
		default:
			line = fmt.Sprintf("%s records in, %s out", thousands(n.In), thousands(n.Out))
		}
		if len(n.Drops) > 0 {
			line += "; dropped " + reasonText(n.Drops)
		}
		if len(n.Errors) > 0 {
			line += "; errors " + reasonText(n.Errors)
		}
		if len(n.Counts) > 0 {
			line += "; " + reasonText(n.Counts)
		}
		fmt.Fprintf(w, "  %-*s  %-8s  %s\n", width, n.ID, n.Kind, line)
	}
	if s.Bottleneck != "" {
		fmt.Fprintf(w, "  hint: %s\n", s.Bottleneck)
	}
	if s.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", s.Error)
	}
}

// elapsedText is the elapsed time rounded to what a reader needs: µs
// below 10ms, ms above.
func (s Summary) elapsedText() string {
	d := time.Duration(s.ElapsedSeconds * float64(time.Second))
	if d < 10*time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

func reasonText(m map[string]int64) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + thousands(m[k])
	}
	return strings.Join(parts, ", ")
}

// thousands renders n with comma separators: 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func groupAttr(name string, args []any) slog.Attr { return slog.Group(name, args...) }
