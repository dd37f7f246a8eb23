package main

import (
	"fmt"
	"slices"
	"time"
)

// soakverdict.go decides whether a soak passed, from the samples alone, so
// that the rules can be tested on made-up series (soak_test.go).

// soakSample is one gateway at one sampling time; the counts are of the
// interval that ended then.
type soakSample struct {
	at         time.Duration // since the traffic began
	rssKB      int
	heapKB     int // the gateway's go_memstats_heap_inuse_bytes: reported, not judged
	goroutines int // the gateway's go_goroutines
	fds        int // entries in /proc/PID/fd
	streams    int // websocket streams the harness held open through the gateway
	proxied    int64
	p50, p99   time.Duration // of the interval's proxied GETs
	failures   int64         // requests of every kind that went wrong
	signIns    int64
	signOuts   int64
	refreshes  int64 // the gateway's portcullis_session_refreshes_total{result="success"}
	wsMessages int64
}

// The rules. Generous on purpose: they are to catch what grows with the
// traffic (a goroutine, a descriptor, a buffer per request, sign-in or
// stream: thousands over a soak), not the noise of a shared machine.
const (
	// soakWarmup samples are skipped: in the first interval the heap,
	// the connection pools and the caches grow to their working size.
	soakWarmup = 1
	// soakMinSamples is how many samples after the warm-up a verdict
	// needs; fewer is no evidence either way, and fails.
	soakMinSamples = 3
	// Per websocket stream the gateway holds the client's and the
	// upstream's connection (2 descriptors) and about 3 goroutines (the
	// connection's, ReverseProxy's two copiers); allowed are 4 and 2 for
	// each stream more at the end than at the start.
	goroutinesPerStream = 4
	fdsPerStream        = 2
	// RSS: more than twice the start at the end fails outright; more than
	// 1.5 times fails when it also rose in each of the last rssRising
	// intervals. Go's heap settles at a plateau GOGC sets; a leak keeps
	// climbing, and step by step.
	rssRising = 3
	// p99: the median p99 of the last third of the samples may be at most
	// 3 times that of the first third, or 25 ms above it, whichever is
	// more. Medians of thirds, since one interval's p99 on a busy 2-core
	// machine jumps.
	p99Factor = 3
	p99Slack  = 25 * time.Millisecond
)

// soakMargin is the growth allowed a count whatever the streams: a
// quarter of its start, at least min.
func soakMargin(start, min int) int {
	return max(min, start/4)
}

// soakJudgement is the verdict on one gateway's series.
type soakJudgement struct {
	start, end soakSample // the first sample after the warm-up, the last
	max        soakSample // each field's maximum after the warm-up
	problems   []string   // empty: passed
}

// judgeSoak applies the rules to samples (in time order, the warm-up
// included), the run's total of failed requests, and quiesced: the gateway
// once the traffic had stopped and every client connection was closed (nil
// when not taken). Its goroutines and descriptors must be back within the
// start's margin, since the start had streams and connections open.
func judgeSoak(samples []soakSample, failures int64, quiesced *soakSample) soakJudgement {
	var j soakJudgement
	if failures > 0 {
		j.problems = append(j.problems, fmt.Sprintf("%d requests failed", failures))
	}
	if len(samples) < soakWarmup+soakMinSamples {
		j.problems = append(j.problems, fmt.Sprintf("%d samples after the warm-up, want at least %d: run longer or sample more often",
			max(0, len(samples)-soakWarmup), soakMinSamples))
		return j
	}
	s := samples[soakWarmup:]
	j.start, j.end = s[0], s[len(s)-1]
	for _, x := range s {
		j.max.rssKB, j.max.goroutines = max(j.max.rssKB, x.rssKB), max(j.max.goroutines, x.goroutines)
		j.max.fds, j.max.p99, j.max.p50 = max(j.max.fds, x.fds), max(j.max.p99, x.p99), max(j.max.p50, x.p50)
	}
	moreStreams := max(0, j.end.streams-j.start.streams)
	if limit := j.start.goroutines + goroutinesPerStream*moreStreams + soakMargin(j.start.goroutines, 50); j.end.goroutines > limit {
		j.problems = append(j.problems, fmt.Sprintf("goroutines grew from %d to %d (allowed up to %d)", j.start.goroutines, j.end.goroutines, limit))
	}
	if limit := j.start.fds + fdsPerStream*moreStreams + soakMargin(j.start.fds, 30); j.end.fds > limit {
		j.problems = append(j.problems, fmt.Sprintf("open descriptors grew from %d to %d (allowed up to %d)", j.start.fds, j.end.fds, limit))
	}
	if p := rssProblem(s); p != "" {
		j.problems = append(j.problems, p)
	}
	if p := p99Problem(s); p != "" {
		j.problems = append(j.problems, p)
	}
	if q := quiesced; q != nil {
		if limit := j.start.goroutines + soakMargin(j.start.goroutines, 50); q.goroutines > limit {
			j.problems = append(j.problems, fmt.Sprintf("with the traffic stopped, %d goroutines remain (start %d, allowed up to %d)", q.goroutines, j.start.goroutines, limit))
		}
		if limit := j.start.fds + soakMargin(j.start.fds, 30); q.fds > limit {
			j.problems = append(j.problems, fmt.Sprintf("with the traffic stopped, %d descriptors remain open (start %d, allowed up to %d)", q.fds, j.start.fds, limit))
		}
	}
	return j
}

// rssProblem applies the RSS rule to the samples after the warm-up.
func rssProblem(s []soakSample) string {
	start, end := s[0].rssKB, s[len(s)-1].rssKB
	if 2*end > 4*start {
		return fmt.Sprintf("RSS grew from %d to %d kB, more than twice", start, end)
	}
	if 2*end <= 3*start || len(s) <= rssRising {
		return ""
	}
	for i := len(s) - rssRising; i < len(s); i++ {
		if s[i].rssKB <= s[i-1].rssKB {
			return ""
		}
	}
	return fmt.Sprintf("RSS grew from %d to %d kB (over 1.5 times) and rose in each of the last %d intervals", start, end, rssRising)
}

// p99Problem applies the latency rule to the samples after the warm-up.
func p99Problem(s []soakSample) string {
	third := len(s) / 3
	if third == 0 {
		return ""
	}
	med := func(xs []soakSample) time.Duration {
		var d []time.Duration
		for _, x := range xs {
			d = append(d, x.p99)
		}
		slices.Sort(d)
		return d[len(d)/2]
	}
	first, last := med(s[:third]), med(s[len(s)-third:])
	if limit := max(p99Factor*first, first+p99Slack); last > limit {
		return fmt.Sprintf("p99 grew from a median of %v in the first third to %v in the last (allowed up to %v)", first, last, limit)
	}
	return ""
}
