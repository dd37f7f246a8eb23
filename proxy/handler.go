// Package proxy is everything that touches a request: the gateway's
// endpoints, routing to upstreams, the sign-in flow, policy, redirects, the
// identity headers sent upstream, and how errors reach the client and the
// log.
package proxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// Config is the part of the configuration package proxy owns.
type Config struct {
	Server    ServerConfig
	Upstreams []UpstreamConfig
	Policy    PolicyConfig
	Headers   HeadersConfig
	UI        UIConfig
	Assertion AssertionConfig
}

// UIConfig is the `ui` section: how the gateway's own pages look.
type UIConfig struct {
	// Title heads the sign-in page (default "Sign in").
	Title string `yaml:"title"`
	// LogoURL is an https URL (or a data:image URL) of a logo shown above
	// it. The page's Content-Security-Policy admits that one origin.
	LogoURL string `yaml:"logo_url"`
}

// HeadersConfig is the `headers` section: what upstreams are told.
type HeadersConfig struct {
	// User picks the X-Forwarded-User (and X-Auth-Request-User) value:
	// subject (default, the only stable identifier: OpenID Connect Core
	// §5.7), preferred_username or email. The latter two fall back to
	// subject when absent.
	User string `yaml:"user"`
	// AuthRequestAccessToken adds X-Auth-Request-Access-Token to
	// forward-auth answers.
	AuthRequestAccessToken bool `yaml:"auth_request_access_token"`
	// AuthRequestAuthorization adds Authorization: Bearer <access token>
	// to forward-auth answers.
	AuthRequestAuthorization bool `yaml:"auth_request_authorization"`
}

// Options are the collaborators main wires in.
type Options struct {
	Providers []providers.Provider
	Store     session.Store
	// SessionCookie is the session cookie's name as sent to browsers; it and
	// every cookie starting with it are kept from upstreams.
	SessionCookie string
	Login         *session.LoginCookies
	Keys          *session.KeyRing
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
	// KeepIDToken keeps the raw ID token in the session for the
	// id_token_hint of RP-initiated logout. Sensible with the Redis store;
	// in cookies it costs about a kilobyte.
	KeepIDToken bool
}

// Handler is the gateway: one http.Handler for endpoints and proxying.
type Handler struct {
	cfg       Config
	log       *slog.Logger
	providers []providers.Provider
	store     session.Store
	login     *session.LoginCookies
	keys      *session.KeyRing
	now       func() time.Time

	public        *url.URL // server.public_url
	prefix        string   // endpoint prefix, /oauth2
	redirects     *redirectPolicy
	routes        routes
	policy        *policy
	trusted       trustedProxies
	bearer        BearerVerifier
	managed       headerSet
	cookieBases   []string
	keepAccess    bool // some upstream needs the access token
	keepIDToken   bool
	idle          time.Duration
	touchEvery    time.Duration
	refreshBefore time.Duration
	backoff       refreshBackoff
	states        *usedStates
	pages         pages

	idPrefix string
	idSeq    atomic.Uint64

	narrowCacheSet
	logoCSP  string // img-src for the sign-in page's logo, "" without one
	metrics  *Metrics
	auditLog *slog.Logger
	asserter *asserter // nil when no upstream asks for assertions
}

