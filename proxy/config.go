package proxy

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// config.go turns the sections package proxy owns into Settings: every
// default filled here once, every rule checked, the route table compiled.
// It needs no collaborator, so `portcullis -check` validates without
// building a session store, and `portcullis policy test` decides with the
// very table the gateway serves with.

// Config is the part of the configuration package proxy owns.
type Config struct {
	Server    ServerConfig
	Upstreams []UpstreamConfig
	Policy    PolicyConfig
	Headers   HeadersConfig
	UI        UIConfig
	Assertion AssertionConfig
	Device    DeviceConfig
}

// Settings is a validated Config, what New builds a Handler from.
// Immutable.
type Settings struct {
	cfg       Config // defaults filled
	public    *url.URL
	redirects *redirectPolicy
	routes    *Routes
	trusted   trustedProxies
	pages     pages    // the page set, ui.templates_dir applied
	hsts      []string // Strict-Transport-Security value, nil for none
	// assertionHeaders are the headers upstreams and forward-auth answers
	// carry signed assertions in; clients may never send them.
	assertionHeaders []string
}

// Validate fills the defaults, checks every rule of every section proxy
// owns and compiles the route table, reporting every problem at once.
// known says what other sections provide. The only I/O is reading
// ui.templates_dir, so that -check tries the page overrides too.
func (c Config) Validate(known Known) (*Settings, error) {
	s := &Settings{}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	s.public, err = c.Server.validate()
	add(err)
	if hsts, err := c.Server.HSTS.header(s.public); err != nil {
		add(err)
	} else if hsts != "" {
		s.hsts = []string{hsts}
	}
	if s.public != nil {
		hosts, err := redirectHosts(c.Server.AllowedRedirectHosts, c.Server.WhitelistDomains)
		add(err)
		if err == nil {
			s.redirects, err = newRedirectPolicy(s.public, hosts)
			add(err)
		}
	}
	add(c.Headers.validate())
	add(c.Device.validate(known.SessionLifetime))
	s.routes, err = compileRoutes(c.Upstreams, c.Policy, c.Server.Prefix, known)
	add(err)
	// The signed identity assertion is on by default (RFC 7519 JWT): every
	// upstream receives it in assertion.header unless it names its own
	// header or sets assertion.disabled.
	add(c.Assertion.validate())
	s.assertionHeaders = []string{c.Assertion.Header}
	if s.routes != nil {
		c.Upstreams = s.routes.ups // with their defaults
		for i := range c.Upstreams {
			a := &c.Upstreams[i].Assertion
			if !a.Disabled && a.Header == "" {
				a.Header = c.Assertion.Header
			}
			if a.Header != "" {
				s.assertionHeaders = append(s.assertionHeaders, a.Header)
			}
		}
	}
	if imgSrc, err := logoSource(c.UI.LogoURL); err != nil {
		add(err)
	} else {
		s.pages, err = newPages(c.UI, imgSrc, nil)
		add(err)
	}
	s.trusted, err = parseTrustedProxies(c.Server.TrustedProxies)
	add(err)
	c.Server.RealClientIPHeader, err = realClientIPHeader(c.Server.RealClientIPHeader)
	add(err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.cfg = c
	return s, nil
}

// Server returns the server section with its defaults filled in.
func (s *Settings) Server() ServerConfig { return s.cfg.Server }

// Routes returns the compiled route table.
func (s *Settings) Routes() *Routes { return s.routes }

// EmailsFile is policy.authenticated_emails_file, for main to keep
// current; nil when none is configured.
func (s *Settings) EmailsFile() *EmailsFile { return s.routes.emails }

// Warnings lists configuration that is valid but probably not intended.
func (s *Settings) Warnings() []string {
	var w []string
	if len(s.routes.ups) == 0 {
		w = append(w, "no upstreams: serving forward-auth only (/oauth2/auth); other requests get 404")
	}
	if s.routes.denies() {
		w = append(w, "policy admits nobody: set policy.email_domains, emails or groups (\"*\" admits every signed-in user)")
	}
	if len(s.routes.trusted) > 0 {
		ranges := make([]string, len(s.routes.trusted))
		for i, p := range s.routes.trusted {
			ranges[i] = p.String()
		}
		w = append(w, "policy.trusted_ips bypasses authentication: requests from "+strings.Join(ranges, ", ")+" pass without sign-in and reach upstreams without identity")
	}
	if s.public.Scheme != "https" {
		w = append(w, "server.public_url is plain http: use https outside local development")
	}
	if hc := s.cfg.Server.HSTS; s.public.Scheme != "https" && (hc.IncludeSubDomains || hc.Preload) {
		w = append(w, "server.hsts has no effect: public_url is plain http, and browsers ignore Strict-Transport-Security over http")
	}
	return w
}

// keepAccess reports whether anything sends the access token on: then
// sessions keep it.
func (s *Settings) keepAccess() bool {
	if s.cfg.Headers.AuthRequestAccessToken || s.cfg.Headers.AuthRequestAuthorization {
		return true
	}
	for _, uc := range s.cfg.Upstreams {
		if uc.PassAccessToken || uc.PassAccessTokenBearer {
			return true
		}
	}
	return false
}

// passIDToken reports whether some upstream receives the ID token
// (pass_authorization_header): then sessions keep it, whatever the
// provider's logout needs.
func (s *Settings) passIDToken() bool {
	for _, uc := range s.cfg.Upstreams {
		if uc.PassAuthorizationHeader {
			return true
		}
	}
	return false
}

// redirectHosts merges server.allowed_redirect_hosts and its oauth2-proxy
// name, server.whitelist_domains, into the redirect policy's entries.
// oauth2-proxy's "*.example.com" is ".example.com" here (strict
// subdomains); its any-port ":*" has no equivalent and is refused, as is
// every entry allowed_redirect_hosts refuses.
func redirectHosts(allowed, whitelist []string) ([]string, error) {
	out := append([]string(nil), allowed...)
	var errs []error
	for _, e := range whitelist {
		v := strings.TrimSpace(e)
		if rest, ok := strings.CutPrefix(v, "*."); ok {
			v = "." + rest
		}
		if strings.HasSuffix(v, ":*") {
			errs = append(errs, fmt.Errorf("server.whitelist_domains %q: any-port wildcards are not supported; list each host:port", e))
			continue
		}
		if _, err := redirectParseEntry(v); err != nil {
			errs = append(errs, fmt.Errorf("server.whitelist_domains %q: %w", e, err))
			continue
		}
		out = append(out, v)
	}
	return out, errors.Join(errs...)
}

func (c *HeadersConfig) validate() error {
	if c.PassUserHeaders == nil {
		yes := true
		c.PassUserHeaders = &yes
	}
	switch c.User {
	case "":
		c.User = "subject"
	case "subject", "preferred_username", "email":
	default:
		return fmt.Errorf("headers.user %q: want subject, preferred_username or email", c.User)
	}
	return nil
}
