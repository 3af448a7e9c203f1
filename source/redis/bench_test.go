package redissrc_test

import (
	"context"
	"testing"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/mdpio/mdp/engine"
	"github.com/mdpio/mdp/internal/bustest"
)

// BenchmarkRedis measures, in one run against the machine's Redis, b.N
// entries of 64 trades each (bustest.PerMsg, one symbol per entry):
//
//   - sink/raw: go-redis alone adding pre-encoded frames, one XADD per
//     entry, each answered before the next (as the sink waits per batch;
//     the anchor);
//
//   - sink/mdp: a job, slice source -> sink.redis (encoding included);
//
//   - source/raw: XREADGROUP (COUNT 64) and XACK of each reply in a loop,
//     decoding nothing (the anchor);
//
//   - source/raw-decode: the same loop decoding every frame with busfmt
//     (the entry's string viewed as bytes, as provider.redis does);
//
//   - source/mdp: provider.redis -> sink.null, decoding every frame.
//
// The source figures are the steady state: the raw loops' clock starts
// after their first reply, source/mdp's once provider.redis handed on its
// first entries (so neither counts connecting or creating its group). The
// parent logs each one's ratio to its anchor in the same run.
//
//	go test ./source/redis -run '^$' -bench Redis -benchtime 20000x -count 3
func BenchmarkRedis(b *testing.B) {
	url, c := redisURL(b)
	ctx := context.Background()
	var r bustest.Rates
	defer r.Log(b, map[string]string{"sink/": "sink/raw", "source/": "source/raw"})
	frames := bustest.NewBenchFrames()
	var filled string
	var n int
	outer := b
	b.Run("sink/raw", func(b *testing.B) {
		key := stream(b, c)
		b.ResetTimer()
		start := bustest.StartClock()
		for i := 0; i < b.N; i++ {
			if err := c.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"d", frames.Frame(i)}}).Err(); err != nil {
				b.Fatal(err)
			}
		}
		r.Report(b, b.N, start)
	})
	b.Run("sink/mdp", func(b *testing.B) {
		key := stream(outer, c) // kept for the readers
		bustest.BenchSink(b, &r, "sink.redis", map[string]any{"url": url, "stream": key}, b.N)
		filled, n = key, b.N
	})
	if filled == "" {
		return
	}
	raw := func(b *testing.B, decode bool) {
		group := bustest.Unique("raw")
		if err := c.XGroupCreate(ctx, filled, group, "0").Err(); err != nil {
			b.Fatal(err)
		}
		d := bustest.NewRawDecoder()
		b.ResetTimer()
		start := bustest.StartClock()
		got, first, limit := 0, true, min(b.N, n)
		for got < limit {
			res, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c", Streams: []string{filled, ">"}, Count: 64, Block: -1}).Result()
			if err != nil {
				b.Fatal(err)
			}
			ids := make([]string, 0, 64)
			for _, m := range res[0].Messages {
				ids = append(ids, m.ID)
				if decode {
					// The string's bytes viewed, not copied, as provider.redis does.
					v := m.Values["d"].(string)
					d.Decode(b, unsafe.Slice(unsafe.StringData(v), len(v)))
				}
			}
			if err := c.XAck(ctx, filled, group, ids...).Err(); err != nil {
				b.Fatal(err)
			}
			if first {
				// The clock starts after the first reply, as source/mdp's
				// does after its first entries are handed on.
				first = false
				b.ResetTimer()
				start = bustest.StartClock()
				limit -= len(ids)
				continue
			}
			got += len(ids)
		}
		r.Report(b, got, start)
	}
	b.Run("source/raw", func(b *testing.B) { raw(b, false) })
	b.Run("source/raw-decode", func(b *testing.B) { raw(b, true) })
	b.Run("source/mdp", func(b *testing.B) {
		src := bustest.Node(b, "provider.redis", "bus", map[string]any{"url": url, "stream": filled, "group": bustest.Unique("mdp")})
		// The clock starts once the first entries are handed on (the
		// client connected, the group made), as the raw loops' after
		// their first reply: both measure the steady state.
		bustest.BenchSource(b, &r, src, min(b.N, n), false, func(j *engine.Job) {
			for bustest.NodeStatus(j, "bus").EventsOut == 0 {
				time.Sleep(100 * time.Microsecond)
			}
		})
	})
}
