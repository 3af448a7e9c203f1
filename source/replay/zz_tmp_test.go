package replay

import (
	"bytes"
	"os"
	"testing"

	"github.com/mdpio/mdp/md"
	"github.com/mdpio/mdp/rowmap"
)

func benchSame(b *testing.B, same bool) {
	path := workloadFile(b, 100_000, false)
	data, _ := os.ReadFile(path)
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))[1:]
	if same {
		for i := range lines {
			lines[i] = lines[5000]
		}
	}
	r, _ := openBenchReader(b, path)
	defer r.close()
	var t md.Trade
	b.ResetTimer()
	for i := range b.N {
		if r.fast.Trade(&r.dec, lines[i%len(lines)], &t) != rowmap.FastOK {
			b.Fatal()
		}
	}
}
func BenchmarkZZSame(b *testing.B)  { benchSame(b, true) }
func BenchmarkZZVaried(b *testing.B) { benchSame(b, false) }
