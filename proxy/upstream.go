package proxy

import (
	"go.opentelemetry.io/otel/trace"

	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/session"
)

// UpstreamConfig is one entry of `upstreams`: requests whose canonical path
// starts with Path (longest prefix wins) go to URL.
type UpstreamConfig struct {
	// Host limits the upstream to requests for this host (port ignored);
	// empty serves any host. Host-specific upstreams win over host-less
	// ones with the same path.
	Host string `yaml:"host"`
	Path string `yaml:"path"`
	URL  string `yaml:"url"`
	// URLs are several instances of the application, instead of URL:
	// requests go round them in turn, a request that could not connect
	// is tried on the next, and MaxFails takes failing ones out
	// (balance.go). They share scheme and path; URL becomes the first.
	URLs []string `yaml:"urls"`
	// MaxFails is passive health: after this many failures in a row
	// (refused, reset or timed out before an answer) a URL is left out
	// for FailTimeout (default 10s), then one request probes it. With
	// every URL out, requests get a 503 with Retry-After at once instead
	// of waiting on a dead host. 0 (the default) never takes one out.
	MaxFails    int           `yaml:"max_fails"`
	FailTimeout time.Duration `yaml:"fail_timeout"`
	// PassHostHeader sends the client's Host to the upstream (default true);
	// false sends the upstream URL's host.
	PassHostHeader *bool `yaml:"pass_host_header"`
	// PassAccessToken sends the user's access token as X-Forwarded-Access-Token.
	PassAccessToken bool `yaml:"pass_access_token"`
	// PassAuthorizationHeader sends the user's ID token as Authorization:
	// Bearer, as oauth2-proxy's option of that name does; only while the
	// token's exp is in the future, never an expired one.
	PassAuthorizationHeader bool `yaml:"pass_authorization_header"`
	// PassAccessTokenBearer sends the access token as Authorization:
	// Bearer (what pass_authorization_header did before). One of the two
	// at most: there is one Authorization header.
	PassAccessTokenBearer bool `yaml:"pass_access_token_bearer"`
	// Timeout bounds the wait for the upstream's response headers
	// (default 60s); bodies may stream for longer. ResponseHeaderTimeout
	// is the same setting under its precise name; set one.
	Timeout               time.Duration `yaml:"timeout"`
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// DialTimeout bounds connecting to the upstream (default 5s): a host
	// that does not answer is a 502 this soon, not at the header timeout.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// IdleTimeout is how long a kept-alive connection to the upstream may
	// sit unused before it is closed (default 90s). Keep it below the
	// upstream's own keep-alive timeout, or a request may be sent on a
	// connection the upstream is closing.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// TLS configures HTTPS to the upstream.
	TLS UpstreamTLS `yaml:"tls"`
	// Assertion is how this upstream receives the signed JWT of the
	// identity (see assertion.go): on by default, in assertion.header.
	Assertion UpstreamAssertion `yaml:"assertion"`
	// FlushInterval flushes buffered response bytes periodically; -1
	// flushes after every write. Streaming responses (no length,
	// text/event-stream) are flushed immediately regardless.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// UpstreamTLS is an upstream's `tls` setting.
type UpstreamTLS struct {
	// CAFile is a PEM bundle of the CAs that may sign the upstream's
	// certificate, instead of the system roots. main reads it into CAPEM.
	CAFile string `yaml:"ca_file"`
	CAPEM  []byte `yaml:"-"`
	// ServerName overrides the name checked in the upstream's certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate from the upstream. It
	// MUST stay off outside tests: anyone on the path can then read and
	// change the traffic, identity headers included.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// validate fills the upstream's defaults and checks it; errors name its
// path.
func (c *UpstreamConfig) validate() error {
	if c.Path == "" {
		c.Path = "/"
	}
	if !strings.HasPrefix(c.Path, "/") {
		return fmt.Errorf("upstream path %q must start with /", c.Path)
	}
	if p, _, err := canonicalPath(c.Path); err != nil || p != c.Path {
		return fmt.Errorf("upstream path %q is not a canonical path", c.Path)
	}
	u, err := c.validateURLs()
	if err != nil {
		return err
	}
	if c.PassAuthorizationHeader && c.PassAccessTokenBearer {
		return fmt.Errorf("upstream %s: pass_authorization_header (the ID token) and pass_access_token_bearer (the access token) both set the one Authorization header: choose one", c.Path)
	}
	switch {
	case c.Timeout != 0 && c.ResponseHeaderTimeout != 0 && c.Timeout != c.ResponseHeaderTimeout:
		return fmt.Errorf("upstream %s: timeout and response_header_timeout are one setting: set one", c.Path)
	case c.Timeout == 0:
		c.Timeout = c.ResponseHeaderTimeout
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&c.Timeout, 60 * time.Second}, {&c.DialTimeout, 5 * time.Second}, {&c.IdleTimeout, 90 * time.Second}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	c.ResponseHeaderTimeout = c.Timeout
	if c.Timeout < 0 || c.DialTimeout < 0 || c.IdleTimeout < 0 {
		return fmt.Errorf("upstream %s: timeouts must be positive (timeout %s, dial_timeout %s, idle_timeout %s)", c.Path, c.Timeout, c.DialTimeout, c.IdleTimeout)
	}
	if tc := c.TLS; tc.CAFile != "" || tc.ServerName != "" || tc.InsecureSkipVerify {
		if u.Scheme != "https" {
			return fmt.Errorf("upstream %s: tls settings need an https url", c.Path)
		}
		if tc.CAFile != "" && !x509.NewCertPool().AppendCertsFromPEM(tc.CAPEM) {
			return fmt.Errorf("upstream %s: tls.ca_file %s holds no PEM certificate", c.Path, tc.CAFile)
		}
	}
	if c.Host != "" && (strings.ContainsAny(c.Host, "/@ *?#") || normHost(c.Host) == "") {
		return fmt.Errorf("upstream %s: host %q is not a host name", c.Path, c.Host)
	}
	return c.Assertion.validate(c.Path, u)
}

// validateURLs checks url or urls and the passive-health settings, fills
// URLs (URL alone becomes a list of one) and URL (the first), and returns
// the first URL parsed.
func (c *UpstreamConfig) validateURLs() (*url.URL, error) {
	switch {
	case c.URL != "" && len(c.URLs) > 0:
		return nil, fmt.Errorf("upstream %s: url and urls both set: use urls for several instances", c.Path)
	case c.URL != "":
		c.URLs = []string{c.URL}
	case len(c.URLs) == 0:
		return nil, fmt.Errorf("upstream %s: url (or urls) is required", c.Path)
	}
	var first *url.URL
	for _, raw := range c.URLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("upstream %s: url %q must be http(s)://host[:port][/path] without credentials, query or fragment", c.Path, raw)
		}
		if first == nil {
			first = u
		} else if u.Scheme != first.Scheme || u.Path != first.Path {
			return nil, fmt.Errorf("upstream %s: urls %q and %q differ in scheme or path: instances of one application share both", c.Path, c.URLs[0], raw)
		}
	}
	c.URL = c.URLs[0]
	switch {
	case c.MaxFails < 0 || c.FailTimeout < 0:
		return nil, fmt.Errorf("upstream %s: max_fails and fail_timeout cannot be negative", c.Path)
	case c.FailTimeout == 0:
		c.FailTimeout = 10 * time.Second
	}
	return first, nil
}