// New validates cfg and builds the handler. It does no I/O.
func New(cfg Config, opts Options) (*Handler, error) {
	var errs []error
	public, err := cfg.Server.validate()
	if err != nil {
		errs = append(errs, err)
	}
	if opts.Store == nil || opts.Login == nil || opts.Keys == nil {
		errs = append(errs, errors.New("proxy: a session store, login cookies and keys are required"))
	}
	if len(opts.Providers) == 0 {
		errs = append(errs, errors.New("providers: at least one provider is required"))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	switch cfg.Headers.User {
	case "":
		cfg.Headers.User = "subject"
	case "subject", "preferred_username", "email":
	default:
		errs = append(errs, fmt.Errorf("headers.user %q: want subject, preferred_username or email", cfg.Headers.User))
	}
	h := &Handler{
		cfg:           cfg,
		log:           opts.Logger,
		providers:     opts.Providers,
		store:         opts.Store,
		login:         opts.Login,
		keys:          opts.Keys,
		now:           opts.Now,
		public:        public,
		prefix:        cfg.Server.Prefix,
		managed:       newHeaderSet(managedHeaders...),
		states:        newUsedStates(session.LoginTTL, 100_000),
		bearer:        opts.Bearer,
		metrics:       opts.Metrics,
		auditLog:      opts.Audit,
		keepIDToken:   opts.KeepIDToken,
		idle:          opts.IdleTimeout,
		touchEvery:    min(time.Minute, opts.IdleTimeout/4),
		refreshBefore: opts.RefreshBefore,
		pages:         parsedPages,
	}
	if public != nil {
		if h.redirects, err = newRedirectPolicy(public, cfg.Server.AllowedRedirectHosts); err != nil {
			errs = append(errs, err)
		}
	}
	if opts.SessionCookie == "" {
		errs = append(errs, errors.New("proxy: the session cookie name is required"))
	}
	h.cookieBases = []string{opts.SessionCookie}
	if bare := strings.TrimPrefix(opts.SessionCookie, "__Host-"); bare != opts.SessionCookie && bare != "" {
		h.cookieBases = append(h.cookieBases, bare)
	}
	seen := map[string]bool{}
	for _, uc := range cfg.Upstreams {
		up, err := h.newUpstream(uc, opts.Transport)
		if err != nil {
			errs = append(errs, fmt.Errorf("upstreams: %w", err))
			continue
		}
		if seen[up.host+up.prefix] {
			errs = append(errs, fmt.Errorf("upstreams: %s%s is listed twice", up.host, up.prefix))
		}
		seen[up.host+up.prefix] = true
		if strings.HasPrefix(up.prefix, cfg.Server.Prefix+"/") || up.prefix == cfg.Server.Prefix {
			errs = append(errs, fmt.Errorf("upstreams: path %s is inside the gateway's own prefix %s", up.prefix, cfg.Server.Prefix))
		}
		h.keepAccess = h.keepAccess || uc.PassAccessToken || uc.PassAuthorizationHeader
		h.routes = append(h.routes, up)
	}
	h.routes.sort()
	var assertionHeaders []string
	for _, up := range h.routes {
		if up.cfg.Assertion.Header != "" {
			assertionHeaders = append(assertionHeaders, up.cfg.Assertion.Header)
		}
	}
	if len(assertionHeaders) > 0 && public != nil && opts.Keys != nil {
		if h.asserter, err = newAsserter(cfg.Assertion, public.String(), opts.Keys, opts.Now); err != nil {
			errs = append(errs, err)
		}
		// A client must never be able to send its own assertion.
		h.managed = newHeaderSet(append(managedHeaders, assertionHeaders...)...)
	}
	h.keepAccess = h.keepAccess || cfg.Headers.AuthRequestAccessToken || cfg.Headers.AuthRequestAuthorization
	if h.policy, err = compilePolicy(cfg.Policy); err != nil {
		errs = append(errs, err)
	} else if err := h.checkHostRoutes(); err != nil {
		errs = append(errs, err)
	} else {
		for _, pr := range h.policy.routes {
			if pr.bearer && opts.Bearer == nil {
				errs = append(errs, fmt.Errorf("%s accepts bearer tokens, but the bearer section names no issuer or audience", pr.name))
			}
			if pr.provider != "" && h.provider(pr.provider) == nil {
				errs = append(errs, fmt.Errorf("%s pins provider %q, which is not configured", pr.name, pr.provider))
			}
		}
	}
	if h.logoCSP, err = logoSource(cfg.UI.LogoURL); err != nil {
		errs = append(errs, err)
	}
	if h.trusted, err = parseTrustedProxies(cfg.Server.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var b [4]byte
	rand.Read(b[:])
	h.idPrefix = hex.EncodeToString(b[:]) + "-"
	return h, nil
}

// ServerConfig returns the server section with its defaults filled in.
func (h *Handler) ServerConfig() ServerConfig { return h.cfg.Server }

// Warnings lists configuration that is valid but probably not intended.
func (h *Handler) Warnings() []string {
	var w []string
	if len(h.routes) == 0 {
		w = append(w, "no upstreams: serving forward-auth only (/oauth2/auth); other requests get 404")
	}
	if h.policy.denies() {
		w = append(w, "policy admits nobody: set policy.email_domains, emails or groups (\"*\" admits every signed-in user)")
	}
	if h.public.Scheme != "https" {
		w = append(w, "server.public_url is plain http: use https outside local development")
	}
	return w
}

// CallbackURL is the redirect URI to register at providers.
func CallbackURL(publicURL, prefix string) string {
	if prefix == "" {
		prefix = "/oauth2"
	}
	return strings.TrimSuffix(publicURL, "/") + prefix + "/callback"
}

// checkHostRoutes refuses policy routes for a host when some upstream
// serves every host: in reverse-proxy mode a request naming another Host
// would reach the same application under a looser rule.
func (h *Handler) checkHostRoutes() error {
	for _, pr := range h.policy.routes {
		if pr.host == "" {
			continue
		}
		for _, up := range h.routes {
			if up.host == "" {
				return fmt.Errorf("%s names host %s, but upstream %s serves any host: a request with another Host header would reach it under a looser rule; give the upstream a host, or drop the route's host", pr.name, pr.host, up.prefix)
			}
		}
	}
	return nil
}

// request is the per-request record the access log line is made of.
type request struct {
	id       string
	start    time.Time
	route    string
	rule     string // the policy rule that decided
	why      string // and the part of it that matched, if it allowed
	mode     string // proxy, auth or endpoint
	user     string
	rd       string // where to return after sign-in, for login links; see returnTo
	back     target // the request a decision was about, when rd is unset
	backAbs  bool   // return to back's absolute URL rather than its URI
	provider string // the provider a login link should use, if pinned
	err      error
	fwd      *forwarded // what a trusted proxy said, nil for other peers
	px       *proxied   // what the upstream request needs, set before proxying
}

type requestKey struct{}

// returnTo is where a sign-in started by this request returns to: rd when
// set, else the decided request, built only when a login link needs it.
func (rq *request) returnTo() string {
	switch {
	case rq.rd != "":
		return rq.rd
	case rq.backAbs:
		return rq.back.url()
	case rq.back.rawPath != "":
		return rq.back.uri()
	}
	return "/"
}

func (h *Handler) newRequestID() string {
	var b [40]byte
	return string(strconv.AppendUint(append(b[:0], h.idPrefix...), h.idSeq.Add(1), 36))
}

// ServeHTTP is the edge: strip what clients must not send, dispatch, map
// errors to responses, and log one line.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rq := &request{id: h.newRequestID(), start: h.now()}
	rec := &recorder{ResponseWriter: w}

	// 1. Forwarded headers are read from trusted proxies only, and then no
	// client-supplied identity, in any spelling, gets any further.
	if h.trusted.trusts(r) {
		f := readForwarded(r.Header)
		rq.fwd = &f
	}
	h.managed.strip(r.Header)

	err := h.serve(rec, r, rq)
	if err != nil {
		e := asHTTPError(err)
		rq.err = e
		if !rec.wroteHeader {
			h.render(rec, r, rq, e)
		}
	}
	h.logRequest(r, rec, rq)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	h.metrics.request(rq.route, rq.mode, status, h.now().Sub(rq.start))
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rq *request) error {
	// RFC 9110 §9.1: methods are case-sensitive, but backends disagree on
	// "delete" vs "DELETE"; a method the policy could read one way and the
	// application another is refused.
	if !isMethod(r.Method) {
		return errorf(http.StatusBadRequest, "The request method is not accepted by this gateway.", fmt.Errorf("method %q", truncate(r.Method, 32)))
	}
	// 2. One canonical path for routing, policy and the upstream.
	path, rawPath, err := canonicalPath(r.URL.EscapedPath())
	if err != nil {
		return errorf(http.StatusBadRequest, "The request path is not accepted by this gateway.", err)
	}
	rq.back = target{rawPath: rawPath, query: r.URL.RawQuery}
	switch {
	case path == "/ping":
		rq.route, rq.mode = "ping", "endpoint"
		return h.ping(w, r)
	case path == "/ready":
		rq.route, rq.mode = "ready", "endpoint"
		return h.ready(w, r)
	case path == h.prefix || strings.HasPrefix(path, h.prefix+"/"):
		rq.back, rq.mode = target{rawPath: "/"}, "endpoint"
		return h.endpoint(w, r, rq, path[len(h.prefix):])
	}
	rq.mode = "proxy"
	return h.proxy(w, r, rq, path, rawPath)
}

// endpoint dispatches the gateway's own endpoints.
func (h *Handler) endpoint(w http.ResponseWriter, r *http.Request, rq *request, name string) error {
	rq.route = "oauth2" + name
	switch name {
	case "/start":
		return h.start(w, r, rq)
	case "/callback":
		return h.callback(w, r, rq)
	case "/sign_out":
		return h.signOut(w, r, rq)
	case "/userinfo":
		return h.userinfo(w, r, rq)
	case "/auth":
		rq.mode = "auth"
		return h.auth(w, r, rq)
	case "/jwks.json":
		return h.jwks(w, r, rq)
	case "/signed_out":
		return h.signedOut(w, r, rq)
	case "/backchannel_logout":
		return h.backchannelLogout(w, r, rq)
	}
	if rest, ok := strings.CutPrefix(name, "/auth/"); ok {
		rq.route, rq.mode = "oauth2/auth/envoy", "auth"
		return h.authEnvoy(w, r, rq, "/"+rest)
	}
	rq.route = "oauth2"
	return errorf(http.StatusNotFound, "There is nothing here.", fmt.Errorf("unknown endpoint %q", name))
}

// proxy serves an application request: authenticate, authorise, forward.
func (h *Handler) proxy(w http.ResponseWriter, r *http.Request, rq *request, path, rawPath string) error {
	t := target{method: r.Method, scheme: h.public.Scheme, hostport: r.Host, host: normHost(r.Host), path: path, rawPath: rawPath, query: r.URL.RawQuery}
	up := h.routes.match(t.host, path)
	if up == nil {
		rq.route = "none"
		return errorf(http.StatusNotFound, "There is nothing here.", fmt.Errorf("no upstream for %s%s", t.host, path))
	}
	rq.route = up.prefix
	a, err := h.authorize(w, r, rq, t, nil)
	if err != nil {
		return err
	}
	h.recordDecision(r, rq, a)
	if !a.d.allow {
		if a.session == nil && a.d.signIn {
			return h.unauthenticated(w, r, rq, a.d.pinned())
		}
		return h.denied(a)
	}
	if isUpgrade(r) {
		// Websockets outlive the server's read and write deadlines.
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(time.Time{})
	}
	// The Rewrite hook and the error handler find the request record in
	// the context; only proxied requests pay for that Request copy.
	rq.px = &proxied{session: a.session, path: path, rawPath: rawPath, id: rq.id}
	up.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, rq)))
	return nil
}

