package main

import (
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/proxy"
	"github.com/portcullis/portcullis/session"
)

// policyCase is one entry of a `portcullis policy test` file.
type policyCase struct {
	Name     string        `yaml:"name"`
	Identity *caseIdentity `yaml:"identity"` // absent: not signed in
	Request  caseRequest   `yaml:"request"`
	// Expect is allow, deny (403, or a request the gateway refuses with
	// 400), sign_in (not signed in, or not with the provider the route
	// pins) or not_found (no upstream serves it); empty only prints.
	Expect string `yaml:"expect"`
}

type caseIdentity struct {
	Subject           string              `yaml:"subject"`
	Issuer            string              `yaml:"issuer"` // default "policy-test"
	Name              string              `yaml:"name"`
	PreferredUsername string              `yaml:"preferred_username"`
	Email             string              `yaml:"email"`
	EmailVerified     *bool               `yaml:"email_verified"` // default true when an email is given
	Groups            []string            `yaml:"groups"`
	Claims            map[string][]string `yaml:"claims"`
	// Provider is the provider the user signed in with; default the first
	// one configured.
	Provider string `yaml:"provider"`
	// Bearer says the identity came from an Authorization: Bearer token
	// rather than a session (pinned providers then do not apply); Device,
	// from a token of the device grant.
	Bearer bool `yaml:"bearer"`
	Device bool `yaml:"device"`
}

type caseRequest struct {
	Method string `yaml:"method"` // default GET
	Host   string `yaml:"host"`   // default the host of server.public_url
	Path   string `yaml:"path"`   // as a client sends it, escaped, with its query if any
	// Mode is proxy (reverse proxy: an upstream must serve the request;
	// the default when upstreams are configured) or auth (forward-auth).
	Mode string `yaml:"mode"`
	// ClientIP is the client's address, for policy.trusted_ips (as the
	// gateway finds it: the peer, or behind trusted proxies the right-most
	// untrusted X-Forwarded-For entry). Empty: unknown.
	// SourceIP is the same, by the name expressions use
	// (request.source_ip); give one or the other.
	ClientIP string `yaml:"client_ip"`
	SourceIP string `yaml:"source_ip"`
	// Time is when the request is made (RFC 3339, such as
	// 2026-12-07T22:30:00+01:00), for hours: and now; default the moment
	// the case runs.
	Time string `yaml:"time"`
	// Headers are request headers, for request.headers.
	Headers map[string]string `yaml:"headers"`
}

var expectations = []string{"allow", "deny", "sign_in", "not_found"}

