package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// soaksample.go reads one gateway's state for a sample: RSS and open
// descriptors from /proc, goroutines and refreshes from its metrics
// listener, and the latencies its traffic saw.

// metricsText fetches the gateway's Prometheus exposition.
func metricsText(addr string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics answered %s", resp.Status)
	}
	return string(b), nil
}

// metricSum adds up the series of the metric name in a Prometheus text
// exposition whose labels include every one of labels (each written as
// in the exposition, `result="success"`). found is false when no series
// matched.
func metricSum(text, name string, labels ...string) (sum float64, found bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		metric, labelSet, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		if !allLabels(labelSet, labels) {
			continue
		}
		value, _, _ = strings.Cut(strings.TrimSpace(value), " ") // a timestamp may follow
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		sum, found = sum+v, true
	}
	return sum, found
}

// allLabels reports whether the label set (the text between the braces)
// holds each of want.
func allLabels(set string, want []string) bool {
	set = strings.TrimSuffix(set, "}")
	have := strings.Split(set, ",")
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// percentile is the p-th percentile (0 < p ≤ 1) of ds by the nearest-rank
// method; 0 for none. It sorts ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds))*p+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// gatewayState is what a sample reads from the gateway itself.
type gatewayState struct {
	rssKB, heapKB, goroutines, fds int
	refreshes                      float64 // portcullis_session_refreshes_total{result="success"}, so far
	metrics                        string  // the whole exposition, for the totals at the end
}

// readGateway reads g's process and metrics.
func readGateway(g *gateway) (gatewayState, error) {
	var st gatewayState
	var err error
	if st.rssKB, err = g.proc.rssKB(); err != nil {
		return st, fmt.Errorf("RSS of portcullis-%s: %w", g.name, err)
	}
	if st.fds, err = g.proc.openFDs(); err != nil {
		return st, fmt.Errorf("descriptors of portcullis-%s: %w", g.name, err)
	}
	if st.metrics, err = metricsText(g.metrics); err != nil {
		return st, fmt.Errorf("metrics of portcullis-%s: %w", g.name, err)
	}
	n, ok := metricSum(st.metrics, "go_goroutines")
	if !ok {
		return st, fmt.Errorf("portcullis-%s's metrics have no go_goroutines", g.name)
	}
	st.goroutines = int(n)
	heap, _ := metricSum(st.metrics, "go_memstats_heap_inuse_bytes")
	st.heapKB = int(heap / 1024)
	st.refreshes, _ = metricSum(st.metrics, "portcullis_session_refreshes_total", `result="success"`)
	return st, nil
}

// sample ends the load's interval and reads the gateway: one row of the
// table. last is the previous read, for the refreshes in the interval.
func (l *soakLoad) sample(at time.Duration, last gatewayState) (soakSample, gatewayState, error) {
	c, lat := l.interval()
	st, err := readGateway(l.gw)
	if err != nil {
		return soakSample{}, st, err
	}
	return soakSample{at: at, rssKB: st.rssKB, heapKB: st.heapKB, goroutines: st.goroutines, fds: st.fds, streams: int(l.streams.Load()),
		proxied: c.proxied, p50: percentile(lat, 0.50), p99: percentile(lat, 0.99), failures: c.failures,
		signIns: c.signIns, signOuts: c.signOuts, refreshes: int64(st.refreshes - last.refreshes), wsMessages: c.wsMessages}, st, nil
}

// saveProfiles writes the gateway's heap profile and goroutine dump into
// dir as portcullis-NAME-WHEN.heap and .goroutines (metrics.pprof is on
// in the soak), for `go tool pprof -base` between the start and the end.
func saveProfiles(g *gateway, dir, when string) error {
	c := &http.Client{Timeout: 30 * time.Second}
	for _, p := range [][2]string{{"heap?gc=1", "heap"}, {"goroutine?debug=1", "goroutines"}} {
		resp, err := c.Get("http://" + g.metrics + "/debug/pprof/" + p[0])
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /debug/pprof/%s answered %s", p[0], resp.Status)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("portcullis-%s-%s.%s", g.name, when, p[1])), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
