// Command portcullis is an identity-aware reverse proxy: it signs users in
// with OpenID Connect, keeps their session in an encrypted cookie, decides
// who may pass, and forwards requests with the user's identity to the
// application behind it.
//
//	portcullis -config FILE          run the gateway
//	portcullis -config FILE -check   validate the configuration and exit
//	portcullis -config FILE -check -online
//	                                 also ask each provider's discovery and keys
//	portcullis demo                  run a demo provider, app and gateway on loopback
//	portcullis policy test -config FILE CASES.yaml
//	                                 decide a list of test requests as the gateway would
//	portcullis sessions list|revoke -config FILE -user SUB
//	                                 list or revoke a user's sessions through the admin API
//	portcullis migrate [-config oauth2-proxy.cfg] [-alpha-config alpha.yaml] [-- FLAGS]
//	                                 write a Portcullis configuration from oauth2-proxy's
//	portcullis login URL [-no-qr] [-browser] [-exec-credential]
//	                                 sign in to a gateway from a terminal (RFC 8628 device grant)
//	portcullis token URL [--exec-credential]
//	                                 print the stored token (or a Kubernetes ExecCredential)
//	portcullis logout URL            revoke the stored token and forget it
//	portcullis version               print the version
//
// main is the composition root: it alone reads flags, files and the
// environment; each package validates its own section; main wires what
// they build together, serves, and shuts down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	_ "time/tzdata" // policy.time_zone works in images without a zone database

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
		case "migrate":
			return runMigrate(args[1:], stdout, stderr)
		case "login":
			return runLogin(args[1:], stdout, stderr)
		case "token":
			return runToken(args[1:], stdout, stderr)
		case "logout":
			return runLogout(args[1:], stdout, stderr)
		case "policy":
			if len(args) > 1 && args[1] == "test" {
				return runPolicyTest(args[2:], stdout, stderr)
			}
			if len(args) > 1 && args[1] == "explain" {
				return runPolicyExplain(args[2:], stdout, stderr)
			}
			fmt.Fprintln(stderr, "usage: portcullis policy test -config FILE CASES.yaml | portcullis policy explain -config FILE CASES.yaml [CASE]")
			return 2
		}
	}
	return runGateway(args, stdout, stderr)
}

