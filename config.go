package main

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/proxy"
	"github.com/portcullis/portcullis/session"
)

// config is the whole configuration file. Each package owns and validates
// its section; main only reads the file, expands the environment and
// resolves *_file secrets.
type config struct {
	Server    proxy.ServerConfig     `yaml:"server"`
	Providers []providers.Config     `yaml:"providers"`
	Session   session.Config         `yaml:"session"`
	Upstreams []proxy.UpstreamConfig `yaml:"upstreams"`
	Policy    proxy.PolicyConfig     `yaml:"policy"`
	Headers   proxy.HeadersConfig    `yaml:"headers"`
	Bearer    providers.BearerConfig `yaml:"bearer"`
	Admin     proxy.AdminConfig      `yaml:"admin"`
	UI        proxy.UIConfig         `yaml:"ui"`
	Metrics   metricsConfig          `yaml:"metrics"`
	Assertion proxy.AssertionConfig  `yaml:"assertion"`
	Device    proxy.DeviceConfig     `yaml:"device"`
	Log       logConfig              `yaml:"log"`
	Tracing   tracingConfig          `yaml:"tracing"`
}

// proxy is the part of the configuration package proxy owns.
func (c *config) proxy() proxy.Config {
	return proxy.Config{Server: c.Server, Upstreams: c.Upstreams, Policy: c.Policy, Headers: c.Headers, UI: c.UI, Assertion: c.Assertion, Device: c.Device}
}

// known is what the route table must know of the other sections: the
// providers a route may pin, and whether bearer tokens can be verified.
func (c *config) known(bearer bool) proxy.Known {
	k := proxy.Known{Bearer: bearer, SessionLifetime: c.Session.Lifetime}
	if k.SessionLifetime <= 0 {
		k.SessionLifetime = session.DefaultLifetime
	}
	for _, p := range c.Providers {
		k.Providers = append(k.Providers, p.ID)
	}
	return k
}

// readFiles reads, in one step, every file the configuration names for
// its contents (CA bundles, the admin token, the authenticated emails
// file) and checks the TLS key pair, so that -check reports a missing or
// broken file with the others. The packages get contents, never paths to
// open. (Secrets given as *_file
// are read while parsing; certificates and the emails file are re-read
// when they change.)
func (c *config) readFiles(read func(string) ([]byte, error)) error {
	var errs []error
	for i := range c.Upstreams {
		tc := &c.Upstreams[i].TLS
		if tc.CAFile == "" {
			continue
		}
		var err error
		if tc.CAPEM, err = read(tc.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("upstreams: %s: tls.ca_file: %w", c.Upstreams[i].Path, err))
		}
	}
	for i := range c.Providers {
		pc := &c.Providers[i]
		if pc.CAFile == "" {
			continue
		}
		var err error
		if pc.CAPEM, err = read(pc.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("providers: %s: ca_file: %w", pc.ID, err))
		}
	}
	if f := c.Session.Redis.TLS.CAFile; f != "" {
		var err error
		if c.Session.Redis.TLS.CAPEM, err = read(f); err != nil {
			errs = append(errs, fmt.Errorf("session.redis.tls.ca_file: %w", err))
		}
	}
	if f := c.Policy.AuthenticatedEmailsFile; f != "" {
		var err error
		if c.Policy.AuthenticatedEmails, err = read(f); err != nil {
			errs = append(errs, fmt.Errorf("policy.authenticated_emails_file: %w", err))
		}
	}
	if t := c.Server.TLS; t.CertFile != "" && t.KeyFile != "" {
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			errs = append(errs, fmt.Errorf("server.tls: %w", err))
		}
	}
	errs = append(errs, c.readAdminToken(read))
	return errors.Join(errs...)
}

// readAdminToken reads admin.token_file into admin.Token.
func (c *config) readAdminToken(read func(string) ([]byte, error)) error {
	if c.Admin.Listen == "" || c.Admin.TokenFile == "" {
		return nil
	}
	b, err := read(c.Admin.TokenFile)
	if err != nil {
		return fmt.Errorf("admin.token_file: %w", err)
	}
	c.Admin.Token = string(b)
	return nil
}

// cookieWarnings are the session cookie settings that work, but not as
// intended.
func cookieWarnings(c *config) []string {
	secure := c.Session.Cookie.Secure == nil || *c.Session.Cookie.Secure
	switch {
	case !secure:
		return []string{"session.cookie.secure is false: cookies travel over plain http; use only for local development"}
	case strings.HasPrefix(c.Server.PublicURL, "http://") && !isLoopbackURL(c.Server.PublicURL):
		return []string{"session.cookie.secure is true but server.public_url is http: browsers will not store the cookies; serve https or set secure: false for development"}
	}
	return nil
}

func isLoopbackURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
}

// source is where configuration comes from; tests replace it.
type source struct {
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)
}

var osSource = source{lookupEnv: os.LookupEnv, readFile: os.ReadFile}

