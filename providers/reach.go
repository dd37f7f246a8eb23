package providers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// reach.go: is the provider's authorization endpoint answering? Discovery
// succeeds once and is kept, so a provider that goes down later would
// still get browsers sent to it, to a connection error in their tab.
// Before a sign-in starts, the gateway asks Reachable instead: a GET of
// the discovery document, or of the authorization endpoint when that is
// on another host (with the provider's own client, so its CA
// and proxy settings hold), remembered for 2 seconds: at most one probe
// every 2 seconds per replica and provider, however many sign-ins start. Any answer below
// 500 is a provider that is up (without parameters it answers an error
// page, which is fine); no answer, or a 5xx from whatever stands in front
// of it, is one that is down, and the sign-in gets the 503 page.

const (
	reachUp      = 2 * time.Second // how long an answer is trusted: a provider that goes down is noticed this soon
	reachDown    = time.Second     // how soon a provider found down is tried again
	reachTimeout = 3 * time.Second // one probe's bound
)

// reachability caches the last probe; one probe runs at a time.
type reachability struct {
	mu      sync.Mutex
	at      time.Time
	err     error
	probing chan struct{} // closed when the running probe ends; nil when none
}

// check returns the cached answer while fresh, else probes (callers
// arriving during a probe wait for it, within their context).
func (r *reachability) check(ctx context.Context, now time.Time, probe func(context.Context) error) error {
	r.mu.Lock()
	fresh := reachUp
	if r.err != nil {
		fresh = reachDown
	}
	if !r.at.IsZero() && now.Sub(r.at) < fresh {
		err := r.err
		r.mu.Unlock()
		return err
	}
	wait := r.probing
	if wait == nil {
		wait = make(chan struct{})
		r.probing = wait
		r.mu.Unlock()
		err := probe(ctx)
		r.mu.Lock()
		r.at, r.err, r.probing = now, err, nil
		r.mu.Unlock()
		close(wait)
		return err
	}
	r.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// probeURL GETs u with client: nil for an answer below 500, an error
// wrapping ErrUnavailable otherwise.
func probeURL(ctx context.Context, client *http.Client, u string) error {
	ctx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%w: authorization endpoint: %v", ErrUnavailable, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("%w: authorization endpoint answered %s", ErrUnavailable, resp.Status)
	}
	return nil
}

// Reachable implements Prober.
func (p *OIDC) Reachable(ctx context.Context) error {
	d, err := p.discovered(ctx)
	if err != nil {
		return err
	}
	target := p.probeTarget(d.endpoint.AuthURL)
	return p.reach.check(ctx, time.Now(), func(ctx context.Context) error {
		return probeURL(context.WithoutCancel(ctx), p.client, target)
	})
}

// probeTarget is what Reachable GETs: the discovery document when the
// authorization endpoint is on the issuer's origin (the same server, and
// a request providers answer without logging an error, as they do for an
// authorization request without parameters), else the endpoint itself.
func (p *OIDC) probeTarget(authURL string) string {
	if p.cfg.SkipDiscovery {
		return authURL
	}
	iss, err1 := url.Parse(p.cfg.IssuerURL)
	auth, err2 := url.Parse(authURL)
	if err1 != nil || err2 != nil || iss.Scheme != auth.Scheme || !strings.EqualFold(iss.Host, auth.Host) {
		return authURL
	}
	return strings.TrimSuffix(p.cfg.IssuerURL, "/") + "/.well-known/openid-configuration"
}
