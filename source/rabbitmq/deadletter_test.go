package rabbitmqsrc_test

import (
	"context"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mdpio/mdp/internal/bustest"
)

// TestDeadLetter: on_error dead_letter and fail on a queue of its own (a
// queue has no position: the lines name the queue).
func TestDeadLetter(t *testing.T) {
	url, ch := amqpURL(t)
	bustest.CheckDeadLetter(t, bustest.DeadLetter{Source: "provider.rabbitmq",
		Fresh: func(t *testing.T) (map[string]any, func([]byte)) {
			q := queue(t, ch, "")
			return map[string]any{"url": url, "queue": q}, func(b []byte) {
				if err := ch.PublishWithContext(context.Background(), "", q, false, false, amqp.Publishing{Body: b}); err != nil {
					t.Fatal(err)
				}
			}
		},
		Where: func(src map[string]any, n int) (string, string) {
			q := src["queue"].(string)
			return `"bus":"rabbitmq","queue":` + bustest.JSONString(q), "rabbitmq queue " + q
		}})
}
