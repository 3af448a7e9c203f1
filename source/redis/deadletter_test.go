package redissrc_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mdpio/mdp/internal/bustest"
)

// TestDeadLetter: on_error dead_letter and fail on a stream of its own,
// whose entries are added with the ids 1-1, 2-1, ... so the lines' ids
// are known.
func TestDeadLetter(t *testing.T) {
	url, c := redisURL(t)
	bustest.CheckDeadLetter(t, bustest.DeadLetter{Source: "provider.redis",
		Fresh: func(t *testing.T) (map[string]any, func([]byte)) {
			st := stream(t, c)
			n := 0
			return map[string]any{"url": url, "stream": st}, func(b []byte) {
				n++
				if err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: st, ID: fmt.Sprintf("%d-1", n), Values: []any{"d", b}}).Err(); err != nil {
					t.Fatal(err)
				}
			}
		},
		Where: func(src map[string]any, n int) (string, string) {
			st := src["stream"].(string)
			return fmt.Sprintf(`"bus":"redis","stream":%s,"id":"%d-1"`, bustest.JSONString(st), n+1),
				fmt.Sprintf("redis stream %s id %d-1", st, n+1)
		}})
}
