// Package proxy is everything that touches a request: the gateway's
// endpoints, the route table and the decision, the sign-in flow, redirects,
// the identity headers sent upstream, and how errors reach the client and
// the log. docs/architecture.md walks a request through it.
package proxy

import (
	"go.opentelemetry.io/otel/trace"

	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// Options are the collaborators main wires in.
type Options struct {
	Providers *providers.Set
	// Sessions is the session store; its cookie and every cookie starting
	// with its name are kept from upstreams.
	Sessions session.Backend
	Login    *session.LoginCookies
	Keys     *session.KeyRing
	// Bearer verifies machine clients' tokens on routes with bearer: true;
	// nil when no bearer section is configured.
	Bearer BearerVerifier
	Logger *slog.Logger
	// Transport reaches upstreams; a tuned transport per upstream when nil.
	Transport http.RoundTripper
	Now       func() time.Time
	// IdleTimeout ends sessions unused this long (0: off); RefreshBefore is
	// how long before the access token's expiry a session is refreshed.
	IdleTimeout   time.Duration
	RefreshBefore time.Duration
	// Metrics records what the gateway does; nil records nothing.
	Metrics *Metrics
	// Audit receives the audit log (one JSON event per sign-in, sign-out,
	// refresh, denial, revocation); nil writes none.
	Audit *slog.Logger
	// Previous is the handler this one replaces at a configuration
	// reload: the states already redeemed stay refused (RFC 6749 §10.5:
	// a code, and so its state, is used once) and open websockets stay
	// counted for the shutdown.
	Previous *Handler
	// KeepIDToken keeps the raw ID token in sessions whose provider
	// advertises an end_session_endpoint, for the id_token_hint of
	// RP-initiated logout; sessions of other providers never keep it.
	KeepIDToken bool
	// Posts keeps browsers' form posts across the sign-in they start
	// (preserve.go); nil keeps none.
	Posts *session.Posts
	// Devices keeps the device grant's requests (device.go); nil unless
	// device.enabled.
	Devices *session.Devices
	// Tracer traces each request and its upstream call (tracing.go);
	// nil: tracing is off. TraceIdentity adds who asked to request spans.
	Tracer        trace.Tracer
	TraceIdentity bool
}

// Handler is the gateway: one http.Handler for endpoints and proxying.
type Handler struct {
	cfg       Config // validated
	log       *slog.Logger
	providers *providers.Set
	sessions  session.Backend
	lister    session.Lister // nil: the store cannot list sessions (cookies)
	login     *session.LoginCookies
	posts     *session.Posts   // nil: posts are not kept
	devices   *session.Devices // nil: device.enabled is false
	device    DeviceConfig
	// tracer is nil with tracing off (tracing.go).
	tracer        trace.Tracer
	traceIdentity bool
	// deviceStarts and codeGuesses rate-limit device requests and
	// user-code lookups (RFC 8628 §5.1).
	deviceStarts, codeGuesses *rateLimit
	keys                      *session.KeyRing
	bearer                    BearerVerifier
	now                       func() time.Time

	public      *url.URL // server.public_url
	prefix      string   // endpoint prefix, /oauth2
	redirects   *redirectPolicy
	routes      *Routes
	upstreams   []*upstream // what routes' rows point at, by index
	trusted     trustedProxies
	realIP      string // server.real_client_ip_header, canonical
	managed     headerSet
	cookieBases []string
	hsts        []string // Strict-Transport-Security (RFC 6797 §6.1), nil for none; shared, never written through
	pages       pages
	drain       *drainer

	keepAccess    bool // some upstream or forward-auth answer needs the access token
	keepIDToken   bool
	passIDToken   bool // some upstream receives the ID token: sessions keep it
	idle          time.Duration
	touchEvery    time.Duration
	refreshBefore time.Duration
	backoff       refreshBackoff
	states        *usedStates

	idPrefix string
	idSeq    atomic.Uint64

	narrowCacheSet
	metrics  *Metrics
	auditLog *slog.Logger
	asserter *asserter
	// authAssertion is the header forward-auth answers carry the
	// assertion in (assertion.header, canonical).
	authAssertion string
}

// New builds the handler from validated settings and its collaborators.
// It does no I/O.
func New(s *Settings, opts Options) (*Handler, error) {
	if s == nil || opts.Providers == nil || opts.Sessions == nil || opts.Login == nil || opts.Keys == nil {
		return nil, errors.New("proxy: settings, providers, a session store, login cookies and keys are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{
		cfg:           s.cfg,
		log:           opts.Logger,
		providers:     opts.Providers,
		sessions:      opts.Sessions,
		login:         opts.Login,
		posts:         opts.Posts,
		device:        s.cfg.Device,
		keys:          opts.Keys,
		bearer:        opts.Bearer,
		now:           opts.Now,
		public:        s.public,
		prefix:        s.cfg.Server.Prefix,
		redirects:     s.redirects,
		routes:        s.routes,
		trusted:       s.trusted,
		realIP:        s.cfg.Server.RealClientIPHeader,
		managed:       newHeaderSet(slices.Concat(managedHeaders, targetOverrideHeaders, s.assertionHeaders)...),
		hsts:          s.hsts,
		pages:         s.pages,
		keepAccess:    s.keepAccess(),
		keepIDToken:   opts.KeepIDToken,
		passIDToken:   s.passIDToken(),
		idle:          opts.IdleTimeout,
		touchEvery:    min(time.Minute, opts.IdleTimeout/4),
		refreshBefore: opts.RefreshBefore,
		states:        newUsedStates(session.LoginTTL, 100_000),
		metrics:       opts.Metrics,
		tracer:        opts.Tracer,
		traceIdentity: opts.TraceIdentity,
		auditLog:      opts.Audit,
		drain:         newDrainer(),
	}
	h.pages.log = opts.Logger
	if p := opts.Previous; p != nil {
		h.states, h.drain = p.states, p.drain
	}
	h.lister, _ = opts.Sessions.(session.Lister)
	if d := s.cfg.Device; d.Enabled {
		if opts.Devices == nil {
			return nil, errors.New("proxy: device.enabled needs Options.Devices")
		}
		h.devices = opts.Devices
		h.deviceStarts = newRateLimit(d.AttemptsPerSource, d.AttemptsPerMinute)
		h.codeGuesses = newRateLimit(d.AttemptsPerSource, d.AttemptsPerMinute)
		if p := opts.Previous; p != nil && p.codeGuesses != nil {
			// A reload does not reset what a guesser has used up.
			h.deviceStarts, h.codeGuesses = p.deviceStarts, p.codeGuesses
		}
	}
	name := opts.Sessions.Name()
	h.cookieBases = []string{name}
	if bare := strings.TrimPrefix(name, "__Host-"); bare != name && bare != "" {
		h.cookieBases = append(h.cookieBases, bare)
	}
	for _, uc := range s.routes.ups {
		h.upstreams = append(h.upstreams, h.newUpstream(uc, opts.Transport))
	}
	// Always: assertions are on by default, and /oauth2/jwks.json is
	// published whether or not any upstream receives them.
	var err error
	if h.asserter, err = newAsserter(s.cfg.Assertion, s.public.String(), opts.Keys, opts.Now); err != nil {
		return nil, err
	}
	h.authAssertion = http.CanonicalHeaderKey(s.cfg.Assertion.Header)
	var b [4]byte
	rand.Read(b[:])
	h.idPrefix = hex.EncodeToString(b[:]) + "-"
	return h, nil
}

// ServerConfig returns the server section with its defaults filled in.
func (h *Handler) ServerConfig() ServerConfig { return h.cfg.Server }

// CallbackURL is the redirect URI to register at providers.
func CallbackURL(publicURL, prefix string) string {
	return endpointURL(publicURL, prefix, "/callback")
}

// SignedOutURL is the post_logout_redirect_uri to register at providers.
func SignedOutURL(publicURL, prefix string) string {
	return endpointURL(publicURL, prefix, "/signed_out")
}

// BackchannelURL is the back-channel logout URI to register at providers.
func BackchannelURL(publicURL, prefix string) string {
	return endpointURL(publicURL, prefix, "/backchannel_logout")
}

// FrontchannelURL is the front-channel logout URI to register at providers
// (Front-Channel Logout 1.0 §2 frontchannel_logout_uri).
func FrontchannelURL(publicURL, prefix string) string {
	return endpointURL(publicURL, prefix, "/frontchannel_logout")
}

func endpointURL(publicURL, prefix, name string) string {
	if prefix == "" {
		prefix = "/oauth2"
	}
	return strings.TrimSuffix(publicURL, "/") + prefix + name
}

// ServeHTTP is the edge: strip what clients must not send, dispatch, map
// errors to responses, and log one line.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// 1. Forwarded headers are read from trusted proxies only, and then no
	// client-supplied identity, in any spelling, gets any further.
	rq := &request{start: h.now(), fwd: h.forwarded(r)}
	var span trace.Span
	if h.tracer != nil {
		r, span = h.startSpan(r, rq)
	} else {
		rq.id = h.newRequestID()
	}
	rq.client = h.clientOf(r, rq.fwd)
	rec := &recorder{ResponseWriter: w, sts: h.hsts}
	h.managed.strip(r.Header)

	if err := h.serve(rec, r, rq); err != nil {
		e := asHTTPError(err)
		rq.err = e
		if !rec.wroteHeader {
			h.render(rec, r, rq, e)
		}
	}
	if !rec.wroteHeader {
		rec.setSTS() // nothing written: net/http sends the header on return
	}
	h.logRequest(r, rec, rq)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	h.metrics.request(rq.route, rq.mode, status, h.now().Sub(rq.start))
	if span != nil {
		h.endSpan(span, rq, status)
	}
}

// serve dispatches by the canonical path: health checks, the gateway's own
// endpoints, or an application request.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rq *request) error {
	// RFC 9110 §9.1: methods are case-sensitive, but backends disagree on
	// "delete" vs "DELETE"; a method the policy could read one way and the
	// application another is refused.
	if !isMethod(r.Method) {
		return errorf(http.StatusBadRequest, "The request method is not accepted by this gateway.", errMethod(r.Method))
	}
	// 2. One canonical path for routing, policy and the upstream.
	path, rawPath, err := h.routes.canonicalFor(r.Host, r.URL.EscapedPath())
	if err != nil {
		if !h.envoyEncodedSlashes(r.URL.EscapedPath()) {
			return errorf(http.StatusBadRequest, "The request path is not accepted by this gateway.", err)
		}
		// /oauth2/auth/<path> with "%2F" in <path>: authEnvoy judges the
		// tail against the routes that may admit it.
		rq.route, rq.mode = envoyEndpoint.route, envoyEndpoint.mode
		return envoyEndpoint.serve(h, w, r, rq)
	}
	ep := h.endpoint(path)
	if ep.serve == nil {
		return h.proxy(w, r, rq, path, rawPath)
	}
	rq.route, rq.mode = ep.route, ep.mode
	return ep.serve(h, w, r, rq)
}

