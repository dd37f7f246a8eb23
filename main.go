// Command portcullis is an identity-aware reverse proxy: it signs users in
// with OpenID Connect, keeps their session in an encrypted cookie, decides
// who may pass, and forwards requests with the user's identity to the
// application behind it.
//
//	portcullis -config FILE          run the gateway
//	portcullis -config FILE -check   validate the configuration and exit
//	portcullis demo                  run a demo provider, app and gateway on loopback
//	portcullis policy test -config FILE CASES.yaml
//	                                 decide a list of test requests with the policy
//	portcullis sessions list|revoke -config FILE -user SUB
//	                                 list or revoke a user's sessions through the admin API
//	portcullis version               print the version
//
// main is the composition root: it alone reads flags, files and the
// environment, builds each package from its configuration section, serves,
// and shuts down gracefully.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/proxy"
	"github.com/portcullis/portcullis/session"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "demo":
			return runDemo(args[1:], stdout, stderr)
		case "version":
			fmt.Fprintf(stdout, "portcullis %s (revision %s, %s)\n", version(), revision(), runtime.Version())
			return 0
		case "sessions":
			return runSessions(args[1:], stdout, stderr)
		case "policy":
			if len(args) > 1 && args[1] == "test" {
				return runPolicyTest(args[2:], stdout, stderr)
			}
			fmt.Fprintln(stderr, "usage: portcullis policy test -config FILE CASES.yaml")
			return 2
		}
	}
	fs := flag.NewFlagSet("portcullis", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (YAML)")
	check := fs.Bool("check", false, "validate the configuration and exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: portcullis -config FILE [-check] | portcullis demo | portcullis policy test -config FILE CASES | portcullis version")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	cfg, err := loadConfig(*configPath, osSource)
	if err != nil && cfg == nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	log, logErr := newLogger(cfg.Log, stderr)
	gw, buildErr := build(cfg, log, buildOptions{connect: !*check})
	if err := errors.Join(err, logErr, buildErr); err != nil {
		fmt.Fprintf(stderr, "portcullis: %s is not valid:\n", *configPath)
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "  -", line)
		}
		return 1
	}
	if *check {
		for _, w := range gw.warnings {
			fmt.Fprintln(stdout, "warning:", w)
		}
		fmt.Fprintf(stdout, "%s is valid. Register at the provider:\n  redirect URI:              %s\n  post-logout redirect URI:  %s\n  back-channel logout URI:   %s\n",
			*configPath, gw.callback, proxy.SignedOutURL(cfg.Server.PublicURL, cfg.Server.Prefix), proxy.BackchannelURL(cfg.Server.PublicURL, cfg.Server.Prefix))
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	defer gw.close()
	if err := gw.serve(ctx, nil); err != nil {
		log.Error("gateway stopped", "err", err)
		return 1
	}
	return 0
}

// gateway is everything built from one configuration.
type gateway struct {
	cfg       *config
	telemetry *telemetry // nil without metrics.listen
	log       *slog.Logger
	handler   *proxy.Handler
	admin     *proxy.Admin
	providers []providers.Provider
	closers   []io.Closer
	warnings  []string
	callback  string
}

// buildOptions say how far build goes.
type buildOptions struct {
	// connect builds stores that dial their servers (Redis); -check only
	// validates their configuration.
	connect bool
	// transport, when set, carries calls to providers (tests).
	transport http.RoundTripper
	// auditOut replaces stdout for the audit log (the demo, tests).
	auditOut io.Writer
}

// sessionStore is what the gateway needs of a store beyond session.Store.
type sessionStore interface {
	session.Store
	Name() string
}

