package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis/portcullis/demo"
	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/proxy"
	"github.com/portcullis/portcullis/session"
)

// runDemo starts, on loopback, a real OpenID provider with two demo users,
// a demo app that shows what it receives, and the gateway in front of the
// app. Nothing to configure; secrets and passwords are new on every run.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:4180", "gateway address (loopback)")
	idpListen := fs.String("idp-listen", "127.0.0.1:0", "demo identity provider address (port 0: any free port)")
	verbose := fs.Bool("v", false, "log every request")
	configPath := fs.String("config", "", "try this configuration's policy and ui sections with the demo's provider, users and app")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var own *config
	if *configPath != "" {
		var err error
		if own, err = demoConfig(*configPath, stdout); err != nil {
			fmt.Fprintln(stderr, "portcullis demo:", err)
			return 2
		}
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	defer ignoreHangup(log)()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d, err := startDemo(ctx, demoOptions{Listen: *listen, IDPListen: *idpListen, Log: log, Own: own})
	if err != nil {
		fmt.Fprintln(stderr, "portcullis demo:", err)
		return 1
	}
	defer d.Close()
	fmt.Fprintf(stdout, `
Portcullis demo is running.

  Open   %s
  Sign in as one of (passwords are new on every run):
`, d.URL)
	for _, u := range d.Users {
		fmt.Fprintf(stdout, "    %-6s %s   (%s, groups: %v)\n", u.Username, u.Password, u.Email, u.Groups)
	}
	if own == nil {
		fmt.Fprintf(stdout, `
  Try
    %sadmin/        admins only: alice gets in, bob gets the 403 page
    %spublic/       open to anyone, no sign-in
`, d.URL, d.URL)
	} else {
		fmt.Fprintf(stdout, "\n  Try the routes of %s:\n", *configPath)
		for _, r := range own.Policy.Routes {
			fmt.Fprintf(stdout, "    %s%s\n", d.URL, strings.TrimPrefix(r.Path, "/"))
		}
	}
	fmt.Fprintf(stdout, `    %soauth2/sign_out   ends on the signed-out page

  From a terminal (device sign-in, approved in the browser):
    portcullis login %s
    curl -H "Authorization: Bearer $(portcullis token %s)" %s

  Identity provider  %s   (zitadel/oidc, in-process)
  Protected app      %s   (reach it through the gateway)

Press Ctrl-C to stop.
`, d.URL, strings.TrimSuffix(d.URL, "/"), strings.TrimSuffix(d.URL, "/"), d.URL, d.IDP.URL, d.AppURL)
	if err := <-d.Done; err != nil {
		fmt.Fprintln(stderr, "portcullis demo:", err)
		return 1
	}
	return 0
}

type demoOptions struct {
	Listen    string // gateway
	IDPListen string
	Log       *slog.Logger
	// Users replaces the demo users (tests, the load harness).
	Users []demo.User
	// Own, when set, supplies the policy and ui sections (demo -config).
	Own *config
}

// demoRun is a running demo.
type demoRun struct {
	URL    string // the gateway, what a browser opens
	AppURL string
	IDP    *demo.Server
	Users  []demo.User
	Done   <-chan error // the gateway's result once ctx ends

	app   *http.Server
	appLn net.Listener
}

func (d *demoRun) Close() {
	d.IDP.Close()
	d.app.Close()
}

