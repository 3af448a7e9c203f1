package natssrc_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mdpio/mdp/internal/bustest"
)

// TestDeadLetter: on_error dead_letter and fail on a JetStream stream of
// its own (stream sequences 1, 2, ... in publish order).
func TestDeadLetter(t *testing.T) {
	url := natsURL(t)
	c, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	js, _ := jetstream.New(c)
	bustest.CheckDeadLetter(t, bustest.DeadLetter{Source: "provider.nats",
		Fresh: func(t *testing.T) (map[string]any, func([]byte)) {
			name, subj := stream(t, url)
			return map[string]any{"url": url, "subject": subj, "stream": name}, func(b []byte) {
				if _, err := js.Publish(context.Background(), subj, b); err != nil {
					t.Fatal(err)
				}
			}
		},
		Where: func(src map[string]any, n int) (string, string) {
			name, subj := src["stream"].(string), src["subject"].(string)
			return fmt.Sprintf(`"bus":"nats","stream":%s,"subject":%s,"seq":%d`, bustest.JSONString(name), bustest.JSONString(subj), n+1),
				fmt.Sprintf("nats stream %s subject %s seq %d", name, subj, n+1)
		}})
}
