package mqttsrc_test

import (
	"testing"
	"time"

	"github.com/mdpio/mdp/internal/bustest"
)

// TestDeadLetter: on_error dead_letter and fail on a topic of its own
// (MQTT has no position: the lines name the topic).
func TestDeadLetter(t *testing.T) {
	url, c := brokerURL(t)
	bustest.CheckDeadLetter(t, bustest.DeadLetter{Source: "provider.mqtt",
		Fresh: func(t *testing.T) (map[string]any, func([]byte)) {
			topic := bustest.Unique("mdptest/dl/")
			return source(url, topic), func(b []byte) {
				if tok := c.Publish(topic, 1, false, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					t.Fatalf("publish: %v", tok.Error())
				}
			}
		},
		Where: func(src map[string]any, n int) (string, string) {
			topic := src["topics"].([]string)[0]
			return `"bus":"mqtt","topic":` + bustest.JSONString(topic), "mqtt topic " + topic
		}})
}
