package proxy

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// fakeProvider stands in for an identity provider in unit tests: it hands
// out authorization URLs and redeems codes it was told about. The real
// provider is exercised end to end in package e2e.
type fakeProvider struct {
	mu       sync.Mutex
	id       string // default "corp"
	issuer   string
	codes    map[string]*session.Session // code -> session it redeems to
	attempts map[string]providers.Attempt
	redeemed []providers.Attempt
	respErr  error
	down     bool

	// readyErr, when set, is what Ready answers.
	readyErr error
	// redeemErr, when set, is what Redeem answers.
	redeemErr error
	// refresh, when set, answers Refresh; refreshes counts the calls.
	refresh   func(s *session.Session) (*session.Session, error)
	refreshes int
	// logout, when set, answers VerifyLogoutToken.
	logout func(raw string) (*providers.LogoutToken, error)
	// endSession is the provider's end_session_endpoint, "" for none.
	endSession string
	// hints are the id_token_hint values EndSessionURL was given.
	hints []string
}

func (f *fakeProvider) Refresh(_ context.Context, s *session.Session) (*session.Session, error) {
	f.mu.Lock()
	f.refreshes++
	fn := f.refresh
	f.mu.Unlock()
	if fn == nil {
		return nil, providers.ErrNoRefreshToken
	}
	return fn(s)
}

func (f *fakeProvider) VerifyLogoutToken(_ context.Context, raw string) (*providers.LogoutToken, error) {
	if f.logout == nil {
		return nil, providers.ErrInvalidLogoutToken
	}
	return f.logout(raw)
}

func (f *fakeProvider) EndSessionURL(_ context.Context, hint, post, state string) (string, error) {
	if f.endSession == "" {
		return "", nil
	}
	if post != "" { // a sign-out, not keepNeededTokens asking whether there is one
		f.mu.Lock()
		f.hints = append(f.hints, hint)
		f.mu.Unlock()
	}
	return f.endSession + "?post_logout_redirect_uri=" + url.QueryEscape(post) + "&state=" + url.QueryEscape(state), nil
}

func newFakeProvider() *fakeProvider {
	return &fakeProvider{issuer: "https://idp.test", codes: map[string]*session.Session{}, attempts: map[string]providers.Attempt{}}
}

func (f *fakeProvider) ID() string {
	if f.id == "" {
		return "corp"
	}
	return f.id
}

func (f *fakeProvider) Name() string   { return "Provider " + f.ID() }
func (f *fakeProvider) Issuer() string { return f.issuer }
func (f *fakeProvider) Ready(context.Context) error {
	if f.readyErr != nil {
		return f.readyErr
	}
	if f.down {
		return providers.ErrUnavailable
	}
	return nil
}

