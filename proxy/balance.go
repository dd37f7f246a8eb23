package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// balance.go spreads an upstream's requests over its `urls` and keeps
// passive health: a backend that fails max_fails times in a row (it
// refused or dropped the connection, or timed out, before answering) is
// left out for fail_timeout, after which one request at a time probes it.
// An answer of any status, 5xx included, is a working backend: the
// application spoke.
//
// A request is retried on the next backend only when it was never sent:
// the dial failed, and the request has no body the failed attempt could
// have consumed. Anything else may have reached the application and is
// not repeated (RFC 9110 §9.2.2: only idempotent requests may be retried
// automatically, and even those only when nothing was done).

// allDown is the answer when every backend of an upstream is out: retry
// is when the first comes back to be probed.
type allDown struct{ retry time.Duration }

func (e *allDown) Error() string {
	return fmt.Sprintf("every URL of this upstream failed max_fails times in a row; the first is probed again in %s", e.retry.Round(time.Second))
}

// backend is one URL of an upstream, with its health.
type backend struct {
	host string // URL host[:port], what the request is sent to

	mu        sync.Mutex
	fails     int       // consecutive failures
	downUntil time.Time // out until then; zero when in service
	probing   bool      // one request is trying it after downUntil
}

// balancer is the RoundTripper of an upstream with several URLs or with
// max_fails set. It only chooses the host; the transport below it does
// the rest.
type balancer struct {
	next        http.RoundTripper
	backends    []*backend
	maxFails    int // 0: never taken out
	failTimeout time.Duration
	turn        atomic.Uint32
	now         func() time.Time
	log         *slog.Logger
	path        string // the upstream's path, for the log
}

func newBalancer(cfg UpstreamConfig, next http.RoundTripper, log *slog.Logger) *balancer {
	b := &balancer{next: next, maxFails: cfg.MaxFails, failTimeout: cfg.FailTimeout, now: time.Now, log: log, path: cfg.Path}
	for _, raw := range cfg.URLs {
		u, _ := url.Parse(raw) // validated
		b.backends = append(b.backends, &backend{host: u.Host})
	}
	return b
}

func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	start := int(b.turn.Add(1))
	var last error
	for i := range b.backends {
		be := b.backends[(start+i)%len(b.backends)]
		probe, ok := b.admit(be)
		if !ok {
			continue
		}
		req.URL.Host = be.host
		resp, err := b.next.RoundTrip(req)
		b.record(be, probe, clientGone(req, err), err)
		if err == nil || !unsent(req, err) {
			return resp, err
		}
		last = err
	}
	if last != nil {
		return nil, last
	}
	return nil, b.allDown()
}

func (b *balancer) allDown() *allDown {
	now, soonest := b.now(), b.failTimeout
	for _, be := range b.backends {
		be.mu.Lock()
		if d := be.downUntil.Sub(now); d < soonest {
			soonest = d
		}
		be.mu.Unlock()
	}
	return &allDown{retry: max(soonest, time.Second)}
}

// admit reports whether be may take a request now, and whether that
// request is the probe of a resting backend.
func (b *balancer) admit(be *backend) (probe, ok bool) {
	be.mu.Lock()
	defer be.mu.Unlock()
	switch {
	case be.downUntil.IsZero():
		return false, true
	case be.probing || b.now().Before(be.downUntil):
		return false, false
	}
	be.probing = true
	return true, true
}

// record notes how a request to be ended.
func (b *balancer) record(be *backend, probe, gone bool, err error) {
	failed := err != nil && !gone
	be.mu.Lock()
	if probe {
		be.probing = false
	}
	was := !be.downUntil.IsZero()
	switch {
	case !failed:
		be.fails, be.downUntil = 0, time.Time{}
	case b.maxFails > 0:
		be.fails++
		if be.fails >= b.maxFails {
			be.downUntil = b.now().Add(b.failTimeout)
		}
	}
	down := !be.downUntil.IsZero()
	fails := be.fails
	be.mu.Unlock()
	switch {
	case down && (!was || probe):
		b.log.Warn("upstream backend taken out", "upstream", b.path, "backend", be.host, "fails", fails, "for", b.failTimeout, "err", err)
	case was && !down:
		b.log.Info("upstream backend back in service", "upstream", b.path, "backend", be.host)
	}
}

// unsent reports whether err means req never left: the connection could
// not be made, and there is no body the attempt may have read.
func unsent(req *http.Request, err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return false
	}
	return req.Body == nil || req.Body == http.NoBody
}

// clientGone reports whether the request ended because the client left,
// which says nothing about the backend.
func clientGone(req *http.Request, err error) bool {
	return errors.Is(err, context.Canceled) && req.Context().Err() != nil
}