// envoyEncodedSlashes reports whether escaped, refused as a path of its
// own, is Envoy's HTTP ext_authz asking about a path with "%2F": the
// gateway's /auth/<path>, which only some routes (pass_encoded_slashes)
// can admit.
func (h *Handler) envoyEncodedSlashes(escaped string) bool {
	if !h.routes.slashes || !hasEncodedSlash(escaped) {
		return false
	}
	p, _, err := canonicalPathSlashes(escaped)
	return err == nil && h.endpoint(p).route == envoyEndpoint.route
}

// endpoint is one of the gateway's own endpoints: what serves it, and its
// label in logs and metrics.
type endpoint struct {
	serve func(h *Handler, w http.ResponseWriter, r *http.Request, rq *request) error
	route string
	mode  string // endpoint, or auth for forward-auth
}

// endpoints are the gateway's own, by their path under server.prefix.
// /auth answers oauth2-proxy's contract (2xx/401/403, never a redirect);
// /forward_auth is the same decision with a redirect for browsers, for the
// proxies that show the answer as is (auth.go).
var endpoints = map[string]endpoint{
	"/start":              {(*Handler).start, "oauth2/start", "endpoint"},
	"/sign_in":            {(*Handler).signIn, "oauth2/sign_in", "endpoint"},
	"/callback":           {(*Handler).callback, "oauth2/callback", "endpoint"},
	"/sign_out":           {(*Handler).signOut, "oauth2/sign_out", "endpoint"},
	"/signed_out":         {(*Handler).signedOut, "oauth2/signed_out", "endpoint"},
	"/userinfo":           {(*Handler).userinfo, "oauth2/userinfo", "endpoint"},
	"/jwks.json":          {(*Handler).jwks, "oauth2/jwks.json", "endpoint"},
	"/backchannel_logout": {(*Handler).backchannelLogout, "oauth2/backchannel_logout", "endpoint"},
	// The path is a public contract: operators register it at providers.
	"/frontchannel_logout": {(*Handler).frontchannelLogout, "oauth2/frontchannel_logout", "endpoint"},
	"/device":              {(*Handler).deviceVerify, "oauth2/device", "endpoint"},
	"/device/authorize":    {(*Handler).deviceAuthorize, "oauth2/device/authorize", "endpoint"},
	"/device/token":        {(*Handler).deviceToken, "oauth2/device/token", "endpoint"},
	"/revoke":              {(*Handler).revoke, "oauth2/revoke", "endpoint"},
	"/auth":                {(*Handler).auth, "oauth2/auth", "auth"},
	"/forward_auth":        {(*Handler).forwardAuth, "oauth2/forward_auth", "auth"},
}

