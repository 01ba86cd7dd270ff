// Spindle's Go peer: the workloads of shared/workloads.md on Go's runtime (standard library
// only), with the sizes of spindle-bench (Catalog.swift, Sizes), so that
// `spindle-bench --runtimes go` puts Go beside Spindle in the same rounds.
//
//	spindle-peer-go --workload W1 --threads N [--quick]   one RESULT line, as spindle-bench prints
//	spindle-peer-go --serve W8|W9 --threads N             prints "PORT <n>", serves until stdin ends
//
// --threads sets GOMAXPROCS. W8 is net/http answering GET / with "Hello, World!"; W9 echoes
// what it reads. Both listen on 127.0.0.1 with a port the kernel picks; Go's TCP connections
// have Nagle's algorithm off by default.
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type sizes struct {
	spawnManyTasks, yieldTasks, yieldsPerTask, pingPongPairs, roundTripsPerPair int
	chainDepth, chainRepeats, skynetLeaves, cpuTasks, timerTasks                int
}

var full = sizes{1_000_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000_000, 2_000, 100_000}
var quick = sizes{100_000, 1_000, 100, 1_000, 50, 1_000, 100, 100_000, 200, 10_000}

type metric struct {
	name  string
	value float64
}

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "spindle-peer-go: "+format+"\n", args...)
	os.Exit(1)
}

func check(ok bool, message string) {
	if !ok {
		die("%s", message)
	}
}

func main() {
	workload := flag.String("workload", "", "W1..W7")
	serve := flag.String("serve", "", "W8 or W9")
	threads := flag.Int("threads", 1, "GOMAXPROCS")
	isQuick := flag.Bool("quick", false, "spindle-bench's quick sizes")
	flag.Parse()
	if *threads < 1 {
		die("--threads takes a count of at least 1")
	}
	runtime.GOMAXPROCS(*threads)
	if *serve != "" {
		// The server ends when its standard input does: when spindle-bench closes it, or dies.
		go func() {
			io.Copy(io.Discard, os.Stdin)
			os.Exit(0)
		}()
	}
	switch *serve {
	case "W8":
		serveHTTP()
		return
	case "W9":
		serveEcho()
		return
	case "":
	default:
		die("--serve takes W8 or W9")
	}
	s := full
	if *isQuick {
		s = quick
	}
	var metrics []metric
	switch *workload {
	case "W1":
		metrics = spawnMany(s.spawnManyTasks)
	case "W2":
		metrics = yieldMany(s.yieldTasks, s.yieldsPerTask)
	case "W3":
		metrics = pingPong(s.pingPongPairs, s.roundTripsPerPair)
	case "W4":
		metrics = chainedSpawn(s.chainDepth, s.chainRepeats)
	case "W5":
		metrics = skynetRoot(s.skynetLeaves)
	case "W6":
		metrics = unbalancedCPU(s.cpuTasks)
	case "W7":
		metrics = timers(s.timerTasks)
	default:
		die("no workload %q on Go", *workload)
	}
	fields := make([]string, len(metrics))
	for i, m := range metrics {
		fields[i] = fmt.Sprintf("%s=%.3f", m.name, m.value)
	}
	fmt.Printf("RESULT go %s %d %s\n", *workload, *threads, strings.Join(fields, " "))
}

func nanos(start time.Time) float64 { return float64(time.Since(start).Nanoseconds()) }

// W1: every goroutine started before any is awaited; each stores its index in its slot.
func spawnMany(tasks int) []metric {
	start := time.Now()
	results := make([]int, tasks)
	var group sync.WaitGroup
	group.Add(tasks)
	for i := 0; i < tasks; i++ {
		go func(i int) { results[i] = i; group.Done() }(i)
	}
	group.Wait()
	sum := 0
	for _, v := range results {
		sum += v
	}
	elapsed := nanos(start)
	check(sum == tasks*(tasks-1)/2, "W1: wrong sum")
	return []metric{{"ns_per_task", elapsed / float64(tasks)}}
}

// W2: all goroutines runnable at once, each calls runtime.Gosched `yields` times.
func yieldMany(tasks, yields int) []metric {
	start := time.Now()
	var total int64
	var group sync.WaitGroup
	group.Add(tasks)
	for i := 0; i < tasks; i++ {
		go func() {
			for j := 0; j < yields; j++ {
				runtime.Gosched()
			}
			atomic.AddInt64(&total, int64(yields))
			group.Done()
		}()
	}
	group.Wait()
	elapsed := nanos(start)
	check(int(total) == tasks*yields, "W2: wrong yield count")
	return []metric{{"ns_per_yield", elapsed / float64(total)}}
}

// W3: each pair owns two channels of capacity 1, one per direction; the ponger answers i with i + 1.
func pingPong(pairs, trips int) []metric {
	start := time.Now()
	var total int64
	var group sync.WaitGroup
	group.Add(pairs)
	for p := 0; p < pairs; p++ {
		ping, pong := make(chan int, 1), make(chan int, 1)
		go func() {
			for v := range ping {
				pong <- v + 1
			}
		}()
		go func() {
			defer group.Done()
			defer close(ping)
			sum := 0
			for trip := 0; trip < trips; trip++ {
				ping <- trip
				if reply := <-pong; reply != trip+1 {
					return
				} else {
					sum += reply
				}
			}
			atomic.AddInt64(&total, int64(sum))
		}()
	}
	group.Wait()
	elapsed := nanos(start)
	check(int(total) == pairs*trips*(trips+1)/2, "W3: wrong replies")
	return []metric{{"ns_per_roundtrip", elapsed / float64(pairs*trips)}}
}

