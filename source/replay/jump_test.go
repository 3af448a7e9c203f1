package replay

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/md"
)

// jumpFile writes n trades one second apart from 2024-01-02T00:00:00Z, the
// rows at the given 0-based indexes dated 2200 instead.
func jumpFile(t *testing.T, n int, outliers ...int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("ts,sym,px,qty\n")
	bad := map[int]bool{}
	for _, i := range outliers {
		bad[i] = true
	}
	t0 := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC).Unix()
	for i := 0; i < n; i++ {
		ts := t0 + int64(i)
		if bad[i] {
			ts = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
		}
		fmt.Fprintf(&b, "%d,A,%d.5,1\n", ts, 100+i%7)
	}
	return writeFile(t, filepath.Join(t.TempDir(), "j.csv"), b.String())
}

func jumpParams(path string, extra map[string]any) map[string]any {
	p := map[string]any{"path": path, "kind": "trade", "ts_format": "unix_s",
		"columns": map[string]any{"ts": "ts", "symbol": "sym", "price": "px", "size": "qty"}}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// TestOutlierTimestampIsMalformed: one trade dated 2200 among 5,000 (on the
// first data line, in the middle, on the last line) is a malformed row,
// logged with file:line; every other trade is replayed and the watermark
// never passes 2024.
func TestOutlierTimestampIsMalformed(t *testing.T) {
	for _, idx := range []int{0, 1, 2500, 4999} {
		t.Run(fmt.Sprint(idx), func(t *testing.T) {
			path := jumpFile(t, 5000, idx)
			r := mustReplay(t, jumpParams(path, nil))
			if len(r.c.trades) != 4999 {
				t.Fatalf("%d trades, want 4999", len(r.c.trades))
			}
			for i, tr := range r.c.trades {
				if tr.TS >= time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano() {
					t.Fatalf("trade %d at %s", i, md.FormatTime(tr.TS))
				}
				if i > 0 && tr.TS <= r.c.trades[i-1].TS {
					t.Fatalf("trade %d out of order", i)
				}
			}
			if d := r.job.Status().Nodes[0].Drops["malformed"]; d != 1 {
				t.Fatalf("malformed %d, want 1", d)
			}
			line := fmt.Sprintf("file=%s line=%d reason=\"event time 2200-01-01T00:00:00Z ", path, idx+2)
			if !strings.Contains(r.logs.String(), line) || !strings.Contains(r.logs.String(), "an unconfirmed jump") {
				t.Fatalf("logs lack %s…:\n%s", line, r.logs.String())
			}
			for _, wm := range r.c.wms {
				if wm != md.MaxTime && wm >= time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano() {
					t.Fatalf("watermark reached %s", md.FormatTime(wm))
				}
			}
		})
	}
	// With max_jump 0 the guard is off: the outlier passes (as before).
	r := mustReplay(t, jumpParams(jumpFile(t, 50, 1), map[string]any{"max_jump": "0s"}))
	if len(r.c.trades) != 50 {
		t.Fatalf("max_jump 0: %d trades", len(r.c.trades))
	}
}

// TestOutlierDeadLettered: under on_error: dead_letter the unconfirmed jump
// goes to the dead-letter file with its line.
func TestOutlierDeadLettered(t *testing.T) {
	path := jumpFile(t, 20, 5)
	dl := filepath.Join(t.TempDir(), "dl.jsonl")
	r := mustReplay(t, jumpParams(path, map[string]any{"on_error": "dead_letter", "dead_letter_path": dl}))
	if len(r.c.trades) != 19 {
		t.Fatalf("%d trades", len(r.c.trades))
	}
	got := jsonLines(t, dl)
	if len(got) != 1 || got[0]["line"] != float64(7) || !strings.HasPrefix(got[0]["raw"].(string), "7258118400,A,") {
		t.Fatalf("dead letters %v", got)
	}
}

// TestWeekendGapReplaysAsToday: a real gap confirmed by the rows after it
// (HistData EUR/USD ticks with a 48-hour weekend between two halves)
// replays exactly as with the guard off.
func TestWeekendGapReplaysAsToday(t *testing.T) {
	data, err := os.ReadFile(histdataFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	// testdata holds one day; the second half moves to two days later, the
	// way Friday's close and Sunday's open sit in a real HistData month.
	var b strings.Builder
	for i, l := range lines {
		if i >= len(lines)/2 {
			day := l[:8]
			d, _ := time.Parse("20060102", day)
			l = d.AddDate(0, 0, 2).Format("20060102") + l[8:]
		}
		b.WriteString(l + "\n")
	}
	path := writeFile(t, filepath.Join(t.TempDir(), "weekend.csv"), b.String())
	on := mustReplay(t, map[string]any{"path": path, "preset": "histdata", "symbol": "EURUSD"})
	off := mustReplay(t, map[string]any{"path": path, "preset": "histdata", "symbol": "EURUSD", "max_jump": "0s"})
	if len(on.c.quotes) != len(lines) || len(off.c.quotes) != len(lines) {
		t.Fatalf("%d and %d quotes, want %d", len(on.c.quotes), len(off.c.quotes), len(lines))
	}
	for i := range on.c.quotes {
		if on.c.quotes[i] != off.c.quotes[i] {
			t.Fatalf("quote %d: %+v != %+v", i, on.c.quotes[i], off.c.quotes[i])
		}
	}
	gap := on.c.quotes[len(lines)/2].TS - on.c.quotes[len(lines)/2-1].TS
	if gap < int64(47*time.Hour) {
		t.Fatalf("gap %v", time.Duration(gap))
	}
	if d := on.job.Status().Nodes[0].Drops["malformed"]; d != 0 {
		t.Fatalf("malformed %d", d)
	}
}

// TestPacedReplayDoesNotStallOnOutlier: at speed 1000 a trade dated 2200
// used to stall the replay clock forever; now it is dropped and the replay
// ends on time.
func TestPacedReplayDoesNotStallOnOutlier(t *testing.T) {
	r := mustReplay(t, jumpParams(jumpFile(t, 300, 150), map[string]any{"speed": 1000}))
	if len(r.c.trades) != 299 || r.elapsed > 10*time.Second {
		t.Fatalf("%d trades in %v", len(r.c.trades), r.elapsed)
	}
}