// loadConfig reads and decodes the file at path. Every problem found is
// reported, each prefixed with the file and line.
func loadConfig(path string, src source) (*config, error) {
	data, err := src.readFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return parseConfig(path, data, src)
}

func parseConfig(name string, data []byte, src source) (*config, error) {
	p := &preprocessor{name: name, src: src, secrets: secretKeys(typeOfConfig())}
	data = p.protectRefs(data)
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	cfg := &config{}
	if doc.Kind == 0 {
		return cfg, nil // empty file
	}
	p.expand(&doc, "")
	p.resolveFiles(&doc, "")
	p.checkKeys(&doc, reflect.TypeOf(cfg), "")
	if err := doc.Decode(cfg); err != nil {
		p.errs = append(p.errs, p.typeErrors(err)...)
	}
	noteExprPositions(&doc, name, data, &cfg.Policy)
	if len(p.errs) > 0 {
		return cfg, errors.Join(p.errs...)
	}
	return cfg, nil
}

func typeOfConfig() reflect.Type { return reflect.TypeFor[*config]() }

// noteExprPositions records where each policy expression starts in the
// file, so that an expression that does not compile is reported at its
// line.
func noteExprPositions(doc *yaml.Node, name string, data []byte, pol *proxy.PolicyConfig) {
	lines := strings.Split(string(data), "\n")
	at := func(n *yaml.Node) proxy.Pos {
		p := proxy.Pos{File: name, Line: n.Line, Block: n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0}
		if n.Style&yaml.FoldedStyle != 0 {
			// The folded lines, as long as they are in the file, until
			// they add up to the value.
			for i, total := n.Line, 0; i < len(lines) && total < len(n.Value); i++ {
				l := len(strings.TrimSpace(lines[i]))
				p.Folded = append(p.Folded, l)
				total += l + 1
			}
		}
		return p
	}
	if len(doc.Content) == 0 {
		return
	}
	policy := mappingValue(doc.Content[0], "policy")
	if policy == nil {
		return
	}
	if e := mappingValue(policy, "expr"); e != nil {
		pol.ExprAt = at(e)
	}
	routes := mappingValue(policy, "routes")
	if routes == nil || routes.Kind != yaml.SequenceNode {
		return
	}
	for i, rn := range routes.Content {
		if e := mappingValue(rn, "expr"); e != nil && i < len(pol.Routes) {
			pol.Routes[i].ExprAt = at(e)
		}
	}
}

// mappingValue is the value of key in mapping node n, nil if none.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

type preprocessor struct {
	name    string
	src     source
	secrets map[string]bool // yaml keys that may be given as <key>_file
	errs    []error

	// Environment references are swapped for inert placeholders before the
	// YAML is parsed, so `secrets: [${COOKIE_SECRET}]` parses (braces are
	// flow indicators) and so a value from the environment is never parsed
	// as YAML itself.
	marker string
	refs   []string // refs[i] is the reference placeholder i stands for
}

func (p *preprocessor) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s:%d: %s", p.name, n.Line, fmt.Sprintf(format, args...)))
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// envRef matches ${NAME} and ${NAME:-default}; $$ stands for a literal $.
var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// protectRefs replaces every environment reference in the raw file with a
// placeholder made of letters and digits, valid in any YAML scalar.
func (p *preprocessor) protectRefs(data []byte) []byte {
	var b [8]byte
	rand.Read(b[:])
	p.marker = "PORTCULLISENV" + hex.EncodeToString(b[:])
	return envRef.ReplaceAllFunc(data, func(ref []byte) []byte {
		p.refs = append(p.refs, string(ref))
		return []byte(p.marker + strconv.Itoa(len(p.refs)-1) + "X")
	})
}

// placeholder matches what protectRefs wrote.
func (p *preprocessor) placeholder() *regexp.Regexp {
	return regexp.MustCompile(p.marker + `([0-9]+)X`)
}

// expand puts the environment's values where the references were, in
// scalar values only (never in keys).
func (p *preprocessor) expand(n *yaml.Node, path string) {
	if len(p.refs) == 0 {
		return
	}
	p.expandWith(n, path, p.placeholder())
}

func (p *preprocessor) expandWith(n *yaml.Node, path string, ph *regexp.Regexp) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			p.expandWith(c, path, ph)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p.expandWith(n.Content[i+1], join(path, n.Content[i].Value), ph)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p.expandWith(c, path+"["+strconv.Itoa(i)+"]", ph)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, p.marker) {
			return
		}
		n.Value = ph.ReplaceAllStringFunc(n.Value, func(m string) string {
			i, _ := strconv.Atoi(ph.FindStringSubmatch(m)[1])
			return p.lookup(n, path, p.refs[i])
		})
		if n.Style == 0 {
			n.Tag = "" // plain scalars re-resolve: ${PORT} may be an int
		}
	}
}

