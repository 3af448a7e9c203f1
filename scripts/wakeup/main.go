// Command wakeup measures how long this machine takes to wake a thread: two
// OS threads, each pinned to a CPU, pass one byte back and forth over a pair
// of pipes, and the round trips' percentiles are printed for every pair of
// CPUs given (the same CPU twice, then across CPUs).
//
// It qualifies a machine for latency figures: a round trip is two wake-ups
// and no work, so no server on the machine can answer a request that needs a
// wake-up on another CPU faster than this tail. The job server's GET p99
// target (README: Job server, Isolation) is judged against it.
//
//	go run ./scripts/wakeup                 # CPUs 0 and 1, 20000 round trips a pair
//	go run ./scripts/wakeup -cpus 0,1 -n 50000 -gap 200us
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	cpus := flag.String("cpus", "0,1", "two CPUs, comma-separated")
	n := flag.Int("n", 20000, "round trips per pair")
	gap := flag.Duration("gap", 200*time.Microsecond, "pause between round trips (lets the threads sleep, as between requests)")
	flag.Parse()
	parts := strings.Split(*cpus, ",")
	if len(parts) != 2 {
		log.Fatalf("-cpus %q: want two CPUs, as 0,1", *cpus)
	}
	var c [2]int
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 0 {
			log.Fatalf("-cpus %q: %q is not a CPU number", *cpus, p)
		}
		c[i] = v
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("load average %s", load)
	fmt.Println("| CPUs (waker, woken) | round trip p50 | p99 | p99.9 | max |")
	fmt.Println("|---|---|---|---|---|")
	for _, pair := range [][2]int{{c[0], c[0]}, {c[0], c[1]}, {c[1], c[0]}, {c[1], c[1]}} {
		d, err := pingPong(pair[0], pair[1], *n, *gap)
		if err != nil {
			log.Fatal(err)
		}
		slices.Sort(d)
		q := func(p float64) time.Duration { return d[int(p*float64(len(d)-1))] }
		fmt.Printf("| %d, %d | %v | %v | %v | %v |\n", pair[0], pair[1], q(0.5), q(0.99), q(0.999), d[len(d)-1])
	}
}

// pingPong times n round trips of one byte between a thread pinned to cpu a
// and one pinned to cpu b.
func pingPong(a, b, n int, gap time.Duration) ([]time.Duration, error) {
	var there, back [2]int
	if err := unix.Pipe(there[:]); err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	if err := unix.Pipe(back[:]); err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	defer func() {
		for _, fd := range []int{there[0], there[1], back[0], back[1]} {
			unix.Close(fd)
		}
	}()
	echoErr := make(chan error, 1)
	go func() {
		if err := pin(b); err != nil {
			echoErr <- err
			return
		}
		defer runtime.UnlockOSThread()
		buf := make([]byte, 1)
		for range n {
			if _, err := unix.Read(there[0], buf); err != nil {
				echoErr <- fmt.Errorf("echo read: %w", err)
				return
			}
			if _, err := unix.Write(back[1], buf); err != nil {
				echoErr <- fmt.Errorf("echo write: %w", err)
				return
			}
		}
		echoErr <- nil
	}()
	if err := pin(a); err != nil {
		return nil, err
	}
	defer runtime.UnlockOSThread()
	buf := make([]byte, 1)
	d := make([]time.Duration, n)
	for i := range n {
		t := time.Now()
		if _, err := unix.Write(there[1], buf); err != nil {
			return nil, fmt.Errorf("write: %w", err)
		}
		if _, err := unix.Read(back[0], buf); err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		d[i] = time.Since(t)
		time.Sleep(gap)
	}
	return d, <-echoErr
}

// pin locks the calling goroutine to its thread and the thread to cpu.
func pin(cpu int) error {
	runtime.LockOSThread()
	var s unix.CPUSet
	s.Set(cpu)
	if err := unix.SchedSetaffinity(0, &s); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	return nil
}
