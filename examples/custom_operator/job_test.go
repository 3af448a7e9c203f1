package main

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/mdpio/mdp/config"
	"github.com/mdpio/mdp/runtime"
)

// job.yaml runs as written (its stdout sink swapped for a file here) and
// gives bars in whole cents: synthetic prices are dollars, about 100.
func TestJobFileGivesBarsInCents(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bars.jsonl")
	doc, err := config.LoadFile("job.yaml", config.LoadOptions{Sets: []string{
		"dag.nodes.out.type=sink.file", "dag.nodes.out.params.path=" + out}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := runtime.New(doc, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var bar struct{ Open, High, Low, Close float64 }
		if err := json.Unmarshal(sc.Bytes(), &bar); err != nil {
			t.Fatal(err)
		}
		for _, p := range []float64{bar.Open, bar.High, bar.Low, bar.Close} {
			if p != math.Round(p) || p < 5000 || p > 20000 {
				t.Fatalf("price %v is not whole cents of a price near 100: %s", p, sc.Text())
			}
		}
		n++
	}
	if n != 40 { // 20,000 trades 1ms apart: 20 seconds, 2 symbols
		t.Fatalf("%d bars", n)
	}
}
