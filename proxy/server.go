package proxy

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ServerConfig is the `server` section.
type ServerConfig struct {
	// Listen is the address to serve on. Default 127.0.0.1:4180.
	Listen string `yaml:"listen"`
	// PublicURL is where browsers reach the gateway; the callback is
	// PublicURL + Prefix + "/callback". Required.
	PublicURL string `yaml:"public_url"`
	// Prefix of the gateway's endpoints. Default /oauth2.
	Prefix string `yaml:"prefix"`
	// AllowedRedirectHosts may be named in absolute rd targets besides
	// PublicURL's own origin: "app.example.com", "app.example.com:8443", or
	// ".example.com" for subdomains. Empty by default: only relative paths.
	AllowedRedirectHosts []string `yaml:"allowed_redirect_hosts"`
	// WhitelistDomains is oauth2-proxy's name for AllowedRedirectHosts,
	// merged with it; "*.example.com" is read as ".example.com".
	WhitelistDomains []string `yaml:"whitelist_domains"`
	// TrustedProxies are the CIDRs (or single addresses) of the proxies
	// whose X-Forwarded-* and X-Original-* headers are believed, e.g. the
	// nginx or Traefik in front of /oauth2/auth. Empty by default: nobody
	// can steer a decision or a redirect with those headers.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// RealClientIPHeader is where a trusted proxy names the client:
	// X-Forwarded-For (default), X-Real-Ip or Forwarded (RFC 7239). Read
	// only from trusted_proxies; the logs and upstreams see that client.
	RealClientIPHeader string `yaml:"real_client_ip_header"`

	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"` // default 10s
	ReadTimeout       time.Duration `yaml:"read_timeout"`        // whole request incl. body; default 60s
	WriteTimeout      time.Duration `yaml:"write_timeout"`       // default 0: streaming responses may run long
	IdleTimeout       time.Duration `yaml:"idle_timeout"`        // keep-alive; default 120s
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`    // default 64 KiB
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`    // grace for in-flight requests and websockets; default 30s
	// ShutdownDelay is how long the gateway keeps serving after SIGTERM,
	// with /ready failing, before it drains: time for load balancers and
	// Kubernetes endpoints to stop sending it requests. Default 0.
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`
	// WatchConfig reloads the configuration when its file, or a *_file
	// secret it names, changes (as SIGHUP does). Default false.
	WatchConfig bool `yaml:"watch_config"`

	TLS ServerTLS `yaml:"tls"`
	// GRPCListen, when set, serves Envoy's ext_authz gRPC service
	// (envoy.service.auth.v3.Authorization) on its own listener; plaintext
	// (h2c) unless GRPCTLS is set. Empty by default: off.
	GRPCListen string  `yaml:"grpc_listen"`
	GRPCTLS    GRPCTLS `yaml:"grpc_tls"`
	// HSTS is the Strict-Transport-Security the gateway sends when
	// PublicURL is https.
	HSTS HSTSConfig `yaml:"hsts"`
}

// HSTSConfig is `server.hsts` (RFC 6797). With an https public_url every
// response leaving the gateway carries Strict-Transport-Security: its own
// pages, redirects, JSON errors and endpoints, and proxied responses too,
// where the gateway's value replaces any the upstream set (the gateway
// terminates the browser's connection, so it owns the host's policy; an
// upstream can neither weaken nor clear it). With an http public_url none
// is sent and upstreams' headers pass untouched (RFC 6797 §7.2: not over
// plain HTTP).
type HSTSConfig struct {
	// MaxAge in seconds (RFC 6797 §6.1.1); default 31536000 (one year).
	// 0 turns HSTS off.
	MaxAge *int64 `yaml:"max_age"`
	// IncludeSubDomains extends the policy to every subdomain of the
	// public host (§6.1.2). Opt in: it breaks any subdomain still on http.
	IncludeSubDomains bool `yaml:"include_subdomains"`
	// Preload asks browsers to ship the policy built in (hstspreload.org);
	// needs include_subdomains and a max_age of at least a year. Hard to
	// undo: opt in only for a host that will never serve http.
	Preload bool `yaml:"preload"`
}

// hstsDefaultMaxAge is one year, the minimum hstspreload.org accepts.
const hstsDefaultMaxAge = 365 * 24 * 60 * 60

// header returns the Strict-Transport-Security value for public, "" for
// none (http, or max_age 0). Contradictory settings are an error rather
// than silently weaker.
func (c *HSTSConfig) header(public *url.URL) (string, error) {
	if c.MaxAge == nil {
		v := int64(hstsDefaultMaxAge)
		c.MaxAge = &v
	}
	age := *c.MaxAge
	switch {
	case age < 0:
		return "", fmt.Errorf("server.hsts.max_age %d: want seconds, 0 for off", age)
	case age == 0 && (c.IncludeSubDomains || c.Preload):
		return "", fmt.Errorf("server.hsts: include_subdomains and preload need a max_age above 0")
	case c.Preload && (!c.IncludeSubDomains || age < hstsDefaultMaxAge):
		return "", fmt.Errorf("server.hsts.preload needs include_subdomains: true and max_age of at least %d (one year)", hstsDefaultMaxAge)
	case age == 0 || public == nil || public.Scheme != "https":
		return "", nil
	}
	// RFC 6797 §6.1: max-age=delta-seconds, then the valueless directives.
	v := "max-age=" + strconv.FormatInt(age, 10)
	if c.IncludeSubDomains {
		v += "; includeSubDomains"
	}
	if c.Preload {
		v += "; preload"
	}
	return v, nil
}

// ServerTLS is `server.tls`: serve HTTPS (and HTTP/2) on listen.
type ServerTLS struct {
	// CertFile and KeyFile are PEM files; both or neither. They are
	// re-read when they change, so certificates rotate without a restart.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
	// RedirectHTTP, when set, is an address (":80") answering plain HTTP
	// with a redirect to public_url.
	RedirectHTTP string `yaml:"redirect_http"`
}

// GRPCTLS is `server.grpc_tls`: serve the ext_authz gRPC listener over
// TLS (files re-read when they change, like server.tls).
type GRPCTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether TLS is configured for the gRPC listener.
func (t GRPCTLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Enabled reports whether HTTPS is configured.
func (t ServerTLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

func (c *ServerConfig) validate() (*url.URL, error) {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:4180"
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return nil, fmt.Errorf("server.listen %q: want host:port", c.Listen)
	}
	if c.Prefix == "" {
		c.Prefix = "/oauth2"
	}
	if !strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") || strings.ContainsAny(c.Prefix, "?#%;\\ ") {
		return nil, fmt.Errorf("server.prefix %q: want a path like /oauth2", c.Prefix)
	}
	defaults := []struct {
		d   *time.Duration
		def time.Duration
	}{{&c.ReadHeaderTimeout, 10 * time.Second}, {&c.ReadTimeout, 60 * time.Second}, {&c.IdleTimeout, 120 * time.Second}, {&c.ShutdownTimeout, 30 * time.Second}}
	for _, d := range defaults {
		if *d.d == 0 {
			*d.d = d.def
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"read_header_timeout", c.ReadHeaderTimeout}, {"read_timeout", c.ReadTimeout}, {"idle_timeout", c.IdleTimeout}, {"shutdown_timeout", c.ShutdownTimeout}, {"shutdown_delay", c.ShutdownDelay}} {
		if d.v < 0 {
			return nil, fmt.Errorf("server.%s %s: want a duration of 0 or more", d.name, d.v)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return nil, fmt.Errorf("server.tls: set both cert_file and key_file")
	}
	switch c.TLS.MinVersion {
	case "", "1.2", "1.3":
	default:
		return nil, fmt.Errorf("server.tls.min_version %q: want 1.2 or 1.3", c.TLS.MinVersion)
	}
	if c.TLS.RedirectHTTP != "" && !c.TLS.Enabled() {
		return nil, fmt.Errorf("server.tls.redirect_http needs cert_file and key_file")
	}
	if err := c.validateGRPC(); err != nil {
		return nil, err
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.PublicURL == "" {
		return nil, fmt.Errorf("server.public_url is required: the URL browsers use to reach the gateway, e.g. https://auth.example.com")
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("server.public_url %q: want scheme://host[:port] with no path", c.PublicURL)
	}
	u.Path = ""
	u.Host = strings.ToLower(u.Host)
	return u, nil
}

func (c *ServerConfig) validateGRPC() error {
	if c.GRPCListen != "" {
		if _, _, err := net.SplitHostPort(c.GRPCListen); err != nil {
			return fmt.Errorf("server.grpc_listen %q: want host:port", c.GRPCListen)
		}
	}
	switch {
	case (c.GRPCTLS.CertFile == "") != (c.GRPCTLS.KeyFile == ""):
		return fmt.Errorf("server.grpc_tls: set both cert_file and key_file")
	case c.GRPCTLS.Enabled() && c.GRPCListen == "":
		return fmt.Errorf("server.grpc_tls needs server.grpc_listen")
	}
	return nil
}

// HTTPServer returns the listener's http.Server with the hygiene settings:
// bounded header reads, idle keep-alives and header size.
func (c ServerConfig) HTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              c.Listen,
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