func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// loadSession returns the request's session, nil when there is none (or
// none that can be trusted), or an error when the store failed.
func (h *Handler) loadSession(r *http.Request) (*session.Session, error) {
	s, err := h.store.Load(r)
	switch {
	case err == nil:
		return s, nil
	case errors.Is(err, session.ErrNoSession):
		return nil, nil
	case session.IsAbsent(err):
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "session cookie rejected", slog.String("reason", err.Error()))
		return nil, nil
	}
	return nil, errorf(http.StatusServiceUnavailable, "Sessions are unavailable right now. Please try again shortly.", err)
}

// unauthenticated answers a request without a session: API clients get a
// 401 with a login_url; browsers go straight to the provider when the
// route pins one or only one is configured, else to the sign-in page.
func (h *Handler) unauthenticated(w http.ResponseWriter, r *http.Request, rq *request, pinned string) error {
	rq.provider = pinned
	if wantsJSON(r) {
		return &httpError{Code: http.StatusUnauthorized, Msg: "Sign in first.", SignIn: true, Err: errNoSession}
	}
	p := h.provider(pinned)
	if p == nil && len(h.providers) == 1 {
		p = h.providers[0]
	}
	if p == nil {
		setPageHeaders(w.Header())
		found(w, h.loginURL(rq.returnTo(), ""))
		return nil
	}
	return h.beginLogin(w, r, rq, p, rq.returnTo())
}

