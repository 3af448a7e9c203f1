package jobs

import (
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/runtime"
)

// A job's standard output becomes one log record a line, whatever the
// writes' boundaries: lines split across writes are joined, a write with
// several lines gives several records, a line over MaxStdoutLine is cut,
// a final line without a newline is kept at flush, and "\r\n" ends a line.
func TestStdoutWriterLines(t *testing.T) {
	ring := newLogRing(100)
	w := &stdoutWriter{ring: ring, red: runtime.NewRedactor(nil)}
	long := strings.Repeat("x", MaxStdoutLine+10)
	for _, s := range []string{"one\ntw", "o\n", "three\r\nfour\n\n", long + "\n", "tail"} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write %q: %d %v", s, n, err)
		}
	}
	w.flush()
	w.flush() // nothing left: no empty record
	want := []string{"one", "two", "three", "four", "", strings.Repeat("x", MaxStdoutLine), "xxxxxxxxxx", "tail"}
	got := ring.tail(0, 0)
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i, r := range got {
		if r.Message != want[i] || r.Attrs["stream"] != "stdout" || r.Seq != int64(i+1) || r.Level != "INFO" {
			t.Fatalf("record %d: seq %d level %s attrs %v msg %.20q, want %.20q", i, r.Seq, r.Level, r.Attrs, r.Message, want[i])
		}
	}
}

// follow hands out the records after since and a channel the next record
// closes; close wakes followers for good.
func TestLogRingFollow(t *testing.T) {
	ring := newLogRing(3)
	ring.add(LogRecord{Message: "a"})
	recs, wake, ok := ring.follow(0)
	if !ok || len(recs) != 1 || recs[0].Message != "a" {
		t.Fatalf("follow(0): %v %v", recs, ok)
	}
	select {
	case <-wake:
		t.Fatal("woken before a new record")
	default:
	}
	recs, wake2, _ := ring.follow(1)
	if len(recs) != 0 || wake2 != wake {
		t.Fatalf("follow(1): %v, same channel %v", recs, wake2 == wake)
	}
	go ring.add(LogRecord{Message: "b"})
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("not woken by the next record")
	}
	// The ring holds 3: after five more, records 2 and 3 are gone and the
	// follower sees the gap in the sequence.
	for _, m := range []string{"c", "d", "e", "f"} {
		ring.add(LogRecord{Message: m})
	}
	recs, _, _ = ring.follow(1)
	if len(recs) != 3 || recs[0].Seq != 4 || recs[2].Seq != 6 {
		t.Fatalf("after overwrite: %+v", recs)
	}
	_, wake, _ = ring.follow(6)
	ring.close()
	select {
	case <-wake:
	default:
		t.Fatal("close did not wake the follower")
	}
	if _, _, ok := ring.follow(6); ok {
		t.Fatal("follow on a closed ring")
	}
}