// build turns the configuration into a gateway, collecting every error.
func build(cfg *config, log *slog.Logger, opts buildOptions) (*gateway, error) {
	transport := opts.transport
	var errs []error
	gw := &gateway{cfg: cfg, log: log}
	if cfg.Metrics.Listen != "" {
		gw.telemetry = newTelemetry()
	} else if cfg.Metrics.PProf {
		errs = append(errs, errors.New("metrics.pprof needs metrics.listen: the profiler is served on the metrics listener only"))
	}
	gw.callback = proxy.CallbackURL(cfg.Server.PublicURL, cfg.Server.Prefix)

	if len(cfg.Providers) == 0 {
		errs = append(errs, errors.New("providers: configure at least one identity provider"))
	}
	seenID := map[string]bool{}
	for _, pc := range cfg.Providers {
		if seenID[pc.ID] {
			errs = append(errs, fmt.Errorf("providers: id %q is used twice", pc.ID))
		}
		seenID[pc.ID] = true
	}
	for _, pc := range cfg.Providers {
		t := transport
		if gw.telemetry != nil && t == nil {
			t = gw.telemetry.provider(pc.ID)
		}
		p, err := providers.New(pc, providers.Options{RedirectURL: gw.callback, Transport: t, Claims: cfg.Policy.ClaimNames()})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if pc.InsecureAllowUnverifiedEmail {
			gw.warnings = append(gw.warnings, fmt.Sprintf("providers: %s: insecure_allow_unverified_email is on: every email the provider sends is trusted as verified", pc.ID))
		}
		gw.providers = append(gw.providers, p)
	}
	// RFC 9207 §4: issuers must identify providers uniquely, or a response
	// from one could pass for another's (compared after each type's
	// defaults: two github entries share https://github.com).
	seenIssuer := map[string]string{}
	for _, p := range gw.providers {
		if other, dup := seenIssuer[p.Issuer()]; dup {
			errs = append(errs, fmt.Errorf("providers: %s and %s have the same issuer %s; each provider needs its own issuer", other, p.ID(), p.Issuer()))
		}
		seenIssuer[p.Issuer()] = p.ID()
	}
	bearer, err := providers.NewBearerVerifier(cfg.Bearer, cfg.Providers, providers.Options{Transport: transport, Claims: cfg.Policy.ClaimNames()})
	if err != nil {
		errs = append(errs, err)
	}
	if err := cfg.Session.Validate(); err != nil {
		errs = append(errs, err)
	}
	keys, err := session.NewKeyRing(cfg.Session.Cookie.Secrets)
	if err != nil {
		errs = append(errs, err)
	}
	var store sessionStore
	var login *session.LoginCookies
	if keys != nil {
		cs, err := session.NewCookieStore(cfg.Session.Cookie, keys, session.CookieStoreOptions{Lifetime: cfg.Session.Lifetime})
		if err != nil {
			errs = append(errs, err)
		} else {
			store = cs
		}
		if cfg.Session.Store == "redis" && opts.connect && store != nil && len(errs) == 0 {
			rs, err := newRedisStore(cfg, keys, log, gw.telemetry)
			if err != nil {
				errs = append(errs, err)
			} else {
				store = rs
				gw.closers = append(gw.closers, rs)
				if gw.telemetry != nil {
					gw.telemetry.watchCache(rs)
				}
			}
		}
		if login, err = session.NewLoginCookies(cfg.Session.Cookie, keys, nil); err != nil {
			errs = append(errs, err)
		}
		secure := cfg.Session.Cookie.Secure == nil || *cfg.Session.Cookie.Secure
		switch {
		case store != nil && !secure:
			gw.warnings = append(gw.warnings, "session.cookie.secure is false: cookies travel over plain http; use only for local development")
		case strings.HasPrefix(cfg.Server.PublicURL, "http://") && !isLoopbackURL(cfg.Server.PublicURL):
			gw.warnings = append(gw.warnings, "session.cookie.secure is true but server.public_url is http: browsers will not store the cookies; serve https or set secure: false for development")
		}
	}
	if store == nil || login == nil {
		// Still validate the rest, with placeholders that never serve.
		errs = append(errs, validateProxyOnly(cfg))
		return nil, errors.Join(errs...)
	}
	audit, err := openAudit(cfg.Log.Audit, opts.connect, opts.auditOut)
	if err != nil {
		errs = append(errs, err)
	} else if c, ok := audit.closer.(io.Closer); ok && c != nil {
		gw.closers = append(gw.closers, c)
	}
	var pm *proxy.Metrics
	if gw.telemetry != nil {
		pm = gw.telemetry.proxy
	}
	var bv proxy.BearerVerifier
	if bearer != nil {
		bv = bearer // never a typed nil inside the interface
	}
	if t := cfg.Server.TLS; t.CertFile != "" && t.KeyFile != "" {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			errs = append(errs, fmt.Errorf("server.tls: %w", err))
		}
	}
	for i := range cfg.Upstreams {
		if f := cfg.Upstreams[i].TLS.CAFile; f != "" {
			pem, err := os.ReadFile(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("upstreams: %s: tls.ca_file: %w", cfg.Upstreams[i].Path, err))
			}
			cfg.Upstreams[i].TLS.CAPEM = pem
		}
	}
	h, err := proxy.New(proxy.Config{Server: cfg.Server, Upstreams: cfg.Upstreams, Policy: cfg.Policy, Headers: cfg.Headers, UI: cfg.UI, Assertion: cfg.Assertion},
		proxy.Options{Providers: gw.providers, Store: store, SessionCookie: store.Name(), Login: login, Keys: keys, Logger: log, Bearer: bv,
			IdleTimeout: cfg.Session.IdleTimeout, RefreshBefore: cfg.Session.RefreshBefore, KeepIDToken: cfg.Session.KeepIDToken != nil && *cfg.Session.KeepIDToken,
			Metrics: pm, Audit: audit.log})
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	gw.handler = h
	gw.warnings = append(gw.warnings, h.Warnings()...)
	if cfg.Admin.Listen != "" {
		if cfg.Admin.TokenFile == "" {
			return nil, errors.New("admin.token_file is required when admin.listen is set")
		}
		token, err := os.ReadFile(cfg.Admin.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin.token_file: %w", err)
		}
		if gw.admin, err = proxy.NewAdmin(string(token), h); err != nil {
			return nil, err
		}
	}
	return gw, nil
}

