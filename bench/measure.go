package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// measure.go is the order of the measurements: each step fills its part of
// the report.

// measure runs every step in order. Problems that spoil one number are
// recorded as failures and the rest goes on; an error means nothing more
// can be measured.
func (h *harness) measure(ctx context.Context) error {
	rep := h.rep
	rep.machine = machineLines()
	h.logf("machine: %s", strings.Join(rep.machine, "; "))

	// The handler's Go benchmarks first, while nothing else runs.
	h.logf("go test -bench ./proxy/ …")
	var err error
	if rep.micro, err = h.goBenchmarks(ctx); err != nil {
		rep.fail("%v", err)
	}
	if h.load, err = newLoader(&h.procs, h.dir, h.opts.threads); err != nil {
		return err
	}
	l, err := h.setUp(ctx)
	if err != nil {
		return err
	}
	if l.redisGW != nil {
		if rep.redisKeys, err = h.aliceKeys(ctx, l.redisAddr); err != nil {
			rep.fail("measuring alice's keys in redis: %v", err)
		}
		if rep.redisKeysNoIDToken, err = withoutIDToken(ctx, l.redisAddr, l.redisSecret, l.redisGW.cookie); err != nil {
			rep.fail("measuring alice's session without its ID token: %v", err)
		}
	}
	var hmgetBefore int64
	if l.redisGW != nil {
		if hmgetBefore, err = commandCalls(ctx, l.redisAddr, "hmget"); err != nil {
			rep.fail("reading redis commandstats: %v", err)
		}
	}
	for _, step := range []func(context.Context, *lineup) error{h.rounds, h.lowConcurrency} {
		if err := step(ctx, l); err != nil {
			return err
		}
	}
	if l.redisGW != nil && h.redisRequests > 0 {
		// Every Load that misses the local cache reads the record with
		// one HMGET; nothing else sends HMGET while only wrk is running.
		if after, err := commandCalls(ctx, l.redisAddr, "hmget"); err != nil {
			rep.fail("reading redis commandstats: %v", err)
		} else {
			rep.cacheHit = &cacheHitResult{requests: h.redisRequests, misses: after - hmgetBefore}
		}
	}
	for _, step := range []func(context.Context, *lineup) error{h.sweep, h.profiles} {
		if err := step(ctx, l); err != nil {
			return err
		}
	}
	h.memory()
	if l.redisGW != nil {
		h.logf("storing %d sessions in redis …", h.opts.sessions)
		res, err := scale(ctx, l.redisAddr, l.redisSecret, l.redisGW.cookie, h.opts.sessions, 1000)
		if err != nil {
			rep.fail("redis scale test: %v", err)
		} else {
			rep.scale = &res
		}
	}
	h.stillRunning(l)
	return ctx.Err()
}

// rounds warms every target up once (not reported), then runs the rounds,
// alternating targets so that drift on the machine hits all alike, then
// the single runs for the notes.
func (h *harness) rounds(ctx context.Context, l *lineup) error {
	o, rep := h.opts, h.rep
	rep.load = fmt.Sprintf("wrk -t%d -c%d, %d round(s) × %v per target, alternating; medians across rounds",
		o.threads, o.connections, o.rounds, o.duration)
	for _, t := range l.all() {
		if _, err := h.measureOne(ctx, "warm-up", t, o.connections, time.Second); err != nil {
			return err
		}
	}
	rep.rounds = map[*target][]result{}
	for i := 1; i <= o.rounds; i++ {
		for _, t := range l.all() {
			r, err := h.measureOne(ctx, fmt.Sprintf("round %d/%d", i, o.rounds), t, o.connections, o.duration)
			if err != nil {
				return err
			}
			rep.rounds[t] = append(rep.rounds[t], r)
		}
	}
	for _, t := range l.notes {
		r, err := h.measureOne(ctx, "note", t, o.connections, o.duration)
		if err != nil {
			return err
		}
		rep.notes = append(rep.notes, note{t, r})
	}
	return nil
}

// lowConcurrency runs every target with one connection, for the latency
// each adds over its floor when nothing queues: short runs in alternating
// rounds, like the main ones, since one short run is easily disturbed.
func (h *harness) lowConcurrency(ctx context.Context, l *lineup) error {
	h.rep.c1 = map[*target][]result{}
	for range h.opts.c1Rounds {
		for _, t := range l.all() {
			r, err := h.measureOne(ctx, "concurrency 1", t, 1, h.opts.c1Run)
			if err != nil {
				return err
			}
			h.rep.c1[t] = append(h.rep.c1[t], r)
		}
	}
	return nil
}

// sweep runs the reverse-proxy floor and cookie mode at growing
// concurrency, one short run each; one connection is lowConcurrency's.
func (h *harness) sweep(ctx context.Context, l *lineup) error {
	floor, cookie := l.proxy[0], l.proxy[1]
	for _, c := range []int{1, 4, 16, 64, 256} {
		row := sweepRow{conns: c, floor: summarize(h.rep.c1[floor]).rps, cookie: summarize(h.rep.c1[cookie]).rps}
		if c > 1 {
			f, err := h.measureOne(ctx, "sweep", floor, c, h.opts.sweepRun)
			if err != nil {
				return err
			}
			g, err := h.measureOne(ctx, "sweep", cookie, c, h.opts.sweepRun)
			if err != nil {
				return err
			}
			row.floor, row.cookie = f.RPS(), g.RPS()
		}
		h.rep.sweep = append(h.rep.sweep, row)
	}
	return nil
}

// memory reads the RSS of the floor and the gateways after their runs.
func (h *harness) memory() {
	for i := range h.rep.rssOf {
		p := &h.rep.rssOf[i]
		var err error
		if p.kb, err = p.proc.rssKB(); err != nil {
			h.rep.fail("RSS of %s: %v", p.name, err)
		}
	}
}

// measureOne runs wrk once against t, logs the result and records a
// failure when the run saw anything but 200s.
func (h *harness) measureOne(ctx context.Context, phase string, t *target, conns int, d time.Duration) (result, error) {
	before := cpuOf(t.procs)
	r, err := h.load.run(ctx, t, conns, d)
	if err == nil && r.Requests > 0 && len(t.procs) > 0 {
		r.CPUUS = float64(cpuOf(t.procs)-before) / float64(time.Microsecond) / float64(r.Requests)
	}
	if err != nil {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		return r, err
	}
	if t.redis {
		h.redisRequests += r.Requests
	}
	h.logf("%-14s %-40.40s c=%-3d %8.0f req/s  p50 %6dµs  p99 %6dµs", phase, t.name, conns, r.RPS(), r.P50US, r.P99US)
	if p := r.problem(); p != "" {
		h.rep.fail("%s, %s, %d connections: %s", phase, t.name, conns, p)
	}
	return r, nil
}

// cpuOf sums the CPU time of procs (0 for any that cannot be read).
func cpuOf(procs []*child) time.Duration {
	var sum time.Duration
	for _, p := range procs {
		if d, err := p.cpuTime(); err == nil {
			sum += d
		}
	}
	return sum
}
