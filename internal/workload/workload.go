// Package workload writes the reference bars workload (docs/bench: the
// splitmix64 generator of WORKLOAD.md, seed 42, 100 symbols, a trade every
// 10 µs from 2024-01-02T14:30:00Z) as the files a recorded feed would be:
// tardis-layout CSV or JSON lines. Benchmarks and tests of the replay path
// read it.
package workload

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
)

// WriteFile writes n trades to path as a tardis-layout CSV with its header
// (json false) or as JSON lines with the tardis keys (json true).
func WriteFile(path string, n int, json bool) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("workload: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	s := uint64(42)
	next := func() uint64 {
		s += 0x9E3779B97F4A7C15
		z := s
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		return z ^ (z >> 31)
	}
	const symbols = 100
	var cents [symbols]int64
	for k := range cents {
		cents[k] = 10000 + 100*int64(k)
	}
	const t0us = 1704205800 * 1_000_000
	if !json {
		w.WriteString("exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n")
	}
	var line []byte
	for i := 0; i < n; i++ {
		sym := next() % symbols
		r2 := next()
		cents[sym] = max(1, cents[sym]+int64(r2%21)-10)
		price := float64(cents[sym]) / 100.0
		size := 1 + (r2>>32)%100
		ts := t0us + int64(i)*10
		side := "buy"
		if r2&1 == 1 {
			side = "sell"
		}
		line = line[:0]
		if json {
			line = fmt.Appendf(line, `{"exchange":"bench","symbol":"SYM%03d","timestamp":%d,"local_timestamp":%d,"id":%d,"side":"%s","price":`, sym, ts, ts, i, side)
			line = strconv.AppendFloat(line, price, 'f', -1, 64)
			line = fmt.Appendf(line, `,"amount":%d}`+"\n", size)
		} else {
			line = fmt.Appendf(line, "bench,SYM%03d,%d,%d,%d,%s,", sym, ts, ts, i, side)
			line = strconv.AppendFloat(line, price, 'f', -1, 64)
			line = fmt.Appendf(line, ",%d\n", size)
		}
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("workload: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("workload: close %s: %w", path, err)
	}
	return nil
}
