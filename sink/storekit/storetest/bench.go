package storetest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/sink/storekit"
)

// Stats is the storekit statistics of the job's sink node "store"; tb
// fails if the node published none.
func Stats(tb testing.TB, j *engine.Job) *storekit.Stats {
	tb.Helper()
	st, ok := j.NodeContexts("store")[0].Stats.Extra.Load().(*storekit.Stats)
	if !ok {
		tb.Fatal("store node published no storekit stats")
	}
	return st
}

// ReadDeadLetters reads the dead-letter file at path, one record a line.
func ReadDeadLetters(t testing.TB, path string) []storekit.DeadLetterRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []storekit.DeadLetterRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r storekit.DeadLetterRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("dead-letter line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// BenchRows is the benchmark workload size: MDP_BENCH_ROWS, default
// 1,000,000 rows.
func BenchRows(b testing.TB) int {
	if s := os.Getenv("MDP_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("MDP_BENCH_ROWS=%q", s)
		}
		return n
	}
	return 1000000
}

// Result is one measured benchmark run.
type Result struct {
	Rate   float64 // rows per wall-clock second
	CPURow float64 // CPU µs per row (all goroutines)
}

// NewResult is the result of writing rows in wall time using cpu CPU time.
func NewResult(rows int, wall, cpu time.Duration) Result {
	return Result{Rate: float64(rows) / wall.Seconds(), CPURow: float64(cpu.Microseconds()) / float64(rows)}
}

// Measure runs f from a collected heap and returns its result for rows rows.
func Measure(rows int, f func()) Result {
	runtime.GC() // start every measured run from the same heap state
	start, cpu0 := time.Now(), CPUTime()
	f()
	return NewResult(rows, time.Since(start), CPUTime()-cpu0)
}

// RunChain runs src through stages (the last one a store sink, node
// "store") and measures it from job start to the sink's Close returning.
// It fails b unless the sink wrote exactly want rows.
func RunChain(b testing.TB, src engine.Source, syms *md.SymbolTable, stages []Stage, want int64) (Result, *storekit.Stats) {
	b.Helper()
	j, err := Chain(src, stages, engine.Options{Symbols: syms})
	if err != nil {
		b.Fatal(err)
	}
	r := Measure(int(want), func() {
		if err := j.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	})
	st := Stats(b, j)
	if st.RowsWritten.Load() != want {
		b.Fatalf("%d rows written, want %d", st.RowsWritten.Load(), want)
	}
	return r, st
}

// Best keeps the best result of each named variant over the iterations of
// a benchmark that runs every variant once per iteration.
type Best struct {
	names []string
	best  []Result
}

// NewBest tracks the variants names.
func NewBest(names ...string) *Best {
	return &Best{names: names, best: make([]Result, len(names))}
}

// Add logs iteration i's results (one per name, in order) and keeps the best.
func (bs *Best) Add(b testing.TB, i int, r []Result) {
	b.Helper()
	line := fmt.Sprintf("iteration %d:", i)
	for k, v := range r {
		if v.Rate > bs.best[k].Rate {
			bs.best[k] = v
		}
		line += fmt.Sprintf(" %s %.0f rows/s (%.2f cpu-us/row);", bs.names[k], v.Rate, v.CPURow)
	}
	b.Log(line)
}

// Rate is the best rate of variant k.
func (bs *Best) Rate(k int) float64 { return bs.best[k].Rate }

// Report reports each variant's best rows/s and CPU µs per row.
func (bs *Best) Report(b *testing.B) {
	for k, v := range bs.best {
		b.ReportMetric(v.Rate, bs.names[k]+"_rows/s")
		b.ReportMetric(v.CPURow, bs.names[k]+"_cpu-us/row")
	}
}
