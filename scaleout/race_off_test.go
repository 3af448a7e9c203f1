//go:build !race

package scaleout

// raceEnabled is set when the tests run under the race detector.
const raceEnabled = false
