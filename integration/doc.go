// Package integration holds tests and benchmarks that run whole jobs through
// the built-in components: the reference workload's checksum in both modes and
// at several parallelisms, and end-to-end latency.
package integration