func (f *fakeProvider) AuthCodeURL(_ context.Context, a providers.Attempt) (string, error) {
	if f.down {
		return "", providers.ErrUnavailable
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts[a.State] = a
	return f.issuer + "/authorize?state=" + url.QueryEscape(a.State), nil
}

func (f *fakeProvider) CheckResponse(context.Context, url.Values) error { return f.respErr }

func (f *fakeProvider) Redeem(_ context.Context, code string, a providers.Attempt) (*session.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.redeemErr != nil {
		return nil, f.redeemErr
	}
	s, ok := f.codes[code]
	if !ok {
		return nil, providers.ErrRejected
	}
	delete(f.codes, code)
	f.redeemed = append(f.redeemed, a)
	c := *s
	return &c, nil
}

// issue makes code redeem to a session for sub/email/groups.
func (f *fakeProvider) issue(code, sub, email string, groups ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.codes[code] = &session.Session{
		Identity: session.Identity{Issuer: f.issuer, Subject: sub, Email: email, EmailVerified: true, PreferredUsername: sub, Groups: groups},
		Provider: f.ID(), AccessToken: "access-token-secret", RefreshToken: "refresh-token-secret", IDToken: "id-token-secret",
	}
}

// seen is one request as the upstream received it.
type seen struct {
	Method, Path, RawPath, Host string
	Header                      http.Header
	Body                        string
}

type env struct {
	t        *testing.T
	bearer   *fakeBearer
	extra    []providers.Provider // further providers besides idp
	h        *Handler
	idp      *fakeProvider
	store    *session.CookieStore
	posts    *session.Posts // kept form posts, in memory
	devices  *session.Devices
	keys     *session.KeyRing
	upstream *httptest.Server
	mu       sync.Mutex
	got      []seen
	logs     *strings.Builder
	now      time.Time
	clockMu  sync.Mutex
	offset   time.Duration // added to the wall clock for the handler and store
}

// clock is the test's time: the wall clock plus what advance added.
func (e *env) clock() time.Time {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	return time.Now().Add(e.offset)
}

func (e *env) advance(d time.Duration) {
	e.clockMu.Lock()
	e.offset += d
	e.clockMu.Unlock()
}

func newEnv(t *testing.T, mutate func(*Config)) *env {
	return newEnvOpts(t, mutate, nil)
}

// sessionT shortens *session.Session in provider fixtures.
type sessionT = session.Session

// newEnvOpts also lets a test adjust the handler's options and add
// providers besides the default "corp".
func newEnvOpts(t *testing.T, mutate func(*Config), opt func(*Options), extra ...providers.Provider) *env {
	t.Helper()
	e := &env{t: t, idp: newFakeProvider(), logs: &strings.Builder{}, now: time.Now(), bearer: &fakeBearer{tokens: map[string]session.Identity{}}, extra: extra}
	e.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.got = append(e.got, seen{r.Method, r.URL.Path, r.URL.RawPath, r.Host, r.Header.Clone(), string(b)})
		e.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "upstream saw "+r.URL.EscapedPath())
	}))
	t.Cleanup(e.upstream.Close)
	secret := make([]byte, 32)
	rand.Read(secret)
	keys, err := session.NewKeyRing([]string{base64.StdEncoding.EncodeToString(secret)})
	if err != nil {
		t.Fatal(err)
	}
	e.keys = keys
	cookieCfg := session.CookieConfig{Name: "_portcullis"}
	e.store, err = session.NewCookieStore(cookieCfg, keys, session.CookieStoreOptions{Lifetime: time.Hour, Now: func() time.Time { return e.clock() }})
	if err != nil {
		t.Fatal(err)
	}
	login, err := session.NewLoginCookies(cookieCfg, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.posts, err = session.NewPosts(session.PreserveConfig{}, keys, e.store, func() time.Time { return e.clock() }); err != nil {
		t.Fatal(err)
	}
	if e.devices, err = session.NewDevices(keys, e.store, func() time.Time { return e.clock() }); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Server:    ServerConfig{PublicURL: "https://gw.example.com"},
		Upstreams: []UpstreamConfig{{Path: "/", URL: e.upstream.URL}},
		Policy:    PolicyConfig{EmailDomains: []string{"example.com"}},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	set, err := providers.SetOf(append([]providers.Provider{e.idp}, e.extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Providers: set, Sessions: e.store,
		Login: login, Keys: keys, Logger: newTestLogger(e.logs), Bearer: e.bearer,
		Now: func() time.Time { return e.clock() }, Posts: e.posts, Devices: e.devices,
	}
	if opt != nil {
		opt(&o)
	}
	e.h, err = build(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// build validates cfg as main does, telling it what o provides, and
// builds the handler.
func build(cfg Config, o Options) (*Handler, error) {
	known := Known{Bearer: o.Bearer != nil}
	if o.Providers != nil {
		known.Providers = o.Providers.IDs()
	}
	s, err := cfg.Validate(known)
	if err != nil {
		return nil, err
	}
	return New(s, o)
}

// mustSet makes a provider set or fails the test.
func mustSet(tb testing.TB, ps ...providers.Provider) *providers.Set {
	tb.Helper()
	set, err := providers.SetOf(ps...)
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

// do sends a request through the handler.
func (e *env) do(r *http.Request) *http.Response {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, r)
	return rec.Result()
}

func (e *env) last() seen {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.got) == 0 {
		e.t.Fatal("upstream received nothing")
	}
	return e.got[len(e.got)-1]
}

func (e *env) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.got)
}

// sessionCookie returns a Cookie header value for a signed-in user.
func (e *env) sessionCookie(sub, email string, groups ...string) string {
	e.t.Helper()
	v, err := e.store.Seal(&session.Session{
		Identity:  session.Identity{Issuer: e.idp.issuer, Subject: sub, Email: email, EmailVerified: true, PreferredUsername: sub, Groups: groups},
		Provider:  "corp",
		CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Hour),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.store.Name() + "=" + v
}

func get(target string, header ...string) *http.Request {
	r := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return r
}

func cookiesOf(resp *http.Response) map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range resp.Cookies() {
		out[c.Name] = c
	}
	return out
}

func decodeJSON(t *testing.T, resp *http.Response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("decoding JSON body: %v", err)
	}
	return m
}

func body(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// tryNew builds a handler from the default test configuration changed by
// mutate and returns New's error.
func tryNew(t *testing.T, mutate func(*Config)) error {
	t.Helper()
	secret := make([]byte, 32)
	rand.Read(secret)
	keys, err := session.NewKeyRing([]string{base64.StdEncoding.EncodeToString(secret)})
	if err != nil {
		t.Fatal(err)
	}
	store, _ := session.NewCookieStore(session.CookieConfig{}, keys, session.CookieStoreOptions{})
	login, _ := session.NewLoginCookies(session.CookieConfig{}, keys, nil)
	cfg := Config{
		Server:    ServerConfig{PublicURL: "https://gw.example.com"},
		Upstreams: []UpstreamConfig{{Path: "/", URL: "http://127.0.0.1:1"}},
		Policy:    PolicyConfig{EmailDomains: []string{"example.com"}},
	}
	mutate(&cfg)
	_, err = build(cfg, Options{Providers: mustSet(t, newFakeProvider()), Sessions: store, Login: login, Keys: keys})
	return err
}

// fakeBearer accepts the tokens it was told about.
type fakeBearer struct {
	tokens map[string]session.Identity
	down   bool
}

func (f *fakeBearer) Verify(_ context.Context, token string) (*session.Identity, error) {
	if f.down {
		return nil, providers.ErrUnavailable
	}
	id, ok := f.tokens[token]
	if !ok {
		return nil, providers.ErrInvalidBearer
	}
	return &id, nil
}

func stdB64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
