package bustest

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/busfmt"
	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/md"
)

// DeadLetter is a bus source's case for CheckDeadLetter.
type DeadLetter struct {
	Source string // the source's type
	// Fresh returns the source's params for a new destination (stream,
	// queue, topic) and a function publishing one raw message to it.
	Fresh func(t *testing.T) (source map[string]any, raw func(payload []byte))
	// Where is where the n-th message raw published to src's destination
	// (from 0) was read: the dead-letter line's fields before "reason"
	// (`"bus":"kafka","topic":"t","partition":0,"offset":3`) and how the
	// error of on_error: fail names it ("kafka topic t partition 0
	// offset 3").
	Where func(src map[string]any, n int) (fields, text string)
}

// frames are trades n..n+count as one message of format f, symbols A and B.
func frames(t *testing.T, f busfmt.Format, want []md.Trade) []byte {
	t.Helper()
	st := md.NewSymbolTable()
	ids := []md.SymID{st.Intern("bus", "A"), st.Intern("bus", "B")}
	b := md.NewBatch(md.KindTrade)
	for _, tr := range want {
		tr.Sym = ids[tr.Sym]
		b.Trades = append(b.Trades, tr)
	}
	msg, err := busfmt.NewWriter(f).Message(b, st.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), msg...)
}

// CheckDeadLetter checks a bus source's on_error against its real
// broker: good mdp frames around three malformed ones arrive exactly,
// the malformed ones are counted by reason and written to the dead-letter
// file line by line (bus, where, position, reason, the frame in base64); a
// json message's refused row is written with its line and text while its
// other rows arrive; and on_error: fail ends the job with an error naming
// the reason and where the message was read.
func CheckDeadLetter(t *testing.T, c DeadLetter) {
	syms := []string{"A", "B"}
	start := func(t *testing.T, src map[string]any) *Running {
		r := Start(t, []*engine.Node{Node(t, c.Source, "sub", src)}, md.KindTrade, engine.Options{Job: "dl"})
		deadline := time.Now().Add(30 * time.Second)
		for !r.Job.Ready() {
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready within 30s", c.Source)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // a subscription (MQTT) is in place
		return r
	}
	fileLines := func(t *testing.T, path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	bad := [][]byte{[]byte(`{"not":"a frame"}`), {'M', 'D', 9, 1, 0, 0, 0, 0, 0, 0, 0, 0}, {'M', 'D'}}
	reasons := []string{"bad_magic", "bad_version", "truncated"}

	t.Run("mdp", func(t *testing.T) {
		src, raw := c.Fresh(t)
		path := filepath.Join(t.TempDir(), "dead.jsonl")
		src["on_error"], src["dead_letter_path"] = "dead_letter", path
		want := Trades(100, syms)
		r := start(t, src)
		raw(frames(t, busfmt.MDP, want[:50]))
		for _, m := range bad {
			raw(m)
		}
		raw(frames(t, busfmt.MDP, want[50:]))
		r.WaitLen(t, len(want), 30*time.Second)
		time.Sleep(200 * time.Millisecond) // anything more would be extra
		r.Stop(t)
		CheckTrades(t, r.Sink, want, syms)
		ns := NodeStatus(r.Job, "sub")
		if ns.Drops["malformed"] != 3 || ns.Counters["malformed_bad_magic"] != 1 || ns.Counters["malformed_bad_version"] != 1 || ns.Counters["malformed_truncated"] != 1 {
			t.Fatalf("drops %v counters %v", ns.Drops, ns.Counters)
		}
		var exp strings.Builder
		for i, m := range bad {
			where, _ := c.Where(src, 1+i)
			exp.WriteString(`{` + where + `,"reason":"` + reasons[i] + `","raw_base64":"` + base64.StdEncoding.EncodeToString(m) + "\"}\n")
		}
		if got := fileLines(t, path); got != exp.String() {
			t.Fatalf("dead-letter file:\n%s\nwant:\n%s", got, exp.String())
		}
	})

	t.Run("json", func(t *testing.T) {
		src, raw := c.Fresh(t)
		path := filepath.Join(t.TempDir(), "dead.jsonl")
		src["format"], src["on_error"], src["dead_letter_path"] = "json", "dead_letter", path
		want := Trades(4, syms)
		lines := strings.SplitAfter(string(frames(t, busfmt.JSON, want)), "\n")
		msg := lines[0] + lines[1] + "not json\n" + lines[2] + lines[3]
		r := start(t, src)
		raw([]byte(msg))
		r.WaitLen(t, len(want), 30*time.Second)
		time.Sleep(200 * time.Millisecond)
		r.Stop(t)
		CheckTrades(t, r.Sink, want, syms)
		ns := NodeStatus(r.Job, "sub")
		if ns.Drops["malformed"] != 1 || ns.Counters["malformed_syntax"] != 1 {
			t.Fatalf("drops %v counters %v", ns.Drops, ns.Counters)
		}
		where, _ := c.Where(src, 0)
		exp := `{` + where + `,"reason":"syntax","line":3,"row":"not json"}` + "\n"
		if got := fileLines(t, path); got != exp {
			t.Fatalf("dead-letter file:\n%s\nwant:\n%s", got, exp)
		}
	})

	t.Run("fail", func(t *testing.T) {
		src, raw := c.Fresh(t)
		src["on_error"] = "fail"
		r := start(t, src)
		raw(frames(t, busfmt.MDP, Trades(10, syms)))
		raw(bad[0])
		select {
		case <-r.Job.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("on_error: fail: the job did not stop within 30s")
		}
		err := r.Job.Wait()
		_, text := c.Where(src, 1)
		prefix := text + `: malformed message (bad_magic: mdp frame: bad_magic: `
		if err == nil || !strings.Contains(err.Error(), prefix) || !strings.HasSuffix(err.Error(), "; on_error is fail") {
			t.Fatalf("job error %v, want one with %q", err, prefix)
		}
	})
}

// JSONString quotes s as the dead-letter file does (for Where's fields).
func JSONString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