// runPolicyTest is `portcullis policy test -config FILE CASES`: it decides
// every case with the gateway's own route table and decision, prints the
// verdict and what decided, and exits 1 when a case's expect is not met.
func runPolicyTest(args []string, stdout, stderr io.Writer) int {
	fs, configPath := policyFlags("test", "CASES.yaml", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" || fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	routes, cfg, cases, err := policyInputs(*configPath, fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	failed := 0
	for i, c := range cases {
		name := c.Name
		if name == "" {
			name = fmt.Sprintf("case %d", i+1)
		}
		verdict, rule := decideCase(routes, cfg, c)
		mark := ""
		if c.Expect != "" && c.Expect != verdict {
			mark = "  FAIL: expected " + c.Expect
			failed++
		}
		fmt.Fprintf(tw, "%-6s %s\t%s%s\n", strings.ToUpper(verdict), name, rule, mark)
	}
	tw.Flush()
	if failed > 0 {
		fmt.Fprintf(stdout, "%d of %d cases failed\n", failed, len(cases))
		return 1
	}
	fmt.Fprintf(stdout, "%d cases, all as expected\n", len(cases))
	return 0
}

// runPolicyExplain is `portcullis policy explain -config FILE CASES
// [NAME]`: for one case (the one named, or the file's only one) it prints
// every rule considered, why it applied or not, each part of the
// governing rule and the decision. It exits 1 when the case's expect is
// not met, like policy test.
func runPolicyExplain(args []string, stdout, stderr io.Writer) int {
	fs, configPath := policyFlags("explain", "CASES.yaml [CASE NAME or NUMBER]", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" || fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return 2
	}
	routes, cfg, cases, err := policyInputs(*configPath, fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	c, err := pickCase(cases, fs.Arg(1))
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 2
	}
	fmt.Fprintf(stdout, "case: %s\n", cmp.Or(c.Name, "(unnamed)"))
	t, err := caseTarget(routes, cfg, c)
	if err != nil {
		fmt.Fprintf(stdout, "the gateway refuses the request: %v\ndecision: DENY\n", err)
		return expectMet(stdout, c.Expect, "deny")
	}
	s, via := c.Identity.session(cfg)
	for _, line := range routes.Explain(t, s, via) {
		fmt.Fprintln(stdout, line)
	}
	return expectMet(stdout, c.Expect, routes.Decide(t, s, via).Outcome.String())
}

// pickCase is the case named (or numbered from 1) by which, or the only
// case when which is empty.
func pickCase(cases []policyCase, which string) (policyCase, error) {
	if which == "" {
		if len(cases) != 1 {
			return policyCase{}, fmt.Errorf("the file has %d cases: name one (or give its number)", len(cases))
		}
		return cases[0], nil
	}
	for i, c := range cases {
		if c.Name == which || fmt.Sprint(i+1) == which {
			return c, nil
		}
	}
	return policyCase{}, fmt.Errorf("no case is named %q", which)
}

// expectMet prints whether verdict meets expect and is the exit code.
func expectMet(w io.Writer, expect, verdict string) int {
	if expect != "" && expect != verdict {
		fmt.Fprintf(w, "FAIL: expected %s\n", expect)
		return 1
	}
	return 0
}

// policyFlags are the flags of `portcullis policy <cmd>`: -config.
func policyFlags(cmd, args string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("portcullis policy "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (YAML)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: portcullis policy %s -config FILE %s\n", cmd, args)
		fs.PrintDefaults()
	}
	return fs, configPath
}

// policyInputs is what policy test and explain read: the configuration's
// route table and the cases.
func policyInputs(configPath, casesPath string) (*proxy.Routes, *config, []policyCase, error) {
	routes, cfg, err := policyRoutes(configPath)
	if err != nil {
		return nil, nil, nil, err
	}
	cases, err := readPolicyCases(casesPath)
	return routes, cfg, cases, err
}

// policyRoutes validates the configuration's routing and policy as the
// gateway does and returns its route table. Only the configuration file is
// read: secrets become placeholders and no certificate is opened.
func policyRoutes(path string) (*proxy.Routes, *config, error) {
	cfg, err := loadConfig(path, policySource(path))
	if err != nil {
		return nil, nil, err
	}
	for i := range cfg.Upstreams {
		cfg.Upstreams[i].TLS.CAFile = "" // its contents decide nothing
	}
	if f := cfg.Policy.AuthenticatedEmailsFile; f != "" {
		// Its addresses decide: read it as the gateway would.
		if cfg.Policy.AuthenticatedEmails, err = os.ReadFile(f); err != nil {
			return nil, nil, fmt.Errorf("policy.authenticated_emails_file: %w", err)
		}
	}
	bearer, err := providers.NewBearerVerifier(cfg.Bearer, cfg.Providers, providers.Options{})
	if err != nil {
		return nil, nil, err
	}
	s, err := cfg.proxy().Validate(cfg.known(bearer != nil))
	if err != nil {
		return nil, nil, err
	}
	return s.Routes(), cfg, nil
}

// decideCase is the gateway's verdict on one case and what decided it.
func decideCase(routes *proxy.Routes, cfg *config, c policyCase) (verdict, rule string) {
	t, err := caseTarget(routes, cfg, c)
	if err != nil {
		return "deny", err.Error()
	}
	s, via := c.Identity.session(cfg)
	d := routes.Decide(t, s, via)
	return d.Outcome.String(), d.Rule()
}

// caseTarget is the request of a case as the gateway would see it. A
// request the gateway refuses with 400 is an error saying so.
func caseTarget(routes *proxy.Routes, cfg *config, c policyCase) (proxy.Target, error) {
	r := c.Request
	host := r.Host
	if host == "" {
		if u, err := url.Parse(cfg.Server.PublicURL); err == nil {
			host = u.Host
		}
	}
	proxied := len(cfg.Upstreams) > 0
	switch r.Mode {
	case "auth":
		proxied = false
	case "proxy":
		proxied = true
	}
	path, query, _ := strings.Cut(r.Path, "?")
	t, err := routes.ParseTarget(strings.ToUpper(r.Method), host, path, proxied)
	if err != nil {
		return t, fmt.Errorf("400: %w", err)
	}
	t.Query = query
	if ip := cmp.Or(r.SourceIP, r.ClientIP); ip != "" {
		if t.Client, err = netip.ParseAddr(ip); err != nil {
			return t, fmt.Errorf("source_ip: %w", err)
		}
	}
	t.Time = time.Now()
	if r.Time != "" {
		if t.Time, err = time.Parse(time.RFC3339, r.Time); err != nil {
			return t, fmt.Errorf("time: %w", err)
		}
	}
	t.Header = http.Header{}
	for k, v := range r.Headers {
		t.Header.Set(k, v)
	}
	return t, nil
}

// session is the case's identity as a session of the gateway's.
func (c *caseIdentity) session(cfg *config) (*session.Session, proxy.Via) {
	if c == nil {
		return nil, proxy.ViaSession
	}
	s := &session.Session{
		Identity: session.Identity{Issuer: cmp.Or(c.Issuer, "policy-test"), Subject: c.Subject, Name: c.Name, PreferredUsername: c.PreferredUsername,
			Email: c.Email, Groups: c.Groups, Claims: c.Claims},
		Provider: c.Provider,
	}
	if s.Subject == "" {
		s.Subject = "policy-test-user"
	}
	if s.Provider == "" && len(cfg.Providers) > 0 {
		s.Provider = cfg.Providers[0].ID
	}
	s.EmailVerified = c.Email != "" && (c.EmailVerified == nil || *c.EmailVerified)
	switch {
	case c.Bearer:
		return s, proxy.ViaBearer
	case c.Device:
		return s, proxy.ViaDevice
	}
	return s, proxy.ViaSession
}

// readPolicyCases reads a YAML (or JSON) list of cases, strictly.
func readPolicyCases(path string) ([]policyCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var cases []policyCase
	if err := dec.Decode(&cases); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	for i, c := range cases {
		if c.Expect != "" && !slices.Contains(expectations, c.Expect) {
			return nil, fmt.Errorf("%s: case %d: expect %q: want allow, deny, sign_in or not_found", path, i+1, c.Expect)
		}
		if c.Request.Path == "" {
			return nil, fmt.Errorf("%s: case %d: request.path is required", path, i+1)
		}
		if m := c.Request.Mode; m != "" && m != "proxy" && m != "auth" {
			return nil, fmt.Errorf("%s: case %d: request.mode %q: want proxy or auth", path, i+1, m)
		}
		if c.Request.ClientIP != "" && c.Request.SourceIP != "" {
			return nil, fmt.Errorf("%s: case %d: give request.source_ip or request.client_ip, not both", path, i+1)
		}
		if c.Identity != nil && c.Identity.Bearer && c.Identity.Device {
			return nil, fmt.Errorf("%s: case %d: an identity comes from a bearer token or a device token, not both", path, i+1)
		}
	}
	return cases, nil
}

// policySource reads the configuration file itself and nothing else:
// environment variables and secret files become placeholders.
func policySource(configPath string) source {
	return source{
		lookupEnv: func(name string) (string, bool) {
			if v, ok := os.LookupEnv(name); ok && v != "" {
				return v, true
			}
			return "policy-test-placeholder", true
		},
		readFile: func(p string) ([]byte, error) {
			if p == configPath {
				return os.ReadFile(p)
			}
			return []byte("policy-test-placeholder"), nil
		},
	}
}