// envoyHTTPRoute labels Envoy's HTTP ext_authz checks, /auth/<path>.
const envoyHTTPRoute = "oauth2/auth/envoy"

var (
	pingEndpoint    = endpoint{(*Handler).ping, "ping", "endpoint"}
	readyEndpoint   = endpoint{(*Handler).ready, "ready", "endpoint"}
	envoyEndpoint   = endpoint{(*Handler).authEnvoy, envoyHTTPRoute, "auth"}
	unknownEndpoint = endpoint{(*Handler).unknown, "oauth2", "endpoint"}
)

// endpoint names what serves a canonical path: one of the gateway's own
// endpoints, or (the zero endpoint) the application behind it.
func (h *Handler) endpoint(path string) endpoint {
	switch {
	case path == "/ping":
		return pingEndpoint
	case path == "/ready":
		return readyEndpoint
	case path != h.prefix && !strings.HasPrefix(path, h.prefix+"/"):
		return endpoint{}
	}
	name := path[len(h.prefix):]
	if ep, ok := endpoints[name]; ok {
		return ep
	}
	if strings.HasPrefix(name, "/auth/") {
		return envoyEndpoint
	}
	return unknownEndpoint
}

func (h *Handler) unknown(w http.ResponseWriter, r *http.Request, rq *request) error {
	return errorf(http.StatusNotFound, "There is nothing here.", fmt.Errorf("unknown endpoint %q", truncate(strings.TrimPrefix(r.URL.Path, h.prefix), 128)))
}

func errMethod(m string) error { return fmt.Errorf("method %q", truncate(m, 32)) }

// isMethod reports whether m is an upper-case method token.
func isMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
