package replay

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdpio/mdp/engine"
)

// withPieceBytes sets pieceBytes for one test.
func withPieceBytes(t *testing.T, n int64) {
	t.Helper()
	old := pieceBytes
	pieceBytes = n
	t.Cleanup(func() { pieceBytes = old })
}

// replaySource is replay that also returns the Source.
func replaySource(t *testing.T, params map[string]any) (*result, *Source) {
	t.Helper()
	n := componentNode(t, "provider.replay", "src", params)
	var s *Source
	captureSource(n, &s)
	return runGraph(t, nil, n), s
}

// piecesOf is how many pieces each file of s was decoded in (0: whole).
func piecesOf(s *Source) []int {
	var out []int
	for _, r := range s.readers {
		n := 0
		if r.async != nil && r.async.d.pieces != nil {
			n = r.async.d.pieces.n
		}
		out = append(out, n)
	}
	return out
}

// badRows are malformed or awkward rows inserted into the tardis trades
// (keyed by the data row they follow): garbage, a bad price on a symbol
// no row had before (interned though the row is dropped), an unconfirmed
// jump (held, then dead-lettered with its text read back from the file), a
// blank line, too few fields, a CRLF line, a line longer than
// max_line_bytes, and a new instrument late in the file.
func badRows(json bool) map[int]string {
	if json {
		return map[int]string{
			3:    "garbage",
			400:  `{"exchange":"binance-futures","symbol":"NEWBAD","timestamp":1582329602111000,"local_timestamp":1,"id":1,"side":"buy","price":"x","amount":0.1}`,
			900:  `{"exchange":"binance-futures","symbol":"BTCUSDT","timestamp":1682329602111000,"local_timestamp":1,"id":7,"side":"buy","price":9682,"amount":0.1}`,
			1500: "",
			2200: `{"exchange":"binance-futures","symbol":"BTCUSDT","timestamp":1582329602117000,"local_timestamp":1582329602418420,"id":9,"side":"buy","price":9682,"amount":0.5}` + "\r",
			3100: `{"exchange":"` + strings.Repeat("x", 400) + `"}`,
			4000: `{"exchange":"binance-futures","symbol":"LATE","timestamp":1582329602118000,"local_timestamp":1582329602418420,"id":9,"side":"sell","price":1.5,"amount":2}`,
		}
	}
	return map[int]string{
		3:    "garbage",
		400:  "binance-futures,NEWBAD,1582329602111000,1,1,buy,notaprice,0.1",
		900:  "binance-futures,BTCUSDT,1682329602111000,1682329602111000,7,buy,9682,0.1",
		1500: "",
		2200: "binance-futures,BTCUSDT,1582329602117000,1582329602418420,9,buy,9682,0.5\r",
		2201: "a,b",
		3100: "binance-futures," + strings.Repeat("x", 400),
		4000: "binance-futures,LATE,1582329602118000,1582329602418420,9,sell,1.5,2",
	}
}

// withBadRows writes the tardis trades (as CSV or JSON lines) with
// badRows inserted.
func withBadRows(t *testing.T, path string, json bool) string {
	t.Helper()
	rows := readCSV(t, tardisTrades)
	bad := badRows(json)
	var b strings.Builder
	if !json {
		b.WriteString(strings.Join(rows[0], ",") + "\n")
	}
	for i, r := range rows[1:] {
		if json {
			fmt.Fprintf(&b, `{"exchange":%q,"symbol":%q,"timestamp":%s,"local_timestamp":%s,"id":%s,"side":%q,"price":%s,"amount":%s}`+"\n",
				r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])
		} else {
			b.WriteString(strings.Join(r, ",") + "\n")
		}
		if x, ok := bad[i]; ok {
			b.WriteString(x + "\n")
		}
	}
	return writeFile(t, path, b.String())
}

