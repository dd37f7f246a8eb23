package main

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report.go collects what was measured and prints the table.

// report is everything one run of the harness found.
type report struct {
	opts    options
	machine []string
	load    string // how wrk was run

	proxyTargets, faTargets []*target
	rounds                  map[*target][]result
	notes                   []note               // single runs reported against the floor
	c1                      map[*target][]result // concurrency 1, one per round
	sweep                   []sweepRow
	micro                   []microResult
	rssOf                   []rssProbe
	cookies                 []cookieSize
	redisKeys               []redisKey
	redisKeysNoIDToken      []redisKey // the same session saved without its ID token
	scale                   *scaleResult
	profiles                []profiled
	cacheHit                *cacheHitResult

	otherCores  float64 // average CPU other work used during the run; -1: unknown
	failures    []string
	interrupted bool
	wall        time.Duration
}

type note struct {
	t *target
	r result
}

type sweepRow struct {
	conns         int
	floor, cookie float64 // req/s
}

type rssProbe struct {
	name string
	proc *child
	kb   int
}

type cookieSize struct {
	mode  string
	bytes int
}

// fail records a problem that makes the run fail, and says so at once.
func (r *report) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.failures = append(r.failures, msg)
	fmt.Fprintln(os.Stderr, "bench: FAIL:", msg)
}

// summary is the medians across rounds of one target.
type summary struct {
	rps, p50, p99 float64
	cpu           float64 // CPU µs per request of the servers under test
	spread        float64 // (max - min) / median of req/s across rounds
	reissued      int64
}

func summarize(runs []result) summary {
	var s summary
	if len(runs) == 0 {
		return s
	}
	var rps, p50, p99, cpu []float64
	for _, r := range runs {
		cpu = append(cpu, r.CPUUS)
		rps = append(rps, r.RPS())
		p50 = append(p50, float64(r.P50US))
		p99 = append(p99, float64(r.P99US))
		s.reissued += r.Reissued
	}
	s.rps, s.p50, s.p99, s.cpu = median(rps), median(p50), median(p99), median(cpu)
	if s.rps > 0 {
		s.spread = (slices.Max(rps) - slices.Min(rps)) / s.rps
	}
	return s
}

// median of xs; the mean of the middle two when there is an even number.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func ratio(x, floor float64) string {
	if floor == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", x/floor)
}

// printer writes one line of the table.
type printer func(format string, args ...any)

// print writes the table. Sections that were not measured (skipped, or
// stopped by an error) are left out.
func (r *report) print(w io.Writer) {
	p := printer(func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) })
	p("")
	p("Portcullis load benchmark (loopback; every server its own process)")
	for _, l := range r.machine {
		p("  %s", l)
	}
	if r.load != "" {
		p("  load       %s", r.load)
	}
	for _, section := range []func(printer){r.printThroughput, r.printConcurrency1, r.printSweep, r.printMicro, r.printMemory, r.printScale, r.printProfiles} {
		section(p)
	}
	r.printResult(p)
}

// printThroughput is the main table: medians of the rounds, as ratios to
// the floors, and the notes.
func (r *report) printThroughput(p printer) {
	if len(r.rounds) == 0 {
		return
	}
	p("")
	p("%-38s %9s %6s %7s %8s %6s %8s %6s", "Throughput and latency", "req/s", "×floor", "spread", "p50 µs", "×floor", "p99 µs", "×floor")
	for _, sec := range []struct {
		title   string
		targets []*target
	}{{"Reverse proxy", r.proxyTargets}, {"Forward-auth: nginx auth_request (docs/forward-auth.md)", r.faTargets}} {
		if len(sec.targets) == 0 {
			continue
		}
		p("%s", sec.title)
		for _, t := range sec.targets {
			s := summarize(r.rounds[t])
			f := s
			if t.floor != nil {
				f = summarize(r.rounds[t.floor])
			}
			p("  %-36s %9.0f %6s %6.0f%% %8.0f %6s %8.0f %6s", t.name, s.rps, ratio(s.rps, f.rps),
				100*s.spread, s.p50, ratio(s.p50, f.p50), s.p99, ratio(s.p99, f.p99))
		}
	}
	p("  spread: (max − min) / median of req/s across rounds. ×floor: req/s below 1 is slower, latency above 1 is slower.")
	p("  CPU per request of the servers under test (from /proc; the upstream and wrk not counted), median of the rounds:")
	for _, t := range append(slices.Clone(r.proxyTargets), r.faTargets...) {
		s := summarize(r.rounds[t])
		line := fmt.Sprintf("    %-36s %6.1f µs", t.name, s.cpu)
		if t.floor != nil {
			line += fmt.Sprintf("  (+%.1f µs over its floor)", s.cpu-summarize(r.rounds[t.floor]).cpu)
		}
		p("%s", line)
	}
	for _, n := range r.notes {
		f := summarize(r.rounds[n.t.floor])
		p("  note: %s, one run: %.0f req/s = %s × floor, p50 %d µs = %s × floor", n.t.name,
			n.r.RPS(), ratio(n.r.RPS(), f.rps), n.r.P50US, ratio(float64(n.r.P50US), f.p50))
	}
	var again []string
	for _, t := range append(slices.Clone(r.proxyTargets), r.faTargets...) {
		if n := summarize(r.rounds[t]).reissued; n > 0 {
			again = append(again, fmt.Sprintf("%s %d", t.name, n))
		}
	}
	if len(again) > 0 {
		p("  note: responses that re-issued the session cookie (the idle-timeout mark; wrk keeps the new one): %s", strings.Join(again, ", "))
	}
}