// validate checks an upstream's assertion setting and fills its audience;
// the header's default (assertion.header) is filled by Config.Validate.
func (a *UpstreamAssertion) validate(path string, u *url.URL) error {
	if a.Disabled {
		if a.Header != "" || a.Audience != "" {
			return fmt.Errorf("upstream %s: assertion.disabled with a header or audience: choose one", path)
		}
		return nil
	}
	if a.Header != "" {
		if err := assertionHeaderOK(a.Header); err != nil {
			return fmt.Errorf("upstream %s: assertion.header: %w", path, err)
		}
	}
	if a.Audience == "" {
		a.Audience = assertionAudience(u)
	}
	return nil
}

// upstream is one application behind the gateway and the reverse proxy
// that reaches it.
type upstream struct {
	cfg    UpstreamConfig
	prefix string
	rp     *httputil.ReverseProxy
	// assertionHeader is cfg.Assertion.Header in canonical form.
	assertionHeader string
}

// proxied is what the Rewrite hook and the error handler need of one
// request, found in its context.
type proxied struct {
	rq      *request
	session *session.Session // nil on a public route without one
	path    string           // canonical path, as judged
	rawPath string
	// assertion is the signed identity's header value, nil for none.
	assertion []string
	// span is the upstream call's, in a sampled trace (tracing.go).
	span trace.Span
}