// validateProxyOnly checks the proxy sections when the session section is
// broken, so one run reports both.
func validateProxyOnly(cfg *config) error {
	// A throwaway key: these objects validate configuration and never serve.
	keys, err := session.NewKeyRing([]string{randomBase64(32)})
	if err != nil {
		return err
	}
	store, err := session.NewCookieStore(session.CookieConfig{}, keys, session.CookieStoreOptions{})
	if err != nil {
		return err
	}
	login, err := session.NewLoginCookies(session.CookieConfig{}, keys, nil)
	if err != nil {
		return err
	}
	_, err = proxy.New(proxy.Config{Server: cfg.Server, Upstreams: cfg.Upstreams, Policy: cfg.Policy, Headers: cfg.Headers, UI: cfg.UI, Assertion: cfg.Assertion},
		proxy.Options{Providers: []providers.Provider{nil}, Store: store, SessionCookie: store.Name(), Login: login, Keys: keys})
	return err
}

// serve listens (on ln when given) until ctx ends, then shuts down
// gracefully, letting in-flight requests finish within the shutdown timeout.
func (gw *gateway) serve(ctx context.Context, ln net.Listener) error {
	sc := gw.handler.ServerConfig() // with defaults
	srv := sc.HTTPServer(gw.handler, gw.log)
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", srv.Addr); err != nil {
			return fmt.Errorf("listening on %s: %w", srv.Addr, err)
		}
	}
	ln, tlsConf, err := gw.listenTLS(ln, sc)
	if err != nil {
		return err
	}
	srv.TLSConfig = tlsConf
	if tlsConf != nil && sc.TLS.RedirectHTTP != "" {
		redirect, rln, err := listenSide("server.tls.redirect_http", sc.TLS.RedirectHTTP, redirectToHTTPS(sc.PublicURL))
		if err != nil {
			return err
		}
		go redirect.Serve(rln)
		defer redirect.Close()
	}
	gw.log.Info("portcullis starting", "version", version(), "revision", revision(), "go", runtime.Version(), "listen", ln.Addr().String(), "tls", tlsConf != nil,
		"public_url", gw.cfg.Server.PublicURL, "callback", gw.callback, "session_store", gw.cfg.Session.Store)
	for _, w := range gw.warnings {
		gw.log.Warn(w)
	}
	go gw.discover(ctx)

	errc := make(chan error, 3) // the main, metrics and admin servers; none may block on exit
	go func() { errc <- srv.Serve(ln) }()
	if gw.telemetry != nil {
		msrv, mln, err := listenSide("metrics listener", gw.cfg.Metrics.Listen, metricsMux(gw.telemetry, gw.cfg.Metrics.PProf))
		if err != nil {
			srv.Close()
			return err
		}
		gw.log.Info("metrics listening", "listen", mln.Addr().String())
		go func() { errc <- msrv.Serve(mln) }()
		defer msrv.Close()
	}
	var admin *http.Server
	if gw.admin != nil {
		var aln net.Listener
		var err error
		if admin, aln, err = listenSide("admin listener", gw.cfg.Admin.Listen, gw.admin); err != nil {
			srv.Close()
			return err
		}
		gw.log.Info("admin API listening", "listen", aln.Addr().String())
		go func() { errc <- admin.Serve(aln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	gw.log.Info("shutting down", "grace", sc.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), sc.ShutdownTimeout)
	defer cancel()
	if admin != nil {
		admin.Shutdown(sctx)
	}
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	gw.log.Info("stopped")
	return nil
}

// listenSide opens a side listener (metrics, admin API, HTTP→HTTPS
// redirect): short timeouts and small headers, since none of them streams.
func listenSide(what, addr string, h http.Handler) (*http.Server, net.Listener, error) {
	s := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s on %s: %w", what, addr, err)
	}
	return s, ln, nil
}

