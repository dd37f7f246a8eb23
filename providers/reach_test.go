package providers

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestProbeURL: an answer below 500 is up (an error page for a request
// without parameters included), a 5xx or no answer is down, and a
// redirect is not followed.
func TestProbeURL(t *testing.T) {
	for _, tt := range []struct {
		status int
		up     bool
	}{{200, true}, {400, true}, {302, true}, {404, true}, {500, false}, {502, false}, {503, false}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tt.status == 302 {
				http.Redirect(w, r, "http://127.0.0.1:1/never", http.StatusFound)
				return
			}
			w.WriteHeader(tt.status)
		}))
		err := probeURL(context.Background(), srv.Client(), srv.URL+"/authorize")
		srv.Close()
		if (err == nil) != tt.up || (err != nil && !errors.Is(err, ErrUnavailable)) {
			t.Errorf("status %d: %v, want up=%v", tt.status, err, tt.up)
		}
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	if err := probeURL(context.Background(), http.DefaultClient, "http://"+dead+"/authorize"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("nothing listening: %v, want ErrUnavailable", err)
	}
}

// TestReachabilityCache: an answer is kept reachUp (up) or reachDown
// (down); concurrent callers share one probe.
func TestReachabilityCache(t *testing.T) {
	var r reachability
	var probes atomic.Int32
	down := errors.New("down")
	result := error(nil)
	probe := func(context.Context) error { probes.Add(1); time.Sleep(20 * time.Millisecond); return result }
	ctx := context.Background()

	var wg sync.WaitGroup
	t0 := time.Now()
	for range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); r.check(ctx, t0, probe) }()
	}
	wg.Wait()
	if n := probes.Load(); n != 1 {
		t.Errorf("10 concurrent checks ran %d probes, want 1", n)
	}
	result = down
	if err := r.check(ctx, t0.Add(reachUp-time.Second), probe); err != nil || probes.Load() != 1 {
		t.Errorf("within reachUp: %v after %d probes, want the cached up", err, probes.Load())
	}
	t1 := t0.Add(reachUp + time.Second)
	if err := r.check(ctx, t1, probe); err != down || probes.Load() != 2 {
		t.Errorf("after reachUp: %v after %d probes, want a new probe finding it down", err, probes.Load())
	}
	result = nil
	if err := r.check(ctx, t1.Add(reachDown/2), probe); err != down {
		t.Errorf("within reachDown: %v, want the cached down", err)
	}
	if err := r.check(ctx, t1.Add(reachDown+time.Second), probe); err != nil || probes.Load() != 3 {
		t.Errorf("after reachDown: %v after %d probes, want it up again", err, probes.Load())
	}
}

func TestProbeTarget(t *testing.T) {
	for _, tt := range []struct {
		issuer, auth string
		skip         bool
		want         string
	}{
		{"https://idp.example.com/realms/a", "https://idp.example.com/realms/a/protocol/openid-connect/auth", false,
			"https://idp.example.com/realms/a/.well-known/openid-configuration"},
		{"https://idp.example.com/", "https://IDP.example.com/authorize", false, "https://idp.example.com/.well-known/openid-configuration"},
		{"https://tenant.example.com", "https://login.example.net/authorize", false, "https://login.example.net/authorize"},
		{"https://idp.example.com", "https://idp.example.com/authorize", true, "https://idp.example.com/authorize"},
	} {
		p := &OIDC{cfg: Config{IssuerURL: tt.issuer, SkipDiscovery: tt.skip}}
		if got := p.probeTarget(tt.auth); got != tt.want {
			t.Errorf("issuer %s, auth %s, skip %v: %s, want %s", tt.issuer, tt.auth, tt.skip, got, tt.want)
		}
	}
}