type proxiedKey struct{}

// newUpstream builds the reverse proxy for a validated upstream.
func (h *Handler) newUpstream(cfg UpstreamConfig, transport http.RoundTripper) *upstream {
	u, _ := url.Parse(cfg.URL) // validated
	if transport == nil {
		transport = transportFor(cfg)
	}
	if len(cfg.URLs) > 1 || cfg.MaxFails > 0 {
		transport = newBalancer(cfg, transport, h.log)
	}
	spanName := "upstream " + normHost(cfg.Host) + cfg.Path
	up := &upstream{cfg: cfg, prefix: cfg.Path, assertionHeader: http.CanonicalHeaderKey(cfg.Assertion.Header)}
	passHost := cfg.PassHostHeader == nil || *cfg.PassHostHeader
	up.rp = &httputil.ReverseProxy{
		// Rewrite, never Director: hop-by-hop headers (and anything named in
		// Connection) are removed before Rewrite runs, so a client cannot
		// make the proxy drop the identity headers we set here
		// (SECURITY.md §2.8-6).
		Rewrite: func(pr *httputil.ProxyRequest) {
			px, _ := pr.In.Context().Value(proxiedKey{}).(*proxied)
			if px == nil {
				// Unreachable: proxy always sets it. Fail closed anyway:
				// a request without a host ends in the 502 error path.
				pr.Out.URL.Host = ""
				return
			}
			pr.Out.URL.Path, pr.Out.URL.RawPath = upstreamPath(px.path), px.rawPath
			pr.SetURL(u)
			out := pr.Out.Header
			h.managed.strip(out)
			// After the strip: the upstream learns the client's address,
			// host and scheme from us only.
			setForwardedHeaders(out, px.rq.client, pr.In.Host)
			if passHost {
				pr.Out.Host = pr.In.Host
			}
			if a := out["Authorization"]; len(a) > 0 && isDeviceAuthorization(a[0]) {
				// The gateway's own device token, like its cookies, is
				// never the upstream's to see.
				delete(out, "Authorization")
			}
			if cfg.PassAuthorizationHeader || cfg.PassAccessTokenBearer {
				// Removed even when the session has no token to send: the
				// upstream must never take the client's for the gateway's.
				delete(out, "Authorization")
			}
			stripGatewayCookies(out, h.cookieBases)
			out[hdrRequestID] = []string{px.rq.id}
			if h.tracer != nil {
				h.upstreamSpan(pr, px, spanName)
			}
			if px.session != nil {
				h.identityHeaders(pr.In.Context(), out, px.session, up)
			}
			if px.assertion != nil {
				// Set after the strip, so the client's copy never survives.
				out[up.assertionHeader] = px.assertion
			}
		},
		// An upstream may not set or clear the gateway's own cookies.
		ModifyResponse: func(resp *http.Response) error {
			dropGatewaySetCookies(resp.Header, h.cookieBases)
			if px, _ := resp.Request.Context().Value(proxiedKey{}).(*proxied); px != nil && px.span != nil {
				endUpstreamSpan(px, resp.StatusCode, nil)
			}
			return nil
		},
		Transport:     transport,
		BufferPool:    copyBuffers,
		FlushInterval: cfg.FlushInterval,
		ErrorLog:      slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
		ErrorHandler:  h.upstreamError,
	}
	return up
}