// lookup resolves one reference.
func (p *preprocessor) lookup(n *yaml.Node, path, ref string) string {
	if ref == "$$" {
		return "$"
	}
	m := envRef.FindStringSubmatch(ref)
	if v, ok := p.src.lookupEnv(m[1]); ok && v != "" {
		return v
	}
	if m[2] != "" {
		return m[3]
	}
	p.errorf(n, "%s: environment variable %s is not set", path, m[1])
	return ""
}

// resolveFiles turns `<key>_file: PATH` into `<key>: <contents of PATH>`
// for secret keys (a list of paths for list-valued secrets).
func (p *preprocessor) resolveFiles(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			sub := path
			if n.Kind == yaml.SequenceNode {
				sub = path + "[" + strconv.Itoa(i) + "]"
			}
			p.resolveFiles(c, sub)
		}
		return
	case yaml.MappingNode:
	default:
		return
	}
	fromFile := map[*yaml.Node]bool{} // key nodes renamed from <key>_file
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		base, isFile := strings.CutSuffix(key.Value, "_file")
		if !isFile || !p.secrets[base] {
			p.resolveFiles(val, join(path, key.Value))
			continue
		}
		// The plain key may also be present, but only empty.
		for j := 0; j+1 < len(n.Content); j += 2 {
			if other := n.Content[j]; other.Value == base && !isEmpty(n.Content[j+1]) {
				p.errorf(key, "%s: set %s or %s, not both", path, base, key.Value)
			}
		}
		switch val.Kind {
		case yaml.ScalarNode:
			val.Value = p.readSecret(val, join(path, key.Value))
			val.Tag, val.Style = "!!str", 0
		case yaml.SequenceNode:
			for _, item := range val.Content {
				item.Value = p.readSecret(item, join(path, key.Value))
				item.Tag, item.Style = "!!str", 0
			}
		default:
			p.errorf(val, "%s: want a file path or a list of paths", join(path, key.Value))
		}
		key.Value = base
		fromFile[key] = true
	}
	if len(fromFile) == 0 {
		return
	}
	// Drop the empty plain keys that a *_file key replaced.
	replaced := map[string]bool{}
	for k := range fromFile {
		replaced[k.Value] = true
	}
	out := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if replaced[k.Value] && !fromFile[k] && isEmpty(v) {
			continue
		}
		out = append(out, k, v)
	}
	n.Content = out
}

func isEmpty(n *yaml.Node) bool {
	return (n.Kind == yaml.ScalarNode && (n.Value == "" || n.Tag == "!!null")) || (n.Kind == yaml.SequenceNode && len(n.Content) == 0)
}

func (p *preprocessor) readSecret(n *yaml.Node, path string) string {
	if n.Value == "" {
		p.errorf(n, "%s: empty file path", path)
		return ""
	}
	b, err := p.src.readFile(n.Value)
	if err != nil {
		p.errorf(n, "%s: %v", path, err)
		return ""
	}
	return strings.TrimRight(string(b), "\r\n")
}

// checkKeys reports every key that no field of t takes, with its line: a
// typo must not silently leave a default in force.
func (p *preprocessor) checkKeys(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			p.checkKeys(c, t, path)
		}
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		p.checkKeys(n.Alias, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode || t.String() == "time.Time" {
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i]
			if key.Value == "<<" {
				p.checkKeys(n.Content[i+1], t, path)
				continue
			}
			ft, ok := fields[key.Value]
			if !ok {
				p.errorf(key, "unknown key %q in %s%s", key.Value, sectionName(path), suggest(key.Value, fields))
				continue
			}
			p.checkKeys(n.Content[i+1], ft, join(path, key.Value))
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				p.checkKeys(c, t.Elem(), path+"["+strconv.Itoa(i)+"]")
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				p.checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
			}
		}
	}
}

func sectionName(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

// yamlFields maps the yaml keys of struct t to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// secretKeys collects the yaml names of fields tagged secret:"true".
func secretKeys(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	var walk func(reflect.Type, int)
	walk = func(t reflect.Type, depth int) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || depth > 8 {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if f.Tag.Get("secret") == "true" && name != "" {
				out[name] = true
			}
			walk(f.Type, depth+1)
		}
	}
	walk(t, 0)
	return out
}

// suggest names the closest known key, for typos.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return " (known keys: " + strings.Join(names, ", ") + ")"
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// typeErrors splits yaml's "cannot unmarshal" list into one error per line.
func (p *preprocessor) typeErrors(err error) []error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return []error{fmt.Errorf("%s: %v", p.name, err)}
	}
	out := make([]error, 0, len(te.Errors))
	for _, e := range te.Errors {
		msg := strings.TrimPrefix(e, "line ")
		if line, rest, ok := strings.Cut(msg, ": "); ok {
			out = append(out, fmt.Errorf("%s:%s: %s", p.name, line, rest))
		} else {
			out = append(out, fmt.Errorf("%s: %s", p.name, e))
		}
	}
	return out
}