// printConcurrency1 is the latency each target adds when nothing queues.
func (r *report) printConcurrency1(p printer) {
	if len(r.c1) == 0 {
		return
	}
	p("")
	p("%-38s %9s %14s", fmt.Sprintf("Concurrency 1 (-c1, median of %d × %v)", r.opts.c1Rounds, r.opts.c1Run), "p50 µs", "added over floor")
	for _, t := range append(slices.Clone(r.proxyTargets), r.faTargets...) {
		runs, ok := r.c1[t]
		if !ok {
			continue
		}
		c := summarize(runs)
		added := ""
		if t.floor != nil {
			added = fmt.Sprintf("%+.0f µs", c.p50-summarize(r.c1[t.floor]).p50)
		}
		p("  %-36s %9.0f %14s", t.name, c.p50, added)
	}
}

// printSweep is throughput against the number of connections.
func (r *report) printSweep(p printer) {
	if len(r.sweep) == 0 {
		return
	}
	p("")
	p("Concurrency sweep (one %v run each)     %12s %13s %7s", r.opts.sweepRun, "floor req/s", "cookie req/s", "×floor")
	for _, s := range r.sweep {
		p("  %-36s %12.0f %13.0f %7s", fmt.Sprintf("%d connection(s)", s.conns), s.floor, s.cookie, ratio(s.cookie, s.floor))
	}
	p("  (1 connection: the median of the concurrency-1 runs)")
}

// printMicro is the handler's own cost from the Go benchmarks.
func (r *report) printMicro(p printer) {
	if len(r.micro) == 0 {
		return
	}
	p("")
	p("In the handler alone (go test -bench ./proxy/ -benchmem; in-memory upstream;")
	p("BenchmarkServeHTTPFloor is a bare ReverseProxy with the same request and upstream)")
	for _, m := range r.micro {
		p("  %-36s %9.2f µs/op %8.0f B/op %6.0f allocs/op", m.name, m.nsPerOp/1000, m.bytesPerOp, m.allocsPerOp)
	}
}

// printMemory is RSS, cookie sizes and what one session costs in Redis.
func (r *report) printMemory(p printer) {
	if len(r.cookies) == 0 {
		return // nobody signed in: nothing was measured
	}
	p("")
	p("Memory")
	for _, s := range r.rssOf {
		if s.kb > 0 {
			p("  %-36s %9.1f MiB RSS after the runs", s.name, float64(s.kb)/1024)
		}
	}
	if len(r.sweep) > 0 && len(r.rssOf) > 0 {
		p("  (RSS follows the peak concurrency served: the floor and cookie mode also ran the sweep to 256 connections)")
	}
	for _, c := range r.cookies {
		p("  %-36s %9d bytes (name=value, as sent)", "session cookie, "+c.mode+" mode", c.bytes)
	}
	for _, row := range []struct {
		name string
		keys []redisKey
	}{
		{"Redis per session (alice's keys)", r.redisKeys},
		{"  same, keep_id_token: false", r.redisKeysNoIDToken},
	} {
		if len(row.keys) == 0 {
			continue
		}
		var total int64
		var parts []string
		for _, k := range row.keys {
			total += k.bytes
			parts = append(parts, fmt.Sprintf("%s %s %d", shortKey(k.name), k.kind, k.bytes))
		}
		p("  %-36s %9d bytes (MEMORY USAGE: %s)", row.name, total, strings.Join(parts, " + "))
	}
	if c := r.cacheHit; c != nil {
		p("  %-36s %9.4f (%d of %d Loads served from the local cache; the rest are Redis HMGETs, from INFO commandstats)",
			"Redis mode, local cache hit ratio", c.ratio(), c.requests-c.misses, c.requests)
	}
}

// printScale is Redis holding many sessions.
func (r *report) printScale(p printer) {
	s := r.scale
	if s == nil {
		return
	}
	p("")
	p("Redis with %d sessions (written through session.RedisStore.Save, 64 at a time)", s.sessions)
	p("  %-36s %9.1f s (%.0f sessions/s)", "time to store them", s.store.Seconds(), float64(s.sessions)/s.store.Seconds())
	p("  %-36s %9.0f bytes (%.1f keys per session)", "used_memory delta per session", s.bytesPerSes, s.keysPerSes)
	p("  %-36s %9.0f µs (p99 %.0f µs, over %d random sessions, local cache off)", "Load p50, cache miss", micros(s.loadP50), micros(s.loadP99), s.loads)
}

// printResult says how much else ran on the machine and whether the run
// passed.
func (r *report) printResult(p printer) {
	p("")
	if r.otherCores >= 0 {
		p("Other work on the machine used %.2f of %d cores on average during the run (/proc/stat less the harness's processes);", r.otherCores, runtime.NumCPU())
		p("anything well above 0 makes the numbers noisy: run again on a quiet machine before trusting small differences.")
	}
	if r.interrupted {
		p("Result: INTERRUPTED after %s; the numbers above are partial.", r.wall.Round(time.Second))
		return
	}
	if len(r.failures) == 0 {
		p("Result: OK, every response was a 200 and no socket errors. Harness wall clock %s.", r.wall.Round(time.Second))
		return
	}
	p("Result: FAILED (%d problem(s)); harness wall clock %s:", len(r.failures), r.wall.Round(time.Second))
	for _, f := range r.failures {
		p("  - %s", f)
	}
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

var hexRun = regexp.MustCompile(`[0-9a-f]{12,}`)

// shortKey elides the hashes in a Redis key name.
func shortKey(k string) string { return hexRun.ReplaceAllString(k, "…") }