func startDemo(ctx context.Context, opts demoOptions) (*demoRun, error) {
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w (try -listen 127.0.0.1:0)", err)
	}
	public := "http://" + ln.Addr().String()
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("demo app: %w", err)
	}
	app := &http.Server{Handler: demo.NewApp("Demo app"), ReadHeaderTimeout: 10 * time.Second}
	go app.Serve(appLn)

	users := opts.Users
	if users == nil {
		users = demo.DemoUsers()
	}
	clientSecret := randomBase64(32)
	idp, err := demo.Start(opts.IDPListen, demo.Config{
		Users: users,
		Clients: []demo.Client{{
			ID:                     "portcullis-demo",
			Secret:                 clientSecret,
			RedirectURIs:           []string{proxy.CallbackURL(public, "")},
			PostLogoutRedirectURIs: []string{public + "/", proxy.SignedOutURL(public, "")},
		}},
		ShowUserHints: true,
		Logger:        opts.Log,
	})
	if err != nil {
		ln.Close()
		app.Close()
		return nil, err
	}
	no := false
	cfg := &config{
		Server: proxy.ServerConfig{Listen: ln.Addr().String(), PublicURL: public},
		Providers: []providers.Config{{
			ID: "demo", Type: "oidc", Name: "Demo identity provider",
			IssuerURL: idp.URL, ClientID: "portcullis-demo", ClientSecret: clientSecret,
			Scopes: []string{"openid", "email", "profile"},
		}},
		Session: session.Config{Cookie: session.CookieConfig{
			Name: "_portcullis", Secrets: []string{randomBase64(32)}, Secure: &no,
		}},
		Upstreams: []proxy.UpstreamConfig{{Path: "/", URL: "http://" + appLn.Addr().String()}},
		Policy:    demoPolicy(),
		// Terminals sign in too: portcullis login <the demo's URL>.
		Device: proxy.DeviceConfig{Enabled: true},
	}
	if opts.Own != nil {
		cfg.Policy, cfg.UI = opts.Own.Policy, opts.Own.UI
	}
	gw, err := build(cfg, opts.Log, buildOptions{})
	if err != nil {
		ln.Close()
		app.Close()
		idp.Close()
		return nil, fmt.Errorf("building the gateway: %w", err)
	}
	// The demo runs on plain-http loopback on purpose; don't warn about it.
	gw.warnings = nil
	done := make(chan error, 1)
	go func() { done <- gw.serve(ctx, ln) }()
	return &demoRun{URL: public + "/", AppURL: "http://" + appLn.Addr().String(), IDP: idp, Users: users, Done: done, app: app, appLn: appLn}, nil
}

// demoConfig reads the policy and ui sections of the configuration at
// path for demo -config, as policy test does: environment variables and
// secret files become placeholders, the rest is ignored. Routes pinned to
// a provider use the demo's; groups the policy names that no demo user is
// in are listed, so a route nobody can open is no surprise.
func demoConfig(path string, out io.Writer) (*config, error) {
	cfg, err := loadConfig(path, policySource(path))
	if err != nil {
		return nil, err
	}
	for i := range cfg.Policy.Routes {
		if r := &cfg.Policy.Routes[i]; r.Provider != "" {
			fmt.Fprintf(out, "  note: route %s pins provider %q; in the demo it uses the demo provider\n", r.Path, r.Provider)
			r.Provider = "demo"
		}
	}
	have := map[string]bool{}
	for _, u := range demo.DemoUsers() {
		for _, g := range u.Groups {
			have[g] = true
		}
	}
	named := slices.Clone(cfg.Policy.Groups)
	for _, r := range cfg.Policy.Routes {
		named = append(named, r.Groups...)
	}
	var missing []string
	for _, g := range named {
		if !have[g] && !slices.Contains(missing, g) {
			missing = append(missing, g)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(out, "  note: no demo user is in the groups %s; rules that need them deny everyone here\n", strings.Join(missing, ", "))
	}
	return cfg, nil
}

// demoPolicy lets every demo user in, and shows the two other answers a
// route can give: /admin/ only for the admins group (alice; bob gets the
// 403 page), /public/ for anyone without signing in.
func demoPolicy() proxy.PolicyConfig {
	return proxy.PolicyConfig{
		EmailDomains: []string{"*"},
		Routes: []proxy.RouteConfig{
			{Path: "/admin/", Groups: []string{"admins"},
				DenyMessage: "In this demo /admin/ is for the admins group only: sign out and sign in as alice to open it."},
			{Path: "/public/", Public: true},
		},
	}
}

func randomBase64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