// TestPiecesMatchSerial: a large plain file decoded in pieces by several
// workers (pieces of 4 KiB, and of 97 bytes, shorter than most lines, so
// many are empty) replays exactly what a serial replay (decoders 1)
// emits: every record in order with the same symbol ids and sequence
// numbers, the instruments in the same id order (one first seen on a
// malformed row, one late in the file), the same malformed count and a
// dead-letter file identical line for line (file, line number, reason,
// raw text, also of the held jump whose text is read back from the file).
// CSV and JSON lines, one file and two files decoded in pieces at once.
func TestPiecesMatchSerial(t *testing.T) {
	dir := t.TempDir()
	csvPath := withBadRows(t, filepath.Join(dir, "t.csv"), false)
	jsonPath := withBadRows(t, filepath.Join(dir, "t.jsonl"), true)
	two := splitFile(t, csvPath, filepath.Join(dir), 2, map[int]map[int]string{1: {1300: "binance-futures,LATE2,x,1,2,buy,1,1"}})
	// Instruments first seen just past the end of a file's first chunk and
	// early in the second file: the merge interns them in the serial order
	// only if each file's table grows row by row, not a worker's chunk at
	// a time.
	var a, b strings.Builder
	for i, l := range strings.Split(strings.TrimRight(readFile(t, tardisTrades), "\n"), "\n") {
		a.WriteString(l + "\n")
		b.WriteString(l + "\n")
		switch i {
		case 1030:
			a.WriteString(strings.Replace(l, "BTCUSDT", "NEWA", 1) + "\n")
		case 10:
			b.WriteString(strings.Replace(l, "BTCUSDT", "NEWB", 1) + "\n")
		}
	}
	late := []string{writeFile(t, filepath.Join(dir, "late-a.csv"), a.String()), writeFile(t, filepath.Join(dir, "late-b.csv"), b.String())}
	cases := []struct {
		name      string
		files     []string
		decoders  []int
		malformed int64
	}{
		{"csv", []string{csvPath}, []int{2, 3}, 5},
		{"jsonl", []string{jsonPath}, []int{2, 3}, 4},
		{"two csv files", two, []int{4}, 6},
		{"two files, late instruments", late, []int{4}, 0},
	}
	for _, pb := range []int64{4096, 97, 16 << 10} {
		withPieceBytes(t, pb)
		for _, tc := range cases {
			run := func(decoders int) (*result, string, *Source) {
				dl := filepath.Join(dir, fmt.Sprintf("dl-%s-%d-%d.jsonl", tc.name, pb, decoders))
				r, s := replaySource(t, map[string]any{"path": tc.files, "preset": "tardis_trades", "decoders": decoders, "file_pieces": true,
					"on_error": "dead_letter", "dead_letter_path": dl, "max_line_bytes": 256})
				if r.err != nil {
					t.Fatalf("%s decoders %d: %v", tc.name, decoders, r.err)
				}
				return r, readFile(t, dl), s
			}
			serial, serialDL, _ := run(1)
			if n := len(serial.c.trades); n < 5000 {
				t.Fatalf("%s: serial replay emitted %d trades", tc.name, n)
			}
			if got := serial.job.Status().Nodes[0].Drops["malformed"]; got != tc.malformed {
				t.Fatalf("%s: serial replay dropped %d malformed rows, want %d:\n%s", tc.name, got, tc.malformed, serialDL)
			}
			if tc.malformed > 0 && !strings.Contains(serialDL, "unconfirmed jump") {
				t.Fatalf("%s: no unconfirmed jump dead-lettered:\n%s", tc.name, serialDL)
			}
			for _, n := range tc.decoders {
				par, parDL, s := run(n)
				for i, p := range piecesOf(s) {
					if p < 2 {
						t.Fatalf("%s decoders %d, pieces of %d bytes: file %d decoded in %d pieces", tc.name, n, pb, i, p)
					}
				}
				if !slices.Equal(par.c.trades, serial.c.trades) {
					i := 0
					for i < min(len(par.c.trades), len(serial.c.trades)) && par.c.trades[i] == serial.c.trades[i] {
						i++
					}
					t.Fatalf("%s decoders %d, pieces of %d bytes: %d trades, serial %d; first difference at %d", tc.name, n, pb, len(par.c.trades), len(serial.c.trades), i)
				}
				if a, b := instruments(par), instruments(serial); !slices.Equal(a, b) {
					t.Errorf("%s decoders %d, pieces of %d bytes: instruments %v, serial %v", tc.name, n, pb, a, b)
				}
				if parDL != serialDL {
					t.Errorf("%s decoders %d, pieces of %d bytes: dead letters\n%s\nserial:\n%s", tc.name, n, pb, parDL, serialDL)
				}
				if a := par.job.Status().Nodes[0].Drops["malformed"]; a != tc.malformed {
					t.Errorf("%s decoders %d, pieces of %d bytes: %d malformed, want %d", tc.name, n, pb, a, tc.malformed)
				}
			}
		}
	}
}

