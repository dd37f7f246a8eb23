package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// microbench.go runs the handler's Go benchmarks (proxy/bench_test.go) for
// bytes and allocations per request, which wrk cannot see.

// microBenchmarks are the benchmarks run, as a -bench pattern.
const microBenchmarks = "BenchmarkServeHTTPFloor|BenchmarkServeHTTPAuthenticated|BenchmarkForwardAuth"

// microResult is one line of `go test -bench -benchmem` output.
type microResult struct {
	name        string // without the -GOMAXPROCS suffix
	nsPerOp     float64
	bytesPerOp  float64
	allocsPerOp float64
}

// goBenchmarks runs
//
//	go test -run '^$' -bench 'BenchmarkServeHTTPFloor|BenchmarkServeHTTPAuthenticated|BenchmarkForwardAuth' -benchmem ./proxy/
//
// in the repository and parses its output.
func (h *harness) goBenchmarks(ctx context.Context) ([]microResult, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", microBenchmarks, "-benchmem", "./proxy/")
	cmd.Dir = h.root
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out, err := h.procs.output(ctx, "go test -bench", cmd)
	if err != nil {
		return nil, fmt.Errorf("go test -bench ./proxy/: %v\n%s", err, out)
	}
	res := parseGoBench(out)
	if len(res) == 0 {
		return nil, fmt.Errorf("go test -bench ./proxy/ printed no results:\n%s", out)
	}
	return res, nil
}

// parseGoBench reads the benchmark lines of `go test -bench` output:
//
//	BenchmarkForwardAuth-2   	  300000	      3900 ns/op	    1520 B/op	      21 allocs/op
func parseGoBench(out []byte) []microResult {
	var res []microResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // not a result line
		}
		r := microResult{name: f[0]}
		if i := strings.LastIndex(r.name, "-"); i > 0 {
			if _, err := strconv.Atoi(r.name[i+1:]); err == nil {
				r.name = r.name[:i]
			}
		}
		// The rest are value-unit pairs.
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				r.nsPerOp = v
			case "B/op":
				r.bytesPerOp = v
			case "allocs/op":
				r.allocsPerOp = v
			}
		}
		res = append(res, r)
	}
	return res
}
