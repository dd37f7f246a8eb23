package main

import (
	"bytes"
	"flag"
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
	noEquivalent          []string // each is in the "no equivalent" list, which has no others (nil: not checked)
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
		},
		absent:       []string{"email_domains", "from-the-helm-secret"},
		noEquivalent: []string{"set_xauthrequest in helm-values.cfg: no equivalent yet (planned: headers.set_xauthrequest)", "silence_ping_logging"},
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
		},
		absent: []string{"hunter2", "0123456789abcdef", "8p3hQk0d", "pass_authorization_header"},
		noEquivalent: []string{
			"OAUTH2_PROXY_SKIP_AUTH_ROUTES: no equivalent yet (planned: policy.skip_auth_routes)",
			"OAUTH2_PROXY_PASS_AUTHORIZATION_HEADER: no equivalent yet (planned: upstreams[].pass_authorization_header)",
		},
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
		absent: []string{"upstreams:", "aGVsbG8td29ybGQ", "insecure"},
		noEquivalent: []string{
			"--upstream: upstream static://202: Portcullis proxies to http(s) only",
			"--set-xauthrequest: no equivalent yet",
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