// W4: each goroutine starts the next and returns; the last one sends the chain's length.
func chainedSpawn(depth, repeats int) []metric {
	var link func(number int, done chan<- int)
	link = func(number int, done chan<- int) {
		if number == depth {
			done <- number
		} else {
			go link(number+1, done)
		}
	}
	start := time.Now()
	spawned := 0
	for r := 0; r < repeats; r++ {
		done := make(chan int, 1)
		go link(1, done)
		length := <-done
		check(length == depth, "W4: short chain")
		spawned += length
	}
	return []metric{{"ns_per_spawn", nanos(start) / float64(spawned)}}
}

// W5: a 10-ary tree of goroutines; leaf i returns i.
func skynet(first, size int, out chan<- int) {
	if size == 1 {
		out <- first
		return
	}
	child := size / 10
	results := make(chan int, 10)
	for i := 0; i < 10; i++ {
		go skynet(first+i*child, child, results)
	}
	sum := 0
	for i := 0; i < 10; i++ {
		sum += <-results
	}
	out <- sum
}

func skynetRoot(leaves int) []metric {
	start := time.Now()
	out := make(chan int, 1)
	go skynet(0, leaves, out)
	sum := <-out
	elapsed := nanos(start)
	check(sum == leaves*(leaves-1)/2, "W5: wrong sum")
	return []metric{{"total_ms", elapsed / 1e6}}
}

// splitMix64 is spindle-bench's generator (UnbalancedCPU.swift).
type splitMix64 struct{ state uint64 }

func (s *splitMix64) next() uint64 {
	s.state += 0x9E3779B97F4A7C15
	z := s.state
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (s *splitMix64) unit() float64 { return float64(s.next()>>11) / (1 << 53) }

// hash is spindle-bench's CPUWork.hash: dependent multiply-xorshift steps.
//
//go:noinline
func hash(seed uint64, iterations int) uint64 {
	x := seed
	for i := 0; i < iterations; i++ {
		x ^= x >> 31
		x *= 0x9E3779B97F4A7C15
		x ^= x >> 29
	}
	return x
}

// W6: spindle-bench's plan (geometric, p = 0.1, units of 50 µs at 455,000 iterations per ms).
func unbalancedCPU(tasks int) []metric {
	perUnit := 455_000 * 50 / 1000
	random := splitMix64{0x5EED0006}
	plan := make([]int, tasks)
	for i := range plan {
		units := 1
		for random.unit() >= 0.1 {
			units++
		}
		plan[i] = units * perUnit
	}
	start := time.Now()
	results := make([]uint64, tasks)
	var group sync.WaitGroup
	group.Add(tasks)
	for i, n := range plan {
		go func(i, n int) { results[i] = hash(uint64(i), n); group.Done() }(i, n)
	}
	group.Wait()
	elapsed := nanos(start)
	step := tasks / 32
	if step < 1 {
		step = 1
	}
	for i := 0; i < tasks; i += step {
		check(results[i] == hash(uint64(i), plan[i]), "W6: wrong hash")
	}
	return []metric{{"total_ms", elapsed / 1e6}}
}

// W7: every goroutine sleeps once for a fixed-seed 1-100 ms; lateness = wake-up - (asked + delay).
func timers(tasks int) []metric {
	random := splitMix64{0x5EED0007}
	plan := make([]int, tasks)
	for i := range plan {
		plan[i] = 1 + int(random.next()%100)
	}
	lateness := make([]float64, tasks)
	var group sync.WaitGroup
	group.Add(tasks)
	start := time.Now()
	for i, ms := range plan {
		go func(i, ms int) {
			delay := time.Duration(ms) * time.Millisecond
			asked := time.Now()
			time.Sleep(delay)
			lateness[i] = float64((time.Since(asked) - delay).Nanoseconds()) / 1e6
			group.Done()
		}(i, ms)
	}
	group.Wait()
	total := nanos(start) / 1e6
	sort.Float64s(lateness)
	check(lateness[0] >= 0, "W7: a sleep ended early")
	rank := func(f float64) float64 {
		r := int(math.Ceil(float64(tasks)*f)) - 1
		if r < 0 {
			r = 0
		}
		return lateness[r]
	}
	return []metric{{"total_ms", total}, {"lateness_p50_ms", rank(0.5)}, {"lateness_p99_ms", rank(0.99)},
		{"lateness_max_ms", lateness[tasks-1]}}
}

func listen() net.Listener {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		die("cannot listen: %v", err)
	}
	fmt.Printf("PORT %d\n", listener.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	return listener
}

// W8: net/http (keep-alive; it adds Date and Content-Length).
func serveHTTP() {
	body := []byte("Hello, World!")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(body)
	})
	die("W8: %v", http.Serve(listen(), handler))
}

// W9: a goroutine per connection reads what has arrived (64 KiB at most) and writes it back.
func serveEcho() {
	listener := listen()
	for {
		conn, err := listener.Accept()
		if err != nil {
			die("W9: accept: %v", err)
		}
		go func(conn net.Conn) {
			defer conn.Close()
			buffer := make([]byte, 64*1024)
			for {
				n, err := conn.Read(buffer)
				if n > 0 {
					if _, werr := conn.Write(buffer[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}(conn)
	}
}
