package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/portcullis/portcullis/demo"
)

// soak.go is `bench soak` (make soak): Portcullis in cookie mode and in
// Redis mode, side by side for the whole run, each under its own mixed
// traffic (soaktraffic.go), sampled every interval for RSS, goroutines,
// open descriptors and latency (soaksample.go), and judged by
// soakverdict.go: nothing may grow without bound, and no request may fail.
//
//	go run ./bench soak                              # 10 minutes
//	go run ./bench soak -duration 2m -interval 15s   # a shorter look
//
// It needs redis-server on PATH. Exit status: 0 passed, 1 a failed request,
// a growth beyond the rules or a harness error, 2 bad flags or a missing
// tool, 130 interrupted.

// soakOptions are the soak's flags.
type soakOptions struct {
	duration, interval time.Duration
	workers            int     // long-lived signed-in sessions making proxied GETs, per gateway
	rate               int     // proxied GETs per second across them, per gateway
	signIns            float64 // new sign-ins per second, per gateway
	streams            int     // long-lived websocket streams, per gateway
	keep               bool
}

// Tokens live soakTokenTTL and the gateway refreshes them soakRefreshBefore
// ahead: a session in use is refreshed every 10 seconds.
const (
	soakTokenTTL      = 30 * time.Second
	soakRefreshBefore = 20 * time.Second
	// soakChurnUsers take turns in the new sign-ins. The long-lived
	// sessions have users of their own: signing out at the demo provider
	// ends every session of the user there (zitadel's TerminateSession
	// names a user and a client), and so would end theirs at their next
	// refresh.
	soakChurnUsers = 40
)

func parseSoakFlags(args []string) (soakOptions, error) {
	var o soakOptions
	fs := flag.NewFlagSet("bench soak", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the traffic runs (both gateways at once)")
	fs.DurationVar(&o.interval, "interval", 30*time.Second, "sampling period; the first sample is the warm-up")
	fs.IntVar(&o.workers, "workers", 8, "long-lived signed-in sessions making proxied GETs, per gateway")
	fs.IntVar(&o.rate, "rate", 200, "proxied GETs per second across the workers, per gateway")
	fs.Float64Var(&o.signIns, "sign-ins", 2, "new sign-ins per second, per gateway; every other one is signed out")
	fs.IntVar(&o.streams, "streams", 4, "long-lived websocket streams per gateway (a short stream is also opened every second)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (configurations, gateway logs) and print its path")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.interval < time.Second || o.duration < o.interval || o.workers < 1 || o.rate < 1 || o.signIns <= 0 || o.streams < 0 {
		return o, errors.New("-interval must be at least 1s and -duration at least -interval; -workers, -rate and -sign-ins above 0, -streams not negative")
	}
	return o, nil
}

func runSoak(args []string) int {
	o, err := parseSoakFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench soak:", err)
		return 2
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		fmt.Fprintln(os.Stderr, "bench soak: missing redis-server; install with:\n  apt-get install -y redis-server")
		return 2
	}
	h := &harness{start: time.Now()}
	if code, err := h.prepare("portcullis-soak-"); err != nil {
		fmt.Fprintln(os.Stderr, "bench soak:", err)
		return code
	}
	ctx, stop := h.stopOnSignal()
	res, err := h.soak(ctx, o)
	h.procs.stopAll(3 * time.Second)
	if h.idp != nil {
		h.idp.Close()
	}
	interrupted := ctx.Err() != nil
	stop()
	switch {
	case interrupted:
		fmt.Fprintln(os.Stderr, "bench soak: interrupted; every child process was stopped")
		os.RemoveAll(h.dir)
		return 130
	case err != nil:
		fmt.Fprintf(os.Stderr, "bench soak: %v\nbench soak: logs and configurations kept in %s\n", err, h.dir)
		return 1
	}
	passed := res.print(os.Stdout)
	switch {
	case !passed:
		fmt.Fprintf(os.Stderr, "bench soak: FAIL; logs and configurations kept in %s\n", h.dir)
		return 1
	case o.keep:
		fmt.Fprintf(os.Stderr, "bench soak: configurations and logs kept in %s\n", h.dir)
		return 0
	}
	os.RemoveAll(h.dir)
	return 0
}

// longLived is how many sessions stay signed in through the soak, each
// as a user of its own: the workers, the long streams, the short streams'.
func (o soakOptions) longLived() int { return o.workers + o.streams + 1 }

// soakUserList is the n demo users the soak signs in as.
func soakUserList(n int) []demo.User {
	users := make([]demo.User, n)
	for i := range users {
		name := fmt.Sprintf("soak%02d", i)
		users[i] = demo.User{ID: "u-" + name, Username: name, Password: demo.NewPassword(), Email: name + "@example.com",
			EmailVerified: true, Name: "Soak " + name, Groups: []string{"developers"}}
	}
	return users
}