// discover contacts every provider at start, retrying until it answers, so
// the log says early whether sign-in will work and /ready turns green.
// close releases what build opened (Redis connections).
func (gw *gateway) close() {
	for _, c := range gw.closers {
		if err := c.Close(); err != nil {
			gw.log.Warn("closing", "err", err)
		}
	}
}

// newRedisStore connects the Redis session store; main reads the CA file.
func newRedisStore(cfg *config, keys *session.KeyRing, log *slog.Logger, t *telemetry) (*session.RedisStore, error) {
	var ca []byte
	if f := cfg.Session.Redis.TLS.CAFile; f != "" {
		var err error
		if ca, err = os.ReadFile(f); err != nil {
			return nil, fmt.Errorf("session.redis.tls.ca_file: %w", err)
		}
	}
	// go-redis reports reconnects and failovers through a global logger;
	// send them to ours.
	redis.SetLogger(redisLogger{log})
	var hooks []redis.Hook
	if t != nil {
		hooks = append(hooks, t.redis)
	}
	return session.NewRedisStore(cfg.Session.Redis, keys, session.RedisStoreOptions{
		Cookie: cfg.Session.Cookie, Lifetime: cfg.Session.Lifetime, CACert: ca, Hooks: hooks,
	})
}

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.Log(ctx, slog.LevelWarn, "redis: "+fmt.Sprintf(format, v...))
}

func (gw *gateway) discover(ctx context.Context) {
	for _, p := range gw.providers {
		go func() {
			delay := time.Second
			for {
				err := p.Ready(ctx)
				if err == nil {
					gw.log.Info("provider ready", "provider", p.ID(), "issuer", p.Issuer())
					return
				}
				gw.log.Warn("provider not reachable yet; sign-ins fail until it is", "provider", p.ID(), "err", err, "retry_in", delay)
				select {
				case <-ctx.Done():
					return
				case <-time.After(delay):
				}
				delay = min(delay*2, time.Minute)
			}
		}()
	}
}

func isLoopbackURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
}

func newLogger(cfg logConfig, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	var err error
	switch strings.ToLower(cfg.Level) {
	case "", "info":
		level = slog.LevelInfo
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		err = fmt.Errorf("log.level %q: want debug, info, warn or error", cfg.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(cfg.Format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), err
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), err
	}
	return slog.New(slog.NewTextHandler(w, opts)), errors.Join(err, fmt.Errorf("log.format %q: want text or json", cfg.Format))
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	if rev := buildSetting("vcs.revision"); len(rev) >= 12 {
		return "devel-" + rev[:12]
	}
	return "devel"
}

func buildSetting(key string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == key {
				return s.Value
			}
		}
	}
	return ""
}

// metricsMux serves /metrics on the metrics listener, and with pprof the
// Go profiler under /debug/pprof/ (a CPU profile: /debug/pprof/profile?seconds=10).
func metricsMux(t *telemetry, withPProf bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", t.handler())
	if withPProf {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// auditSink is the audit logger and what to close at shutdown.
type auditSink struct {
	log    *slog.Logger
	closer any
}

// openAudit opens the audit log: JSON lines to stdout (default), stderr or
// an appended file. With open false (-check) nothing is opened.
func openAudit(dest string, open bool, out io.Writer) (auditSink, error) {
	var w io.Writer
	var closer any
	switch dest {
	case "", "stdout":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		if !open {
			return auditSink{}, nil
		}
		f, err := os.OpenFile(dest, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
		if err != nil {
			return auditSink{}, fmt.Errorf("log.audit: %w", err)
		}
		w, closer = f, f
	}
	if out != nil {
		w = out
	}
	return auditSink{log: slog.New(slog.NewJSONHandler(w, nil)), closer: closer}, nil
}