// TestPiecesDeadLetterLines: the dead letters of a file decoded in pieces
// name the lines the rows are on in the file.
func TestPiecesDeadLetterLines(t *testing.T) {
	withPieceBytes(t, 4096)
	dir := t.TempDir()
	path := withBadRows(t, filepath.Join(dir, "t.csv"), false)
	lines := strings.Split(readFile(t, path), "\n")
	dl := filepath.Join(dir, "dl.jsonl")
	_, s := replaySource(t, map[string]any{"path": path, "preset": "tardis_trades", "decoders": 2, "file_pieces": true,
		"on_error": "dead_letter", "dead_letter_path": dl, "max_line_bytes": 256})
	if p := piecesOf(s); p[0] < 2 {
		t.Fatalf("decoded in %d pieces", p[0])
	}
	got := strings.Split(strings.TrimSpace(readFile(t, dl)), "\n")
	if len(got) != 5 {
		t.Fatalf("%d dead letters, want 5", len(got))
	}
	for _, g := range got {
		var d deadLetter
		if err := json.Unmarshal([]byte(g), &d); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(lines[d.Line-1], "\r")
		if d.RawBytes > 0 {
			want = want[:len(d.Raw)]
		}
		if d.File != path || d.Raw != want {
			t.Errorf("dead letter %s: line %d of the file is %q", g, d.Line, want)
		}
	}
}

// TestPiecesFailLikeSerial: under on_error: fail the first malformed row
// of a file decoded in pieces stops the replay with the serial error.
func TestPiecesFailLikeSerial(t *testing.T) {
	withPieceBytes(t, 4096)
	path := withBadRows(t, filepath.Join(t.TempDir(), "t.csv"), false)
	for _, n := range []int{1, 2} {
		r, s := replaySource(t, map[string]any{"path": path, "preset": "tardis_trades", "decoders": n, "file_pieces": true, "on_error": "fail"})
		if want := path + ":6: malformed row (row has 1 fields, want at least 8); on_error is fail"; r.err == nil || !strings.Contains(r.err.Error(), want) {
			t.Errorf("decoders %d: error %v, want it to contain %q", n, r.err, want)
		}
		if p := piecesOf(s); n == 2 && p[0] < 2 {
			t.Errorf("decoders 2: decoded in %d pieces", p[0])
		}
	}
}