// soakSetUp builds Portcullis and starts the upstream, Redis, the provider
// and both gateways, each with a metrics listener, and the loads.
func (h *harness) soakSetUp(ctx context.Context, o soakOptions) ([]*soakLoad, error) {
	h.logf("building portcullis …")
	bin, err := h.buildPortcullis(ctx)
	if err != nil {
		return nil, err
	}
	_, upstreamAddr, err := h.startRole("upstream", "upstream")
	if err != nil {
		return nil, err
	}
	// Redis first, so that freeAddr cannot hand its port out again.
	_, redisAddr, err := h.startRedis()
	if err != nil {
		return nil, err
	}
	var gws []*gateway
	for _, m := range [][2]string{{"cookie", "cookie"}, {"Redis", "redis"}} {
		g, err := newGateway(m[0], m[1], "warn")
		if err != nil {
			return nil, err
		}
		if g.metrics, err = freeAddr(); err != nil {
			return nil, err
		}
		g.scopes = "[openid, email, profile, offline_access]"
		g.sessionExtra = fmt.Sprintf("  refresh_before: %v\n", soakRefreshBefore)
		gws = append(gws, g)
	}
	users := soakUserList(o.longLived() + soakChurnUsers)
	if err := h.startProvider(gws, users, soakTokenTTL); err != nil {
		return nil, err
	}
	var loads []*soakLoad
	for _, g := range gws {
		h.logf("starting portcullis-%s …", g.name)
		if err := h.startPortcullis(g, bin, randomSecret(), redisAddr, "http://"+upstreamAddr); err != nil {
			return nil, err
		}
		loads = append(loads, newSoakLoad(ctx, g, h.idp.URL, users))
	}
	return loads, nil
}

// soak sets up, starts every gateway's traffic, samples until the
// duration is over, stops the traffic and takes the quiesced sample.
func (h *harness) soak(ctx context.Context, o soakOptions) (*soakResult, error) {
	loads, err := h.soakSetUp(ctx, o)
	if err != nil {
		return nil, err
	}
	res := &soakResult{opts: o, modes: make([]soakMode, len(loads))}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, l := range loads {
		res.modes[i].load = l
		if err := h.startTraffic(o, l, stop, &wg); err != nil {
			close(stop)
			wg.Wait()
			return nil, err
		}
	}
	h.logf("traffic running for %v, a sample every %v", o.duration, o.interval)
	err = h.sampleUntil(ctx, o, res)
	close(stop)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	h.logf("traffic stopped; the quiesced sample in 5s")
	for _, l := range loads {
		l.tr.CloseIdleConnections()
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(5 * time.Second):
	}
	for i := range res.modes {
		m := &res.modes[i]
		q, st, err := m.load.sample(o.duration, m.last)
		if err != nil {
			return nil, err
		}
		m.quiesced, m.last = &q, st
		m.log = readGatewayLog(m.load.gw.proc.log)
	}
	return res, nil
}

// startTraffic signs in the long-lived sessions of l and starts its
// traffic, until stop closes.
func (h *harness) startTraffic(o soakOptions, l *soakLoad, stop <-chan struct{}, wg *sync.WaitGroup) error {
	h.logf("portcullis-%s: signing in %d sessions …", l.gw.name, o.longLived())
	sessions := make([]*soakSession, o.longLived())
	for i := range sessions {
		var err error
		if sessions[i], err = l.signIn(l.users[i]); err != nil {
			return fmt.Errorf("signing in to portcullis-%s: %w", l.gw.name, err)
		}
	}
	l.count(func(c *soakCounts) { c.signIns += int64(len(sessions)) })
	run := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	period := time.Duration(float64(time.Second) * float64(o.workers) / float64(o.rate))
	for i, s := range sessions[:o.workers] {
		delay := period * time.Duration(i) / time.Duration(o.workers)
		run(func() { every(stop, delay, period, func(int) { s.proxied() }) })
	}
	for i, s := range sessions[o.workers : o.workers+o.streams] {
		run(func() { l.longStream(stop, s, i) })
	}
	run(func() { l.shortStreams(stop, sessions[len(sessions)-1], time.Second) })
	run(func() { l.churn(stop, l.users[len(sessions):], time.Duration(float64(time.Second)/o.signIns)) })
	return nil
}

// sampleUntil takes a sample of every gateway each interval until the
// duration is over.
func (h *harness) sampleUntil(ctx context.Context, o soakOptions, res *soakResult) error {
	begin := time.Now()
	t := time.NewTicker(o.interval)
	defer t.Stop()
	cpu := h.newCPUWindow()
	for n := 1; time.Duration(n)*o.interval <= o.duration; n++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		at := time.Since(begin).Round(time.Second)
		others := cpu.next()
		for i := range res.modes {
			m := &res.modes[i]
			if err := m.load.gw.proc.alive(); err != nil {
				return err
			}
			s, st, err := m.load.sample(at, m.last)
			if err != nil {
				return err
			}
			m.samples, m.last, m.others = append(m.samples, s), st, append(m.others, others)
			when := ""
			switch {
			case n == soakWarmup+1:
				when = "start"
			case time.Duration(n+1)*o.interval > o.duration: // the last sample
				when = "end"
			}
			if when != "" {
				if err := saveProfiles(m.load.gw, h.dir, when); err != nil {
					return fmt.Errorf("profiles of portcullis-%s: %w", m.load.gw.name, err)
				}
			}
			h.logf("%-6s %v  RSS %5.1f MB  goroutines %4d  FDs %4d  streams %2d  proxied %6d  p99 %6.1f ms  failed %d",
				m.load.gw.label, at, float64(s.rssKB)/1024, s.goroutines, s.fds, s.streams, s.proxied, ms(s.p99), s.failures)
		}
	}
	return nil
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