// assert signs the assertion px's upstream receives, before anything is
// sent: an upstream that expects one is never sent the request without it
// (fail closed: the request ends in a 500 and the cause is logged).
func (h *Handler) assert(px *proxied, up *upstream) error {
	if px.session == nil || up.cfg.Assertion.Disabled {
		return nil
	}
	v, err := h.asserter.header(px.session, up.cfg.Assertion.Audience)
	if err != nil {
		return fmt.Errorf("signing the identity assertion: %w", err)
	}
	px.assertion = v
	return nil
}

// transportFor is a validated upstream's own transport, with its TLS
// settings.
func transportFor(cfg UpstreamConfig) *http.Transport {
	t := newTransport(cfg.Timeout)
	t.DialContext = (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.IdleConnTimeout = cfg.IdleTimeout
	if tc := cfg.TLS; tc.CAFile != "" || tc.ServerName != "" || tc.InsecureSkipVerify {
		conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: tc.ServerName, InsecureSkipVerify: tc.InsecureSkipVerify}
		if tc.CAFile != "" {
			conf.RootCAs = x509.NewCertPool()
			conf.RootCAs.AppendCertsFromPEM(tc.CAPEM)
		}
		t.TLSClientConfig = conf
	}
	return t
}

// copyBuffers lends the 32 KiB buffers ReverseProxy copies bodies with;
// without a pool every response allocates a new one.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// maxUpstreamHeaderBytes bounds an upstream's response headers (1 MiB;
// net/http's default is 10 MiB).
const maxUpstreamHeaderBytes = 1 << 20

// newTransport is tuned for many requests to few hosts: keep-alives with a
// generous idle pool, bounded dial and header waits.
func newTransport(responseTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // upstreams are reached directly, never via HTTP_PROXY
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: responseTimeout,
		// An upstream's headers beyond this are a 502, not held in memory.
		MaxResponseHeaderBytes: maxUpstreamHeaderBytes,
		ExpectContinueTimeout:  time.Second,
		ForceAttemptHTTP2:      true,
	}
}

// upstreamError is the ReverseProxy's one error path: a timeout is a 504,
// anything else a 502, shown as our page; the cause goes to the log.
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	rq := &request{id: "-"}
	if px, _ := r.Context().Value(proxiedKey{}).(*proxied); px != nil {
		rq = px.rq
	}
	e := upstreamFailure(r, err)
	rq.err = e
	if px, _ := r.Context().Value(proxiedKey{}).(*proxied); px != nil && px.span != nil {
		endUpstreamSpan(px, 0, err)
	}
	if e.Code == statusClientClosed {
		w.WriteHeader(e.Code) // nobody is left to read a page
		return
	}
	h.render(w, r, rq, e)
}

// statusClientClosed is nginx's 499: the client went away first.
const statusClientClosed = 499

// upstreamFailure sorts why the upstream did not answer.
func upstreamFailure(r *http.Request, err error) *httpError {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return errorf(statusClientClosed, "The request was cancelled.", fmt.Errorf("client closed the request: %w", err))
	}
	var ne net.Error
	if down := (*allDown)(nil); errors.As(err, &down) {
		return &httpError{Code: http.StatusServiceUnavailable, Msg: "The application behind this gateway is failing; it is being given a moment to recover.",
			Err: fmt.Errorf("upstream: %w", err), retryAfter: int((down.retry + time.Second - 1) / time.Second)}
	}
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return errorf(http.StatusGatewayTimeout, "The application behind this gateway took too long to answer.", fmt.Errorf("upstream: %w", err))
	}
	return errorf(http.StatusBadGateway, "The application behind this gateway is not answering.", fmt.Errorf("upstream: %w", err))
}

// validHeaderName reports whether s is an HTTP header field name
// (RFC 9110 §5.1: a token).
func validHeaderName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