// TestPiecesResumeExactly: a checkpointed replay of a plain file decoded in
// pieces (and, beside it, one decoded serially) resumes from checkpoints
// mid-file with exactly the records the uninterrupted run emitted after
// them, across the confirmed two-hour jump.
func TestPiecesResumeExactly(t *testing.T) {
	withPieceBytes(t, 16<<10)
	dir := t.TempDir()
	file := filepath.Join(dir, "a.csv")
	writeTardis(t, file, 0, 30_000, false)
	for _, decoders := range []int{2, 1} {
		store := &ckStore{}
		params := map[string]any{"decoders": decoders, "file_pieces": true}
		full, s := runCkWith(t, []string{file}, params, &engine.CheckpointOptions{Interval: 2 * time.Millisecond, Timeout: time.Minute, Store: store})
		if p := piecesOf(s); (p[0] >= 2) != (decoders == 2) {
			t.Fatalf("decoders %d: decoded in %d pieces", decoders, p[0])
		}
		if len(full) != 30_000 {
			t.Fatalf("decoders %d: the uninterrupted run emitted %d trades", decoders, len(full))
		}
		var mid []*engine.Checkpoint
		counts := map[*engine.Checkpoint]int{}
		for _, cp := range store.cps {
			for _, nd := range cp.Nodes {
				var n int
				if nd.ID == "sink" {
					fmt.Sscan(string(nd.Instances[0].State), &n)
					if n > 0 && n < len(full) {
						mid = append(mid, cp)
						counts[cp] = n
					}
				}
			}
		}
		if len(mid) < 2 {
			t.Fatalf("decoders %d: %d of %d checkpoints fell mid-file: too few to test", decoders, len(mid), len(store.cps))
		}
		for _, cp := range []*engine.Checkpoint{mid[0], mid[len(mid)/2], mid[len(mid)-1]} {
			count := counts[cp]
			rest, rs := runCkWith(t, []string{file}, params, &engine.CheckpointOptions{Interval: time.Hour, Store: &ckStore{}, Restore: cp})
			if got := append(slices.Clone(full[:count]), rest...); !slices.Equal(got, full) {
				t.Fatalf("decoders %d: resumed after %d records: %d trades, want %d", decoders, count, len(got), len(full))
			}
			if decoders == 2 && len(full)-count > 5000 {
				if p := piecesOf(rs); p[0] < 2 {
					t.Errorf("resumed after %d records: the rest decoded in %d pieces", count, p[0])
				}
			}
		}
	}
}

// TestPiecesQuotesAndSizes: quotes decoded in pieces equal the serial
// ones, and trade size decimals reach the job's table as a serial replay
// notes them.
func TestPiecesQuotesAndSizes(t *testing.T) {
	withPieceBytes(t, 4096)
	q1, _ := replaySource(t, map[string]any{"path": tardisQuotes, "preset": "tardis_quotes", "decoders": 1})
	q2, s := replaySource(t, map[string]any{"path": tardisQuotes, "preset": "tardis_quotes", "decoders": 2, "file_pieces": true})
	if p := piecesOf(s); p[0] < 2 {
		t.Fatalf("quotes decoded in %d pieces", p[0])
	}
	if q1.err != nil || q2.err != nil || len(q1.c.quotes) != 5000 || !slices.Equal(q1.c.quotes, q2.c.quotes) {
		t.Fatalf("quotes: serial %d (%v), in pieces %d (%v), equal %v", len(q1.c.quotes), q1.err, len(q2.c.quotes), q2.err, slices.Equal(q1.c.quotes, q2.c.quotes))
	}
	path := withBadRows(t, filepath.Join(t.TempDir(), "t.csv"), false)
	t1, _ := replaySource(t, map[string]any{"path": path, "preset": "tardis_trades", "decoders": 1})
	t2, _ := replaySource(t, map[string]any{"path": path, "preset": "tardis_trades", "decoders": 3, "file_pieces": true})
	if _, s := replaySource(t, map[string]any{"path": path, "preset": "tardis_trades", "decoders": 3}); piecesOf(s)[0] != 0 {
		t.Errorf("without file_pieces: decoded in %d pieces", piecesOf(s)[0])
	}
	s1, s2 := t1.job.Symbols().Snapshot(), t2.job.Symbols().Snapshot()
	if len(s1) < 3 || len(s1) != len(s2) {
		t.Fatalf("instruments: serial %d, in pieces %d", len(s1), len(s2))
	}
	for i := range s1 {
		d1, ok1 := s1[i].SizeDecimals()
		d2, ok2 := s2[i].SizeDecimals()
		if d1 != d2 || ok1 != ok2 {
			t.Errorf("%s: size decimals serial %d %v, in pieces %d %v", s1[i].Symbol, d1, ok1, d2, ok2)
		}
	}
}
