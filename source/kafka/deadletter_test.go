package kafkasrc_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mdpio/mdp/internal/bustest"
)

// TestDeadLetter: on_error dead_letter and fail on a kfake topic of one
// partition (offsets 0, 1, ... in publish order).
func TestDeadLetter(t *testing.T) {
	bustest.CheckDeadLetter(t, bustest.DeadLetter{Source: "provider.kafka",
		Fresh: func(t *testing.T) (map[string]any, func([]byte)) {
			topic := unique("mdptest.")
			_, brokers := cluster(t, 1, unique("mdptest."), kfake.SeedTopics(1, topic))
			cl := client(t, brokers, kgo.DefaultProduceTopic(topic))
			return map[string]any{"brokers": brokers, "topics": []any{topic}}, func(b []byte) {
				if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: b}).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
		},
		Where: func(src map[string]any, n int) (string, string) {
			topic := src["topics"].([]any)[0].(string)
			return fmt.Sprintf(`"bus":"kafka","topic":%s,"partition":0,"offset":%d`, bustest.JSONString(topic), n),
				fmt.Sprintf("kafka topic %s partition 0 offset %d", topic, n)
		}})
}
