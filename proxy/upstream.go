package proxy

import (
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
	"sort"
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
	// PassHostHeader sends the client's Host to the upstream (default true);
	// false sends the upstream URL's host.
	PassHostHeader *bool `yaml:"pass_host_header"`
	// PassAccessToken sends the user's access token as X-Forwarded-Access-Token.
	PassAccessToken bool `yaml:"pass_access_token"`
	// PassAuthorizationHeader sends it as Authorization: Bearer.
	PassAuthorizationHeader bool `yaml:"pass_authorization_header"`
	// Timeout bounds the wait for the upstream's response headers
	// (default 60s); bodies may stream for longer.
	Timeout time.Duration `yaml:"timeout"`
	// TLS configures HTTPS to the upstream.
	TLS UpstreamTLS `yaml:"tls"`
	// Assertion adds a signed JWT of the identity in a header (see
	// assertion.go); off unless assertion.header is set.
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

type upstream struct {
	cfg    UpstreamConfig
	host   string
	prefix string
	target *url.URL
	rp     *httputil.ReverseProxy
}

// proxied is what the Rewrite hook needs from the handler for one request.
type proxied struct {
	session *session.Session
	path    string // canonical path, as judged
	rawPath string
	id      string // request id
}

func (h *Handler) newUpstream(cfg UpstreamConfig, transport http.RoundTripper) (*upstream, error) {
	if cfg.Path == "" {
		cfg.Path = "/"
	}
	if !strings.HasPrefix(cfg.Path, "/") {
		return nil, fmt.Errorf("upstream path %q must start with /", cfg.Path)
	}
	if p, _, err := canonicalPath(cfg.Path); err != nil || p != cfg.Path {
		return nil, fmt.Errorf("upstream path %q is not a canonical path", cfg.Path)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("upstream %s: url %q must be http(s)://host[:port][/path] without credentials, query or fragment", cfg.Path, cfg.URL)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("upstream %s: negative timeout", cfg.Path)
	}
	if transport == nil {
		t := newTransport(cfg.Timeout)
		if tc := cfg.TLS; tc.CAFile != "" || tc.ServerName != "" || tc.InsecureSkipVerify {
			if u.Scheme != "https" {
				return nil, fmt.Errorf("upstream %s: tls settings need an https url", cfg.Path)
			}
			conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: tc.ServerName, InsecureSkipVerify: tc.InsecureSkipVerify}
			if tc.CAFile != "" {
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(tc.CAPEM) {
					return nil, fmt.Errorf("upstream %s: tls.ca_file %s holds no PEM certificate", cfg.Path, tc.CAFile)
				}
				conf.RootCAs = pool
			}
			t.TLSClientConfig = conf
		}
		transport = t
	}
	if cfg.Host != "" && (strings.ContainsAny(cfg.Host, "/@ *?#") || normHost(cfg.Host) == "") {
		return nil, fmt.Errorf("upstream %s: host %q is not a host name", cfg.Path, cfg.Host)
	}
	if a := &cfg.Assertion; a.Header != "" {
		if !validHeaderName(a.Header) {
			return nil, fmt.Errorf("upstream %s: assertion.header %q is not a header name", cfg.Path, a.Header)
		}
		if a.Audience == "" {
			a.Audience = assertionAudience(u)
		}
	}
	up := &upstream{cfg: cfg, host: normHost(cfg.Host), prefix: cfg.Path, target: u}
	passHost := cfg.PassHostHeader == nil || *cfg.PassHostHeader
	up.rp = &httputil.ReverseProxy{
		// Rewrite, never Director: hop-by-hop headers (and anything named in
		// Connection) are removed before Rewrite runs, so a client cannot
		// make the proxy drop the identity headers we set here
		// (SECURITY.md §2.8-6).
		Rewrite: func(pr *httputil.ProxyRequest) {
			var px *proxied
			if rq, _ := pr.In.Context().Value(requestKey{}).(*request); rq != nil {
				px = rq.px
			}
			if px == nil {
				// Unreachable: ServeHTTP always sets it. Fail closed anyway:
				// a request without a host ends in the 502 error path.
				pr.Out.URL.Host = ""
				return
			}
			pr.Out.URL.Path, pr.Out.URL.RawPath = px.path, px.rawPath
			pr.SetURL(u)
			out := pr.Out.Header
			h.managed.strip(out)
			// After the strip: the upstream learns the client's address,
			// host and scheme from us only.
			pr.SetXForwarded()
			if passHost {
				pr.Out.Host = pr.In.Host
			}
			if cfg.PassAuthorizationHeader {
				delete(out, "Authorization")
			}
			stripGatewayCookies(out, h.cookieBases)
			out[hdrRequestID] = []string{px.id}
			if px.session != nil {
				h.identityHeaders(out, px.session, up)
				if up.cfg.Assertion.Header != "" && h.asserter != nil {
					if tok, err := h.asserter.sign(px.session, up.cfg.Assertion.Audience); err == nil {
						out[http.CanonicalHeaderKey(up.cfg.Assertion.Header)] = []string{tok}
					} else {
						h.log.LogAttrs(pr.In.Context(), slog.LevelError, "signing the identity assertion", slog.String("id", px.id), slog.Any("err", err))
					}
				}
			}
		},
		// An upstream may not set or clear the gateway's own cookies.
		ModifyResponse: func(resp *http.Response) error {
			dropGatewaySetCookies(resp.Header, h.cookieBases)
			return nil
		},
		Transport:     transport,
		BufferPool:    copyBuffers,
		FlushInterval: cfg.FlushInterval,
		ErrorLog:      slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
		ErrorHandler:  h.upstreamError,
	}
	return up, nil
}

// copyBuffers lends the 32 KiB buffers ReverseProxy copies bodies with;
// without a pool every response allocates a new one.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

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
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// routes is the upstream table, longest prefix first.
type routes []*upstream

func (rs routes) sort() {
	sort.SliceStable(rs, func(i, j int) bool {
		if len(rs[i].prefix) != len(rs[j].prefix) {
			return len(rs[i].prefix) > len(rs[j].prefix)
		}
		return rs[i].host != "" && rs[j].host == ""
	})
}

// match returns the upstream for a host and canonical path, or nil.
func (rs routes) match(host, path string) *upstream {
	for _, u := range rs {
		if (u.host == "" || u.host == host) && pathHasPrefix(path, u.prefix) {
			return u
		}
	}
	return nil
}

// upstreamError is the ReverseProxy's one error path: a timeout is a 504,
// anything else a 502, shown as our page; the cause goes to the log.
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	rq, _ := r.Context().Value(requestKey{}).(*request)
	if rq == nil {
		rq = &request{id: "-"}
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody is left to read a page.
		rq.err = fmt.Errorf("client closed the request: %w", err)
		w.WriteHeader(499)
		return
	}
	code, msg := http.StatusBadGateway, "The application behind this gateway is not answering."
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		code, msg = http.StatusGatewayTimeout, "The application behind this gateway took too long to answer."
	}
	e := errorf(code, msg, fmt.Errorf("upstream: %w", err))
	rq.err = e
	h.render(w, r, rq, e)
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
