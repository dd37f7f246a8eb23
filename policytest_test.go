package main

import (
	"bytes"
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
