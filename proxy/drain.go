package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// drain.go is what a rolling restart needs from the handler. When shutdown
// begins, /ready fails at once, so load balancers and Kubernetes endpoints
// stop sending new work while the gateway still serves what arrives
// (server.shutdown_delay). Upgraded connections (websockets) are tunnels
// http.Server.Shutdown neither waits for nor ends: they are counted here,
// so shutdown can wait for them within its grace and then end the rest.

type drainer struct {
	draining atomic.Bool
	tunnels  sync.WaitGroup
	open     atomic.Int64
	end      context.Context // cancelled to end every open tunnel
	endAll   context.CancelFunc
}

func newDrainer() *drainer {
	d := &drainer{}
	d.end, d.endAll = context.WithCancel(context.Background())
	return d
}

// tunnel registers an upgraded request: its context ends when the request
// does or when EndTunnels gives up waiting. done must be called.
func (d *drainer) tunnel(ctx context.Context) (context.Context, func()) {
	d.tunnels.Add(1)
	d.open.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(d.end, cancel)
	return ctx, func() {
		stop()
		cancel()
		d.open.Add(-1)
		d.tunnels.Done()
	}
}

// Drain marks the gateway as shutting down: /ready answers 503 from now on
// while everything else is still served.
func (h *Handler) Drain() { h.drain.draining.Store(true) }

// Tunnels is the number of open upgraded connections (websockets).
func (h *Handler) Tunnels() int { return int(h.drain.open.Load()) }

// EndTunnels waits until every upgraded connection has ended or ctx is
// done, then ends those still open, and returns how many it ended. The
// ReverseProxy closes a tunnel's upstream side when the request's context
// ends, which ends the copy both ways.
func (h *Handler) EndTunnels(ctx context.Context) int {
	idle := make(chan struct{})
	go func() { h.drain.tunnels.Wait(); close(idle) }()
	select {
	case <-idle:
		return 0
	case <-ctx.Done():
	}
	n := h.Tunnels()
	h.drain.endAll()
	select {
	case <-idle:
	case <-time.After(2 * time.Second):
	}
	return n
}