// runGateway is `portcullis -config FILE [-check [-online]]`.
func runGateway(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (YAML)")
	check := fs.Bool("check", false, "validate the configuration and exit")
	online := fs.Bool("online", false, "with -check: fetch each provider's discovery document and keys and report what they support")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: portcullis -config FILE [-check [-online]] | portcullis demo [-config FILE] | portcullis policy test|explain -config FILE CASES | portcullis sessions list|revoke | portcullis migrate | portcullis login|token|logout URL | portcullis version")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" || fs.NArg() > 0 || (*online && !*check) {
		fs.Usage()
		return 2
	}
	src, files := recordingSource()
	cfg, err := loadConfig(*configPath, src)
	if err != nil && cfg == nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	err = errors.Join(err, cfg.readFiles(src.readFile))
	log, logErr := newLogger(cfg.Log, stderr)
	if cfg.Tracing.enabled() {
		log = slog.New(traceLogs{log.Handler()}) // lines written in a traced request carry trace_id
	}
	// SIGHUP must not end the process while it starts; once serving, it
	// reloads.
	stopIgnoring := ignoreHangup(log)
	defer func() { stopIgnoring() }()
	gw, buildErr := build(cfg, log, buildOptions{validateOnly: *check})
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
		u := uris(cfg, gw.callback)
		if !*online {
			printOffline(stdout, *configPath, u)
			return 0
		}
		fmt.Fprintf(stdout, "%s is valid. Asking the providers:\n", *configPath)
		if !checkOnline(stdout, cfg, gw.providerOptions(nil), u) {
			fmt.Fprintln(stderr, "portcullis: a provider has errors; see above")
			return 1
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	gw.reload = &reloader{path: *configPath, files: files}
	defer gw.tracing.shutdown() // after the last generation closes: its spans are sent
	defer func() { gw.current().close() }()
	reloads := gw.reload.hangups() // before the ignoring stops: SIGHUP never gets its default
	stopIgnoring()
	stopIgnoring = reloads
	if err := gw.serve(ctx, nil); err != nil {
		log.Error("gateway stopped", "err", err)
		return 1
	}
	return 0
}

// gateway is everything built from one configuration.
type gateway struct {
	cfg       *config
	log       *slog.Logger
	telemetry *telemetry // nil without metrics.listen
	tracing   *tracing   // nil with tracing off; shared by every generation
	parts     *parts
	handler   *proxy.Handler
	admin     *proxy.Admin // nil without admin.listen
	authz     *proxy.ExtAuthz
	store     session.Backend
	posts     *session.Posts
	devices   *session.Devices
	audit     auditSink
	// storeCloser and the audit sink's closer are this generation's to
	// close: nil for what it shares with the generation it replaced until
	// takeOver (reload.go) hands them on.
	storeCloser io.Closer
	warnings    []string
	callback    string
	// reload, when set, re-reads the configuration (the gateway; not the
	// demo): SIGHUP and server.watch_config call it.
	reload *reloader
	// stopBackground ends what start began (discovery, the emails watcher).
	stopBackground context.CancelFunc
}

// buildOptions say how far build goes.
type buildOptions struct {
	// validateOnly (-check) stops once every section is validated:
	// nothing is opened or dialled.
	validateOnly bool
	// transport, when set, carries calls to providers (tests).
	transport http.RoundTripper
	// auditOut replaces stdout for the audit log (the demo, tests).
	auditOut io.Writer
	// prev is the running generation a reload replaces: what did not
	// change is taken over from it (reload.go).
	prev *gateway
}

// parts is what each package builds from its own section, before anything
// is opened or dialled.
type parts struct {
	providers *providers.Set
	bearer    *providers.BearerVerifier // nil without a bearer section
	keys      *session.KeyRing
	login     *session.LoginCookies
	settings  *proxy.Settings
}

// build turns the configuration into a gateway, reporting every problem
// of every section at once before it opens anything.
func build(cfg *config, log *slog.Logger, opts buildOptions) (*gateway, error) {
	gw := &gateway{cfg: cfg, log: log, callback: proxy.CallbackURL(cfg.Server.PublicURL, cfg.Server.Prefix)}
	var errs []error
	switch {
	case opts.prev != nil:
		gw.telemetry = opts.prev.telemetry // metrics.listen cannot change; the registry stays
	case cfg.Metrics.Listen != "":
		gw.telemetry = newTelemetry()
	}
	switch err := cfg.Tracing.validate(); {
	case err != nil:
		errs = append(errs, err)
	case opts.prev != nil:
		gw.tracing = opts.prev.tracing // tracing cannot change at a reload
	case !opts.validateOnly:
		var err error
		if gw.tracing, err = newTracing(cfg.Tracing); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.Metrics.Listen == "" && cfg.Metrics.PProf {
		errs = append(errs, errors.New("metrics.pprof needs metrics.listen: the profiler is served on the metrics listener only"))
	}
	p, err := validate(cfg, gw.providerOptions(opts.transport))
	if err := errors.Join(append(errs, err)...); err != nil {
		return nil, err
	}
	if opts.prev != nil {
		keepProviders(p, opts.prev, cfg)
	}
	gw.parts = p
	gw.warnings = append(append(p.providers.Warnings(), cookieWarnings(cfg)...), p.settings.Warnings()...)
	if opts.validateOnly {
		return gw, nil
	}
	if err := gw.wire(opts); err != nil {
		gw.close()
		return nil, err
	}
	return gw, nil
}

// validate has every package check its own section and build what needs
// no I/O, collecting every error.
func validate(cfg *config, popts providers.Options) (*parts, error) {
	p := &parts{}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	p.providers, err = providers.NewSet(cfg.Providers, popts)
	add(err)
	p.bearer, err = providers.NewBearerVerifier(cfg.Bearer, cfg.Providers, providers.Options{Transport: popts.Transport, Claims: popts.Claims})
	add(err)
	sessionErr := cfg.Session.Validate()
	add(sessionErr)
	p.keys, err = session.NewKeyRing(cfg.Session.Cookie.Secrets)
	add(err)
	if err == nil && sessionErr == nil {
		p.login, err = session.NewLoginCookies(cfg.Session.Cookie, p.keys, nil)
		add(err)
	}
	p.settings, err = cfg.proxy().Validate(cfg.known(p.bearer != nil))
	add(err)
	add(cfg.Admin.Validate())
	return p, errors.Join(errs...)
}

// providerOptions are the providers' collaborators: the callback, and a
// transport per provider (instrumented when metrics are on).
func (gw *gateway) providerOptions(transport http.RoundTripper) providers.Options {
	o := providers.Options{RedirectURL: gw.callback, Transport: transport, Claims: gw.cfg.Policy.ClaimNames()}
	if gw.telemetry != nil && transport == nil {
		o.TransportFor = gw.telemetry.provider
	}
	if gw.tracing != nil {
		measured := o.TransportFor
		o.TransportFor = func(id string, own http.RoundTripper) http.RoundTripper {
			rt := own
			switch {
			case measured != nil:
				rt = measured(id, own)
			case rt == nil:
				rt = transport
			}
			return gw.tracing.transport(id, rt)
		}
	}
	return o
}

// wire opens what the validated parts need (the session store, the audit
// log) and builds the handler and the admin API from them.
func (gw *gateway) wire(opts buildOptions) error {
	cfg, p := gw.cfg, gw.parts
	var hooks []redis.Hook
	if gw.telemetry != nil {
		hooks = append(hooks, gw.telemetry.redis)
	}
	if gw.tracing != nil {
		hooks = append(hooks, redisHook{gw.tracing.tracer})
	}
	if cfg.Session.Store == "redis" {
		// go-redis reports reconnects and failovers through a global logger.
		redis.SetLogger(redisLogger{gw.log})
	}
	if err := gw.openStore(opts.prev, hooks); err != nil {
		return err
	}
	if err := gw.openAudit(opts.prev, opts.auditOut); err != nil {
		return err
	}
	var previous *proxy.Handler
	if opts.prev != nil {
		previous = opts.prev.handler
	}
	var bearer proxy.BearerVerifier
	if p.bearer != nil {
		bearer = p.bearer // never a typed nil inside the interface
	}
	var err error
	if gw.handler, err = proxy.New(p.settings, withTracing(proxy.Options{
		Providers: p.providers, Sessions: gw.store, Login: p.login, Keys: p.keys, Bearer: bearer, Logger: gw.log,
		IdleTimeout: cfg.Session.IdleTimeout, RefreshBefore: cfg.Session.RefreshBefore, KeepIDToken: *cfg.Session.KeepIDToken,
		Metrics: gw.telemetry.proxyMetrics(), Audit: gw.audit.log, Previous: previous, Posts: gw.posts,
		Devices: gw.devices,
	}, gw.tracing)); err != nil {
		return err
	}
	gw.authz = proxy.NewExtAuthz(gw.handler)
	if cfg.Admin.Listen != "" {
		gw.admin, err = proxy.NewAdmin(cfg.Admin.Token, gw.handler)
	}
	return err
}

// openStore opens the session store, or takes over prev's when the
// session section did not change: the same Redis connections and local
// cache, and in cookie mode the sessions kept on this replica.
func (gw *gateway) openStore(prev *gateway, hooks []redis.Hook) error {
	if prev != nil && prev.store != nil && reflect.DeepEqual(prev.cfg.Session, gw.cfg.Session) {
		gw.store, gw.posts, gw.devices = prev.store, prev.posts, prev.devices // closed by prev until takeOver
		return nil
	}
	store, err := session.New(gw.cfg.Session, gw.parts.keys, session.Options{Hooks: hooks})
	if err != nil {
		return err
	}
	gw.store = store
	gw.storeCloser, _ = store.(io.Closer)
	gw.telemetry.watchCache(store)
	// Form posts kept across a sign-in: in Redis with the sessions, or
	// in this replica's memory.
	if gw.posts, err = session.NewPosts(gw.cfg.Session.PreservePost, gw.parts.keys, store, nil); err != nil {
		return err
	}
	// Device grants (device.enabled): likewise.
	gw.devices, err = session.NewDevices(gw.parts.keys, store, nil)
	return err
}

// openAudit opens the audit log, or takes over prev's when log.audit did
// not change.
func (gw *gateway) openAudit(prev *gateway, out io.Writer) error {
	if prev != nil && prev.audit.log != nil && prev.cfg.Log.Audit == gw.cfg.Log.Audit {
		gw.audit = auditSink{log: prev.audit.log} // closed by prev until takeOver
		return nil
	}
	var err error
	gw.audit, err = openAudit(gw.cfg.Log.Audit, out)
	return err
}

// close releases what this generation opened and still owns (Redis
// connections, the audit file).
func (gw *gateway) close() {
	for _, c := range []io.Closer{gw.storeCloser, gw.audit.closer} {
		if c == nil {
			continue
		}
		if err := c.Close(); err != nil {
			gw.log.Warn("closing", "err", err)
		}
	}
	gw.storeCloser, gw.audit.closer = nil, nil
}
