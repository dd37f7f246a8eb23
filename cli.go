package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The command-line client of the gateway's device authorization grant
// (RFC 8628): `portcullis login`, `token` and `logout`. Human text goes to
// stderr; stdout carries only what a program reads (the token, or the
// Kubernetes ExecCredential), so `$(portcullis token URL)` and kubectl's
// exec plugins work.

// cliTokenMargin is how long a stored token must stay valid for `token` to
// hand it out: a request made with it should not die of expiry in flight.
const cliTokenMargin = 60 * time.Second

// cliFlags are the flags of login, token and logout.
type cliFlags struct {
	origin         string
	noQR           bool
	browser        bool
	noBrowser      bool
	execCredential bool
}

// parseCLI parses `verb URL [flags]`, flags before or after URL.
func parseCLI(verb string, args []string, stderr io.Writer) (*cliFlags, bool) {
	var f cliFlags
	fs := flag.NewFlagSet("portcullis "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch verb {
	case "login":
		fs.BoolVar(&f.noQR, "no-qr", false, "do not draw the QR code, even on a terminal")
		fs.BoolVar(&f.browser, "browser", false, "open the sign-in page in the default browser")
		fs.BoolVar(&f.noBrowser, "no-browser", false, "never open a browser (the default; overrides -browser)")
		fs.BoolVar(&f.execCredential, "exec-credential", false, "print a Kubernetes ExecCredential on stdout once signed in")
	case "token":
		fs.BoolVar(&f.noQR, "no-qr", false, "when it signs in: do not draw the QR code")
		fs.BoolVar(&f.execCredential, "exec-credential", false, "print a Kubernetes ExecCredential (and sign in first when interactive)")
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: portcullis %s URL [flags]\n", verb)
		fs.PrintDefaults()
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, false
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != 1 {
		fs.Usage()
		return nil, false
	}
	f.origin = pos[0]
	return &f, true
}

// cliTarget parses a command's flags and its gateway URL into an origin;
// false (exit 2) when either is wrong, said on stderr.
func cliTarget(verb string, args []string, stderr io.Writer) (*cliFlags, string, bool) {
	f, ok := parseCLI(verb, args, stderr)
	if !ok {
		return nil, "", false
	}
	origin, err := gatewayOrigin(f.origin)
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return nil, "", false
	}
	return f, origin, true
}

// runLogin is `portcullis login URL [-no-qr] [-browser] [-exec-credential]`.
func runLogin(args []string, stdout, stderr io.Writer) int {
	f, origin, ok := cliTarget("login", args, stderr)
	if !ok {
		return 2
	}
	store, err := openTokenStore()
	if err == nil {
		_, err = store.get(origin) // refuse an exposed or broken file before the user signs in
	}
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	entry, code := loginInteractive(origin, f, store, stderr)
	if code != 0 {
		return code
	}
	if f.execCredential {
		return printExecCredential(stdout, stderr, entry)
	}
	return 0
}

// loginInteractive runs the grant for origin, stores the token, and says so.
func loginInteractive(origin string, f *cliFlags, store *tokenStore, stderr io.Writer) (*storedToken, int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := newDeviceClient(origin)
	show := showOptions{qr: !f.noQR && isTerminal(stderr), browser: f.browser && !f.noBrowser}
	tok, err := c.login(ctx, stderr, show)
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", loginMessage(origin, err))
		return nil, 1
	}
	entry := &storedToken{AccessToken: tok.AccessToken, ObtainedAt: tok.obtained.UTC(),
		ExpiresAt: tok.obtained.Add(time.Duration(tok.ExpiresIn) * time.Second).UTC()}
	if err := store.put(origin, entry); err != nil {
		fmt.Fprintln(stderr, "portcullis: signed in, but the token could not be stored:", err)
		return nil, 1
	}
	fmt.Fprintf(stderr, "Signed in to %s; token valid until %s.\n", origin, entry.ExpiresAt.Local().Format("2006-01-02 15:04:05 MST"))
	return entry, 0
}

// loginMessage says plainly why a sign-in ended.
func loginMessage(origin string, err error) string {
	switch {
	case errors.Is(err, errAccessDenied):
		return "the sign-in was denied. Nothing was stored."
	case errors.Is(err, errCodeExpired):
		return fmt.Sprintf("the code expired before the sign-in was approved. Run portcullis login %s to get a new one.", origin)
	case errors.Is(err, context.Canceled):
		return "sign-in cancelled. Nothing was stored."
	}
	return err.Error()
}

// runToken is `portcullis token URL [--exec-credential]`.
func runToken(args []string, stdout, stderr io.Writer) int {
	f, origin, ok := cliTarget("token", args, stderr)
	if !ok {
		return 2
	}
	store, err := openTokenStore()
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	entry, err := store.get(origin)
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	if entry == nil || time.Until(entry.ExpiresAt) < cliTokenMargin {
		if !f.execCredential || !execInteractive(stderr) {
			fmt.Fprintf(stderr, "portcullis: no valid token for %s: run portcullis login %s\n", origin, origin)
			return 1
		}
		// kubectl lets an exec plugin prompt on stderr when interactive.
		var code int
		if entry, code = loginInteractive(origin, f, store, stderr); code != 0 {
			return code
		}
	}
	if f.execCredential {
		return printExecCredential(stdout, stderr, entry)
	}
	fmt.Fprintln(stdout, entry.AccessToken)
	return 0
}

// gatewayOrigin normalises raw to the gateway's origin,
// scheme://host[:port] (RFC 6454), the key tokens are stored under. Plain
// http is refused except to a loopback host: the token would cross the
// network in the clear.
func gatewayOrigin(raw string) (string, error) {
	u, err := checkWebURL(raw)
	if err != nil {
		return "", err
	}
	return u.Scheme + "://" + u.Host, nil
}

// checkWebURL parses an absolute http(s) URL without userinfo, lowercasing
// scheme and host and dropping a default port. http is accepted only for
// loopback hosts.
func checkWebURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("no URL given")
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) {
		return nil, fmt.Errorf("%q: a URL has no spaces, control characters or backslashes", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("%q: the URL must start with https:// (the gateway's public URL)", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q: a user name or password in the URL is refused; sign in with portcullis login URL instead", raw)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("%q has no host", raw)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if host == "" || strings.ContainsFunc(host, func(r rune) bool { return r > 0x7e || r == '%' }) {
		return nil, fmt.Errorf("%q: the host must be a plain ASCII name or address (an xn-- name, no IPv6 zone)", raw)
	}
	if n, err := strconv.Atoi(port); port != "" && (err != nil || n < 1 || n > 65535) {
		return nil, fmt.Errorf("%q: bad port %q", raw, port)
	}
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	if u.Scheme == "http" && !isLoopbackHost(host) {
		return nil, fmt.Errorf("%q: plain http would send the token in the clear; use https:// (http is accepted only for localhost and loopback addresses)", raw)
	}
	u.Host = host
	if strings.Contains(host, ":") {
		u.Host = "[" + host + "]"
	}
	if port != "" {
		u.Host = net.JoinHostPort(host, port)
	}
	return u, nil
}

// isLoopbackHost: localhost, 127.0.0.0/8 or ::1.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isTerminal reports whether w is a character device (a terminal), without
// a dependency: a pipe, a file or a buffer is not.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
