package main

import (
	"bytes"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateMigrateDocs = flag.Bool("update-migrate-docs", false, "rewrite the option table in docs/migrating-from-oauth2-proxy.md")

// fixtureLines reads a fixture of one entry a line, without comments.
func fixtureLines(t *testing.T, name string) []string {
	t.Helper()
	if name == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join("testdata/migrate", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func fixturePath(name string) string {
	if name == "" {
		return ""
	}
	return filepath.Join("testdata/migrate", name)
}

type migrateCase struct {
	name                  string
	cfg, alpha, args, env string // fixtures
	want                  []string
	absent                []string
	noEquivalent          []string // each is in the "no equivalent" list, which has no others
	changed               []string // each is in the "changed in meaning" list
}

var migrateCases = []migrateCase{
	{
		name: "helm values TOML", cfg: "helm-values.cfg", env: "helm-values.env",
		want: []string{
			"type: keycloak # from provider in helm-values.cfg (keycloak-oidc)",
			"client_secret: ${OAUTH2_PROXY_CLIENT_SECRET} # from OAUTH2_PROXY_CLIENT_SECRET (not copied)",
			"public_url: https://grafana.acme.test # from redirect_url",
			"trusted_proxies: [127.0.0.1/32] # PLACEHOLDER",
			"groups: [/grafana-admins, /sre]",
			"url: redis://oauth2-proxy-redis-master.auth.svc:6379/0",
			"name: oauth2_proxy # from cookie_name in helm-values.cfg without its prefix",
			"auth_request_access_token: true",
			"allowed_redirect_hosts: [.acme.test]",
			"set_xauthrequest: true # from set_xauthrequest",
		},
		absent:       []string{"email_domains", "from-the-helm-secret"},
		noEquivalent: []string{"silence_ping_logging"},
	},
	{
		name: "docker-compose env file", env: "compose.env",
		want: []string{
			"type: github # from OAUTH2_PROXY_PROVIDER (github)",
			"teams: [acme-corp/wiki-editors, acme-corp/platform]",
			"email_domains: ['*'] # from OAUTH2_PROXY_EMAIL_DOMAINS: \"*\" admits every signed-in user",
			"listen: 0.0.0.0:4180",
			"- path: /api/",
			"url: http://wiki-api:8080",
			"pass_host_header: false",
			"addrs: ['redis:6380']",
			"db: 2",
			"enabled: true # from OAUTH2_PROXY_REDIS_CONNECTION_URL (rediss://)",
			"password: ${OAUTH2_PROXY_REDIS_PASSWORD}",
			"domain: wiki.acme.test",
			"listen: 0.0.0.0:9180",
			"pass_authorization_header: true # from OAUTH2_PROXY_PASS_AUTHORIZATION_HEADER",
			"skip_auth_routes: [GET=^/healthz$, GET=^/static/] # from OAUTH2_PROXY_SKIP_AUTH_ROUTES",
		},
		absent:       []string{"hunter2", "0123456789abcdef", "8p3hQk0d"},
		noEquivalent: []string{},
	},
	{
		name: "ingress-nginx flags", args: "ingress-nginx.args",
		want: []string{
			"type: google # from --provider (google)",
			"client_secret_file: /etc/oauth2-proxy/client-secret",
			"email_domains: [acme.test, .eu.acme.test]",
			"domain: .acme.test",
			"allowed_redirect_hosts: [.acme.test, grafana.acme.test]",
			"lifetime: 168h # from --cookie-expire=720h; Portcullis allows at most 168h",
			"public_url: https://auth.acme.test",
		},
		changed: []string{"--upstream: upstream static://202 (forward-auth only)"},
		absent:  []string{"upstreams:", "aGVsbG8td29ybGQ", "insecure"},
		noEquivalent: []string{
			"--ssl-insecure-skip-verify: refused",
		},
	},
	{
		name: "alpha YAML", cfg: "alpha.cfg", alpha: "alpha.yaml",
		want: []string{
			"- id: dex",
			"client_secret_file: /run/secrets/dex-client-secret",
			"user_claim: email",
			"- id: okta",
			"client_secret: ${OAUTH2_PROXY_OKTA_CLIENT_SECRET}",
			"audiences: ['api://gateway']",
			"groups: [engineering]",
			"- path: /docs/",
			"url: https://docs.internal:8443",
			"pass_access_token: true # from alpha.yaml: injectRequestHeaders: X-Forwarded-Access-Token",
			"listen: 127.0.0.1:9180 # from alpha.yaml: metricsServer.bindAddress",
		},
		absent: []string{"not-a-real-okta-secret", "maintenance"},
		noEquivalent: []string{
			"upstreams[1].insecureSkipTLSVerify: refused",
			"upstreams[2]: a static response",
			"injectRequestHeaders: X-Tenant",
			"injectResponseHeaders: Authorization",
		},
	},
}

// migratedSource reads every variable and file the migrated
// configurations name as plausible contents.
func migratedSource(t *testing.T) source {
	certPEM, keyPEM := docsKeyMaterial(t)
	return source{
		lookupEnv: func(name string) (string, bool) {
			if name == cookieSecretVar {
				return randomBase64(32), true
			}
			return "migrated-secret", true
		},
		readFile: func(path string) ([]byte, error) {
			switch {
			case strings.HasSuffix(path, ".key"):
				return keyPEM, nil
			case strings.HasSuffix(path, ".pem"), strings.HasSuffix(path, ".crt"):
				return certPEM, nil
			case strings.HasSuffix(path, "emails.txt"):
				return []byte("# the fixtures' emails file\nalice@example.com\n"), nil
			}
			return []byte("migrated-secret\n"), nil
		},
	}
}

// checkMigrated loads out with the real loader and validates it as
// -check does.
func checkMigrated(t *testing.T, out []byte) {
	t.Helper()
	src := migratedSource(t)
	// The gateway's own certificate is read from disk, not through src.
	dir := t.TempDir()
	certPEM, keyPEM := docsKeyMaterial(t)
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
		out = bytes.ReplaceAll(out, []byte("/etc/tls/"+name), []byte(filepath.Join(dir, name)))
	}
	cfg, err := parseConfig("the migrated configuration", out, src)
	if err == nil {
		err = cfg.readFiles(src.readFile)
	}
	if err == nil {
		_, err = build(cfg, slog.New(slog.DiscardHandler), buildOptions{validateOnly: true})
	}
	if err != nil {
		t.Fatalf("the migrated configuration is not valid:\n%v\n%s", err, out)
	}
}

func runMigrateCase(t *testing.T, c migrateCase) *migration {
	t.Helper()
	m, err := migrate(migrateInput{
		ConfigPath: fixturePath(c.cfg), AlphaPath: fixturePath(c.alpha),
		Args: fixtureLines(t, c.args), Environ: fixtureLines(t, c.env), ReadFile: os.ReadFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMigrateFixtures(t *testing.T) {
	for _, c := range migrateCases {
		t.Run(c.name, func(t *testing.T) {
			m := runMigrateCase(t, c)
			out := m.render()
			checkMigrated(t, out)
			for _, w := range c.want {
				if !bytes.Contains(out, []byte(w)) {
					t.Errorf("output lacks %q", w)
				}
			}
			body := out[:len(out)-len(m.reportText("# "))]
			for _, a := range c.absent {
				if bytes.Contains(body, []byte(a)) {
					t.Errorf("output contains %q", a)
				}
			}
			checkNoEquivalent(t, m, c.noEquivalent)
			for _, w := range c.changed {
				if !strings.Contains(m.reportText(""), w) {
					t.Errorf("the changed list lacks %q", w)
				}
			}
		})
	}
}

func checkNoEquivalent(t *testing.T, m *migration, want []string) {
	t.Helper()
	var got []string
	for _, n := range m.notes {
		if n.kind == noteNoEquivalent {
			got = append(got, n.opt+": "+n.text)
		}
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.Contains(g, w)
		}
		if !found {
			t.Errorf("no-equivalent list lacks %q; it is:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if len(got) != len(want) {
		t.Errorf("no-equivalent list has %d entries, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}

// TestMigrateEveryOption converts the fixture that sets every option of
// oauth2-proxy's reference: each is known, the output is valid, no secret
// is copied, and the table's coverage is reported.
func TestMigrateEveryOption(t *testing.T) {
	c := migrateCase{cfg: "every-option.cfg"}
	raw, err := os.ReadFile(fixturePath(c.cfg))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range optionTable {
		if !strings.Contains(string(raw), "\n"+o.toml+" = ") {
			t.Errorf("every-option.cfg does not set %s", o.toml)
		}
	}
	m := runMigrateCase(t, c)
	out := m.render()
	checkMigrated(t, out)
	for _, n := range m.notes {
		if strings.Contains(n.text, "not an oauth2-proxy option") {
			t.Errorf("%s: %s", n.opt, n.text)
		}
	}
	for _, o := range optionTable {
		if v := m.opts[o.toml].str(); o.secret && bytes.Contains(out, []byte(v)) {
			t.Errorf("the output copies the secret of %s", o.toml)
		}
	}
	for _, w := range []string{
		"insecure_skip_verify",                              // refused
		"client_secret_file",                                // client_secret wins, as in oauth2-proxy
		"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=",      // the cookie secret
		"sentinel_password", "master_name", "cluster: true", // sentinel and cluster are off
	} {
		if body := out[:len(out)-len(m.reportText("# "))]; bytes.Contains(body, []byte(w)) {
			t.Errorf("output contains %q", w)
		}
	}
	counts := map[coverage]int{}
	for _, o := range optionTable {
		counts[o.cov]++
	}
	t.Logf("oauth2-proxy options: %d; mapped %d, mapped with a warning %d, no equivalent %d",
		len(optionTable), counts[covMapped], counts[covWarned], counts[covUnsupported])
	t.Logf("every-option.cfg: no equivalent %d, changed %d, manual steps %d",
		m.count(noteNoEquivalent), m.count(noteChanged), m.count(noteManual))
	if counts[covMapped]+counts[covWarned] < 60 {
		t.Errorf("only %d options mapped", counts[covMapped]+counts[covWarned])
	}
}

// TestMigrateTable checks the table's rows: unique names, a key for every
// mapped row and none for the others, a note where the row warns.
func TestMigrateTable(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range optionTable {
		if seen[o.flag] || seen[o.toml] {
			t.Errorf("%s is in the table twice", o.flag)
		}
		seen[o.flag], seen[o.toml] = true, true
		switch {
		case o.cov == covUnsupported && o.key != "":
			t.Errorf("%s has no equivalent but names key %s", o.flag, o.key)
		case o.cov == covMapped && o.key == "" && o.conv == nil:
			t.Errorf("%s is mapped to nothing", o.flag)
		case o.cov != covMapped && o.note == "":
			t.Errorf("%s needs a note", o.flag)
		}
		if optionByName(o.flag) != &optionTable[indexOf(o.flag)] {
			t.Errorf("optionByName(%q) finds another row", o.flag)
		}
	}
}

func indexOf(flag string) int {
	for i, o := range optionTable {
		if o.flag == flag {
			return i
		}
	}
	return -1
}

// TestMigratePrecedence: flags over variables over the config file.
func TestMigratePrecedence(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "o.cfg")
	if err := os.WriteFile(cfg, []byte("client_id = \"from-file\"\nemail_domains = [\"file.test\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"file", nil, nil, "client_id: from-file"},
		{"env over file", []string{"OAUTH2_PROXY_CLIENT_ID=from-env"}, nil, "client_id: from-env"},
		{"flag over env", []string{"OAUTH2_PROXY_CLIENT_ID=from-env"}, []string{"--client-id", "from-flag"}, "client_id: from-flag"},
		{"list from env", []string{"OAUTH2_PROXY_EMAIL_DOMAINS=a.test,b.test"}, nil, "email_domains: [a.test, b.test]"},
		{"repeated flag", nil, []string{"--email-domain=c.test", "--email-domain", "d.test"}, "email_domains: [c.test, d.test]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := migrate(migrateInput{ConfigPath: cfg, Args: tt.args, Environ: tt.env, ReadFile: os.ReadFile})
			if err != nil {
				t.Fatal(err)
			}
			if out := m.render(); !bytes.Contains(out, []byte(tt.want)) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}

// TestMigrateNarrowsPolicy: oauth2-proxy required the email domain AND
// the group; Portcullis admits on either, so neither is written.
func TestMigrateNarrowsPolicy(t *testing.T) {
	m, err := migrate(migrateInput{Args: []string{"--provider=oidc", "--email-domain=acme.test", "--allowed-group=admins"}, ReadFile: os.ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	out := m.render()
	if !bytes.Contains(out, []byte("groups: [] # NOT MIGRATED")) || bytes.Contains(out, []byte("email_domains:")) {
		t.Errorf("policy should admit nobody:\n%s", out)
	}
	if m.count(noteManual) < 2 {
		t.Errorf("want a manual step for the policy:\n%s", m.reportText(""))
	}
}

// TestMigrateExitStatus runs the subcommand: 0 with a config, 1 on
// unreadable input, 2 with -strict when something has no equivalent.
func TestMigrateExitStatus(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.cfg")
	if err := os.WriteFile(bad, []byte("provider = \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(dir, "portcullis.yaml")
	for _, tt := range []struct {
		name string
		args []string
		want int
	}{
		{"writes", []string{"-config", fixturePath("helm-values.cfg")}, 0},
		{"strict", []string{"-strict", "-config", fixturePath("helm-values.cfg")}, 2},
		{"strict, all mapped", []string{"-strict", "--", "--provider=oidc", "--email-domain=*"}, 0},
		{"missing file", []string{"-config", filepath.Join(dir, "nope.cfg")}, 1},
		{"not TOML", []string{"-config", bad}, 1},
		{"unknown flag", []string{"--", "--no-such-flag=1"}, 1},
		{"to a file", []string{"-o", outFile, "-config", fixturePath("helm-values.cfg")}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(append([]string{"migrate"}, tt.args...), &stdout, &stderr); got != tt.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", got, tt.want, stderr.String())
			}
		})
	}
	fi, err := os.Stat(outFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("-o wrote mode %v, want 0600", fi.Mode().Perm())
	}
}

// docsMigrating is the page whose option table TestMigrateDocs keeps in
// step with optionTable.
const docsMigrating = "docs/migrating-from-oauth2-proxy.md"

const (
	tableBegin = "<!-- BEGIN option table: generated from optionTable (migrate_table.go) by TestMigrateDocs; go test -run TestMigrateDocs -update-migrate-docs . -->\n"
	tableEnd   = "<!-- END option table -->\n"
)

// migrateDocsTable renders optionTable as Markdown.
func migrateDocsTable() string {
	var b strings.Builder
	counts := map[coverage]int{}
	for _, o := range optionTable {
		counts[o.cov]++
	}
	b.WriteString("| oauth2-proxy flag | config file / `OAUTH2_PROXY_…` | Portcullis | Status | Note |\n|---|---|---|---|---|\n")
	for _, o := range optionTable {
		key := "—"
		if o.key != "" {
			key = "`" + o.key + "`"
		}
		status := o.cov.String()
		note := strings.ReplaceAll(o.note, "|", "\\|")
		if o.secret {
			note = strings.TrimPrefix(note+"; never copied: a ${VARIABLE} is written", "; ")
		}
		if o.dflt != "" {
			note = strings.TrimPrefix(note+fmt.Sprintf("; `%s` needs nothing", o.dflt), "; ")
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | %s | %s | %s |\n", o.flag, o.toml, key, status, note)
	}
	fmt.Fprintf(&b, "\n%d options: %d mapped, %d mapped with a warning, %d with no equivalent.\n",
		len(optionTable), counts[covMapped], counts[covWarned], counts[covUnsupported])
	return b.String()
}

// TestMigrateDocs checks that the page's option table is optionTable,
// and that every Portcullis key it names is in config.example.yaml or
// docs/providers.md.
func TestMigrateDocs(t *testing.T) {
	page, err := os.ReadFile(docsMigrating)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(page), tableBegin)
	got, after, ok2 := strings.Cut(rest, tableEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s lacks the table markers", docsMigrating)
	}
	want := migrateDocsTable()
	if *updateMigrateDocs {
		if err := os.WriteFile(docsMigrating, []byte(before+tableBegin+want+tableEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != want {
		t.Errorf("%s's option table is not optionTable's; run go test -run TestMigrateDocs -update-migrate-docs .", docsMigrating)
	}
	example, err := os.ReadFile("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	providersPage, err := os.ReadFile(docsProviders)
	if err != nil {
		t.Fatal(err)
	}
	example = append(example, providersPage...)
	for _, o := range optionTable {
		if o.key == "" {
			continue
		}
		last := strings.TrimSuffix(o.key[strings.LastIndex(o.key, ".")+1:], "[]")
		if !strings.Contains(string(example), last+":") && !strings.Contains(string(example), last+"_file") && !strings.Contains(string(example), last+" ") {
			t.Errorf("%s maps to %s, which neither config.example.yaml nor docs/providers.md names", o.flag, o.key)
		}
	}
}

// TestMigrateCommentsEveryLine: every key with a value says where it came
// from.
func TestMigrateCommentsEveryLine(t *testing.T) {
	for _, c := range append(migrateCases, migrateCase{name: "every option", cfg: "every-option.cfg"}) {
		out := runMigrateCase(t, c).render()
		for _, line := range strings.Split(string(out), "\n") {
			l := strings.TrimSpace(line)
			if l == "" || strings.HasPrefix(l, "#") || strings.HasSuffix(l, ":") {
				continue
			}
			if !strings.Contains(l, " # ") {
				t.Errorf("%s: %q has no comment", c.name, l)
			}
		}
	}
}

// TestMigrateConversions covers single conversions the fixtures do not.
func TestMigrateConversions(t *testing.T) {
	for _, tt := range []struct {
		name   string
		args   []string
		env    []string
		want   []string
		absent []string
	}{
		{"entra tenant from the issuer", []string{"--provider=entra-id", "--oidc-issuer-url=https://login.microsoftonline.com/0f3c1d2e-4b5a-4c6d-8e9f-a0b1c2d3e4f5/v2.0", "--email-domain=*"},
			nil, []string{"tenant: 0f3c1d2e-4b5a-4c6d-8e9f-a0b1c2d3e4f5"}, []string{"tenant: common", "issuer_url", "set providers[].tenant to yours"}},
		{"entra default tenant flagged", []string{"--provider=azure", "--email-domain=*"},
			nil, []string{"tenant: common", "set providers[].tenant to yours"}, nil},
		{"redis URL with a password from the environment", []string{"--session-store-type=redis", "--email-domain=*"},
			[]string{"OAUTH2_PROXY_REDIS_CONNECTION_URL=rediss://:s3cret-pw@redis:6380/0"}, []string{"url: ${OAUTH2_PROXY_REDIS_CONNECTION_URL}"}, []string{"s3cret-pw"}},
		{"redis URL with a password from a flag", []string{"--redis-connection-url=redis://:s3cret-pw@redis:6379/3", "--email-domain=*"},
			nil, []string{"addrs: ['redis:6379']", "db: 3", "password: ${OAUTH2_PROXY_REDIS_CONNECTION_URL_PASSWORD}"}, []string{"s3cret-pw"}},
		{"client secret from a flag", []string{"--client-secret=flag-secret", "--email-domain=*"},
			nil, []string{"client_secret: ${OAUTH2_PROXY_CLIENT_SECRET}", "set OAUTH2_PROXY_CLIENT_SECRET in Portcullis's environment"}, []string{"flag-secret"}},
		{"github org on oidc is refused", []string{"--provider=oidc", "--github-org=acme", "--email-domain=*"},
			nil, []string{"--github-org: applies to type github only"}, []string{"orgs:"}},
		{"no email domain", []string{"--provider=oidc"}, nil, []string{"Portcullis admits nobody"}, []string{"email_domains:"}},
		{"unix upstream", []string{"--upstream=unix:///run/app.sock", "--email-domain=*"}, nil, []string{"Portcullis proxies to http(s) only"}, []string{"upstreams:"}},
		{"exact upstream path", []string{"--upstream=http://svc:8080/foo", "--email-domain=*"}, nil, []string{"path: /foo #", "matched only /foo exactly"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := migrate(migrateInput{Args: tt.args, Environ: tt.env, ReadFile: os.ReadFile})
			if err != nil {
				t.Fatal(err)
			}
			out := string(m.render())
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(out, a) {
					t.Errorf("output contains %q:\n%s", a, out)
				}
			}
		})
	}
}

func TestMigrateFlagErrors(t *testing.T) {
	for _, args := range [][]string{{"--client-id"}, {"positional"}, {"--not-a-flag"}, {"--email-domains=a.test"}} {
		if _, err := migrate(migrateInput{Args: args, ReadFile: os.ReadFile}); err == nil {
			t.Errorf("%q: want an error", args)
		}
	}
}

// TestMigrateAlphaIDTokenHeader: an alpha injectRequestHeaders entry
// sending the ID token as a bearer to the upstream becomes
// pass_authorization_header; the same header in a forward-auth answer
// has no equivalent.
func TestMigrateAlphaIDTokenHeader(t *testing.T) {
	alpha := []byte(`upstreamConfig:
  upstreams:
    - id: app
      path: /
      uri: http://127.0.0.1:8080
injectRequestHeaders:
  - name: Authorization
    values:
      - claim: id_token
        prefix: "Bearer "
injectResponseHeaders:
  - name: Authorization
    values:
      - claim: id_token
        prefix: "Bearer "
`)
	m := newMigration()
	if err := m.applyAlpha("alpha.yaml", alpha); err != nil {
		t.Fatal(err)
	}
	if got := m.lookup("upstreams.0.pass_authorization_header"); got != true {
		t.Errorf("upstreams[0].pass_authorization_header = %v, want true", got)
	}
	if n := m.count(noteNoEquivalent); n != 1 {
		t.Errorf("%d entries with no equivalent, want 1 (the forward-auth answer's Authorization): %v", n, m.notes)
	}
}
