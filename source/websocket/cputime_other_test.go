//go:build !linux

package websocket

import "time"

// threadCPU is unavailable off Linux; benchmarks then report wall time only.
func threadCPU() func() (time.Duration, bool) {
	return func() (time.Duration, bool) { return 0, false }
}