// loginURL is the sign-in URL that returns to rd, through provider when
// one is named.
func (h *Handler) loginURL(rd, provider string) string {
	q := url.Values{}
	if rd != "" && rd != "/" {
		q.Set("rd", rd)
	}
	if provider != "" {
		q.Set("provider", provider)
	}
	u := h.public.String() + h.prefix + "/start"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

func (h *Handler) ping(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("OK\n"))
	return nil
}

// readyChecker is implemented by stores that depend on a server.
type readyChecker interface {
	Ready(ctx context.Context) error
}

// ready reports whether every provider has been discovered and the session
// store answers. Problems are named, their causes logged.
func (h *Handler) ready(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	var problems []string
	for _, p := range h.providers {
		if err := p.Ready(ctx); err != nil {
			problems = append(problems, "provider "+p.ID()+" unavailable")
			h.log.LogAttrs(ctx, slog.LevelWarn, "not ready", slog.String("provider", p.ID()), slog.Any("err", err))
		}
	}
	if rc, ok := h.store.(readyChecker); ok {
		if err := rc.Ready(ctx); err != nil {
			problems = append(problems, "session store unavailable")
			h.log.LogAttrs(ctx, slog.LevelWarn, "not ready", slog.String("store", "session"), slog.Any("err", err))
		}
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "problems": problems})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	return nil
}

