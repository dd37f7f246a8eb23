package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyTestCommand runs the documented example: every case passes and
// each line names the deciding rule.
func TestPolicyTestCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"policy", "test", "-config", "docs/examples/policy.yaml", "docs/examples/policy-cases.yaml"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{
		"ALLOW  admins pass",
		"policy.routes[0] /admin/ groups:admins",
		"DENY   grafana not for the rest of example.com",
		"policy.routes[1] grafana.example.com/",
		"method PATCH not listed",
		"400: ambiguous request path",
		"15 cases, all as expected",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestPolicyTestCommandFailsOnMismatch(t *testing.T) {
	cases := filepath.Join(t.TempDir(), "cases.yaml")
	os.WriteFile(cases, []byte(`
- name: wrong expectation
  identity: {email: bob@example.com}
  request: {host: tools.example.com, path: /admin/}
  expect: allow
`), 0o600)
	var out, errOut bytes.Buffer
	if code := run([]string{"policy", "test", "-config", "docs/examples/policy.yaml", cases}, &out, &errOut); code != 1 {
		t.Errorf("exit %d, want 1\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "FAIL: expected allow") || !strings.Contains(out.String(), "1 of 1 cases failed") {
		t.Errorf("output:\n%s", out.String())
	}
	os.WriteFile(cases, []byte("- request: {path: /}\n  expcet: allow\n"), 0o600)
	if code := run([]string{"policy", "test", "-config", "docs/examples/policy.yaml", cases}, &out, &errOut); code != 1 {
		t.Errorf("a case file with an unknown key: exit %d, want 1", code)
	}
}

// TestExampleConfigsAreValid checks that every configuration under
// docs/examples passes -check with its secrets provided.
func TestExampleConfigsAreValid(t *testing.T) {
	t.Setenv("OIDC_CLIENT_SECRET", "client-secret")
	t.Setenv("COOKIE_SECRET", randomBase64(32))
	files, _ := filepath.Glob("docs/examples/*.yaml")
	for _, f := range files {
		if strings.HasSuffix(f, "-cases.yaml") {
			continue
		}
		t.Run(f, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run([]string{"-config", f, "-check"}, &out, &errOut); code != 0 {
				t.Errorf("-check %s = %d\n%s", f, code, errOut.String())
			}
		})
	}
}

// TestPolicyTestGatewayVerdicts runs the pinned-provider example: the
// command gives the gateway's own verdict for a route pinned to another
// provider (sign in with that one) and for a host no upstream serves (404),
// where a policy-only tool would say allow.
func TestPolicyTestGatewayVerdicts(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"policy", "test", "-config", "docs/examples/partners.yaml", "docs/examples/partners-cases.yaml"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{
		"SIGN_IN the partner area asks employees to sign in with partners",
		"policy.routes[0] /partners/: requires provider partners",
		"NOT_FOUND a host no upstream serves is not found",
		"no upstream for grafana.example.com/",
		"ALLOW  forward-auth decides any host the ingress serves",
		"ALLOW  API clients with a bearer token",
		"SIGN_IN the API takes sessions from corp only",
		"9 cases, all as expected",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestPolicyTestRefusesBadCases: an unknown expectation or mode is an
// error naming the case, not a verdict.
func TestPolicyTestRefusesBadCases(t *testing.T) {
	for _, tt := range []struct{ cases, want string }{
		{"- request: {path: /}\n  expect: denied\n", `case 1: expect "denied": want allow, deny, sign_in or not_found`},
		{"- request: {path: /, mode: sidecar}\n", `case 1: request.mode "sidecar": want proxy or auth`},
		{"- request: {host: a}\n", "case 1: request.path is required"},
	} {
		file := filepath.Join(t.TempDir(), "cases.yaml")
		os.WriteFile(file, []byte(tt.cases), 0o600)
		var out, errOut bytes.Buffer
		if code := run([]string{"policy", "test", "-config", "docs/examples/partners.yaml", file}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("cases %q: exit %d, stderr %q; want 1 and %q", tt.cases, code, errOut.String(), tt.want)
		}
	}
}

// TestPolicyTestCaseVariants: `policy test` reaches the same verdict as the
// gateway for case variants of a protected path (the strictest route
// compared case-insensitively governs) and of a public one (public only as
// spelled).
func TestPolicyTestCaseVariants(t *testing.T) {
	cases := filepath.Join(t.TempDir(), "cases.yaml")
	os.WriteFile(cases, []byte(`
- name: upper case admin path, not an admin
  identity: {email: bob@example.com}
  request: {host: tools.example.com, path: /ADMIN/users}
  expect: deny
- name: mixed case admin path, not an admin
  identity: {email: bob@example.com}
  request: {host: tools.example.com, path: /Admin/secret}
  expect: deny
- name: escaped letter admin path, not an admin
  identity: {email: bob@example.com}
  request: {host: tools.example.com, path: /%41dmin/users}
  expect: deny
- name: upper case admin path, an admin
  identity: {email: alice@example.com, groups: [admins]}
  request: {host: tools.example.com, path: /ADMIN/users}
  expect: allow
- name: public route as spelled, signed out
  request: {host: tools.example.com, path: /healthz}
  expect: allow
- name: public route in upper case is not public
  request: {host: tools.example.com, path: /HEALTHZ}
  expect: sign_in
`), 0o600)
	var out, errOut bytes.Buffer
	if code := run([]string{"policy", "test", "-config", "docs/examples/policy.yaml", cases}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "6 cases, all as expected") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestPolicyTestOAuth2ProxyOptions: policy test decides skip_auth_routes,
// trusted_ips (client_ip), the emails file and pass_encoded_slashes as
// the gateway does.
func TestPolicyTestOAuth2ProxyOptions(t *testing.T) {
	dir := t.TempDir()
	emails := filepath.Join(dir, "emails")
	os.WriteFile(emails, []byte("# listed\ncarol@example.net\n"), 0o600)
	config := filepath.Join(dir, "config.yaml")
	os.WriteFile(config, []byte(`
server: {public_url: https://gw.example.com}
providers: [{id: corp, issuer_url: https://idp.example.com, client_id: c, client_secret: s}]
session: {cookie: {secrets: [${COOKIE_SECRET}]}}
upstreams: [{path: /, url: http://127.0.0.1:8080}]
policy:
  email_domains: [example.com]
  skip_auth_routes: ["GET=^/probe$"]
  trusted_ips: [10.0.0.0/8]
  authenticated_emails_file: `+emails+`
  routes: [{path: /rabbit/, pass_encoded_slashes: true}]
`), 0o600)
	cases := filepath.Join(dir, "cases.yaml")
	os.WriteFile(cases, []byte(`
- {name: probe skips, request: {path: /probe}, expect: allow}
- {name: probe POST does not, request: {method: POST, path: /probe}, expect: sign_in}
- {name: trusted client, request: {path: /app, client_ip: 10.1.2.3}, expect: allow}
- {name: other client, request: {path: /app, client_ip: 192.0.2.1}, expect: sign_in}
- {name: listed in the file, identity: {email: carol@example.net}, request: {path: /app}, expect: allow}
- {name: not listed, identity: {email: dave@example.net}, request: {path: /app}, expect: deny}
- {name: vhost, identity: {email: a@example.com}, request: {path: /rabbit/api/queues/%2F/q}, expect: allow}
- {name: elsewhere, identity: {email: a@example.com}, request: {path: /app/%2F}, expect: deny}
`), 0o600)
	var out, errOut bytes.Buffer
	if code := run([]string{"policy", "test", "-config", config, cases}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"policy.skip_auth_routes[0] GET=^/probe$ public", "policy.trusted_ips 10.0.0.0/8", "default authenticated_emails_file"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestPolicyExpressionsExample runs docs/policy.md's ten worked examples
// of conditions: every case meets its expectation, and the deciding part
// of each rule is named.
func TestPolicyExpressionsExample(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"policy", "test", "-config", "docs/examples/expressions.yaml", "docs/examples/expressions-cases.yaml"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{
		"DENY   2 finance from home",
		"groups:finance matched, but source_ips: 203.0.113.9 is not listed",
		"hours: Sat 11:00 CET is outside Mon-Fri 09:00-18:00",
		`expr: ip(request.source_ip).in_cidr("10.20.0.0/16") is false`,
		"expr failed (denied): no such key: tenant",
		"31 cases, all as expected",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestPolicyExplain checks that explain lists every route and why it
// applies or not, judges each part of the governing rule, and ends with
// the gateway's decision.
func TestPolicyExplain(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"policy", "explain", "-config", "docs/examples/expressions.yaml", "docs/examples/expressions-cases.yaml", "6 but does not delete them"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{
		"request: DELETE tools.example.com/metrics/cpu",
		"source_ip 10.20.0.7, time 2026-12-07 11:00:00 CET (Mon), as session",
		"policy.routes[5] /metrics/               governs DELETE",
		"policy.routes[0] /t/                     path /t/ does not match",
		"groups [sre]: matches",
		`is false: request.method == "GET"`,
		`is true: now.within("Mon-Fri 09:00-18:00")`,
		`decision: DENY policy.routes[5] /metrics/: groups:sre matched, but expr: request.method == "GET" is false`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// Several cases and none named: the command says which to name.
	if code := run([]string{"policy", "explain", "-config", "docs/examples/expressions.yaml", "docs/examples/expressions-cases.yaml"}, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "name one") {
		t.Errorf("explain without a case = %d: %s", code, errOut.String())
	}
	// A case whose expectation is not met fails, as in policy test.
	cases := filepath.Join(t.TempDir(), "cases.yaml")
	os.WriteFile(cases, []byte("- identity: {email: a@example.com}\n  request: {path: /secrets/}\n  expect: allow\n"), 0o600)
	out.Reset()
	if code := run([]string{"policy", "explain", "-config", "docs/examples/expressions.yaml", cases}, &out, &errOut); code != 1 ||
		!strings.Contains(out.String(), "FAIL: expected allow") || !strings.Contains(out.String(), "who: no emails, domains, groups or claims; the expression decides") {
		t.Errorf("explain of a failing case = %d:\n%s", code, out.String())
	}
}

// TestCheckNamesExpressionLine checks that -check refuses an expression
// that does not compile, naming the file, the line and CEL's error.
func TestCheckNamesExpressionLine(t *testing.T) {
	t.Setenv("OIDC_CLIENT_SECRET", "client-secret")
	t.Setenv("COOKIE_SECRET", randomBase64(32))
	src, err := os.ReadFile("docs/examples/expressions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(src), `ip(request.source_ip).in_cidr("10.20.0.0/16") &&`, `ip(request.source_ip).in_cidr("10.20.0.0/16") && identity.groupz == [] &&`, 1)
	line := 0
	for i, l := range strings.Split(bad, "\n") {
		if strings.Contains(l, "identity.groupz") {
			line = i + 1
		}
	}
	f := filepath.Join(t.TempDir(), "gw.yaml")
	os.WriteFile(f, []byte(bad), 0o600)
	var out, errOut bytes.Buffer
	if code := run([]string{"-config", f, "-check"}, &out, &errOut); code == 0 {
		t.Fatal("-check accepted an expression that does not compile")
	}
	want := fmt.Sprintf("%s:%d: policy.routes[5].expr: undeclared reference to 'identity'", f, line)
	if !strings.Contains(errOut.String(), want) || !strings.Contains(errOut.String(), "identity has no such field; identity.subject, issuer") {
		t.Errorf("-check said:\n%s\nwant %q and CEL's error", errOut.String(), want)
	}
	// A plain (one-line) expression is reported at its own line.
	bad = strings.Replace(string(src), "expr: identity.authenticated_via == \"session\" || request.method == \"GET\"", "expr: identity.authenticated_via == 1", 1)
	os.WriteFile(f, []byte(bad), 0o600)
	errOut.Reset()
	run([]string{"-config", f, "-check"}, &out, &errOut)
	for i, l := range strings.Split(bad, "\n") {
		if strings.Contains(l, "authenticated_via == 1") {
			line = i + 1
		}
	}
	if want := fmt.Sprintf("%s:%d: policy.routes[7].expr", f, line); !strings.Contains(errOut.String(), want) {
		t.Errorf("-check said:\n%s\nwant %q", errOut.String(), want)
	}
}

// TestPolicyDocsShowExamples checks that docs/policy.md's ten worked
// examples show the expressions the tested example file holds.
func TestPolicyDocsShowExamples(t *testing.T) {
	cfg, err := loadConfig("docs/examples/expressions.yaml", policySource("docs/examples/expressions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(doc), `\|`, "|")
	n := 0
	for _, r := range cfg.Policy.Routes {
		if r.Expr == "" {
			continue
		}
		n++
		if !strings.Contains(text, "`expr: "+r.Expr+"`") {
			t.Errorf("docs/policy.md does not show the expression of %s: %s", r.Path, r.Expr)
		}
	}
	if n < 8 {
		t.Errorf("only %d expressions in the example file", n)
	}
}