// logRequest writes the access line: no query strings (they carry codes
// and states), no cookies, no tokens.
func (h *Handler) logRequest(r *http.Request, rec *recorder, rq *request) {
	level := slog.LevelInfo
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	if status >= 500 {
		level = slog.LevelError
	}
	if !h.log.Enabled(r.Context(), level) {
		return
	}
	path := r.URL.EscapedPath()
	if len(path) > 256 {
		path = path[:256] + "…"
	}
	attrs := []slog.Attr{
		slog.String("id", rq.id),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", path),
		slog.Int("status", status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("dur", h.now().Sub(rq.start)),
		slog.String("route", rq.route),
		slog.String("remote", remoteIP(r)),
	}
	if rq.user != "" {
		attrs = append(attrs, slog.String("user", rq.user))
	}
	if rq.rule != "" {
		attrs = append(attrs, slog.String("rule", decision{rule: rq.rule, why: rq.why}.text()))
	}
	if rq.err != nil {
		attrs = append(attrs, slog.String("err", rq.err.Error()))
	}
	h.log.LogAttrs(r.Context(), level, "request", attrs...)
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// recorder notes the status and size for the access log. It unwraps for
// http.ResponseController, so flushing and hijacking (websockets) reach the
// server's writer.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *recorder) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 || code == http.StatusSwitchingProtocols {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *recorder) Flush() {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.status, w.wroteHeader = http.StatusSwitchingProtocols, true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// atomicCounter is a tiny wrapper so zero values work in structs.
type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) Add(d int64) int64 { return c.n.Add(d) }

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
