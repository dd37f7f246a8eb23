package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// caddyBin finds the caddy binary: on PATH, or where .ci/run installs it
// ($HOME/.cache/portcullis-ci/bin, built with `go install` through the Go
// module proxy). Missing, it skips the test, except in CI (CI=true), where
// it fails.
func caddyBin(t *testing.T) string {
	t.Helper()
	if path, err := exec.LookPath("caddy"); err == nil {
		return path
	}
	if home, err := os.UserHomeDir(); err == nil {
		path := filepath.Join(home, ".cache", "portcullis-ci", "bin", "caddy")
		if _, err := os.Stat(path); err == nil {
			return path
		}
	}
	msg := "caddy not found on PATH or in $HOME/.cache/portcullis-ci/bin; .ci/run installs it " +
		"(go install github.com/caddyserver/caddy/v2/cmd/caddy@" + caddyVersion + ")"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// caddyVersion is the version .ci/run installs; keep the two in step.
const caddyVersion = "v2.10.2"

// caddySnippet is the Caddyfile documented in docs/forward-auth.md, so the
// documentation is what the tests run.
func caddySnippet(t *testing.T) string {
	return docSnippet(t, "## Caddy \\(`forward_auth`\\)", "caddy")
}

// startCaddy runs caddy with the documented Caddyfile, its site address
// and the gateway's and app's addresses replaced, until the test ends; it
// returns once caddy listens on listen. Global options keep it off the
// network and out of the user's files: no admin endpoint, no certificates.
func startCaddy(t *testing.T, listen, gateway, app string) {
	t.Helper()
	bin := caddyBin(t)
	site := substitute(t, caddySnippet(t), map[string]string{
		"app.example.com {": "http://" + listen + " {",
		"127.0.0.1:4180":    strings.TrimPrefix(gateway, "http://"),
		"127.0.0.1:8080":    strings.TrimPrefix(app, "http://"),
	})
	dir := t.TempDir()
	conf := "{\n\tadmin off\n\tauto_https off\n\tpersist_config off\n}\n\n" + site
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	runListening(t, "caddy", listen, 15*time.Second, nil, env, bin, "run", "--config", file, "--adapter", "caddyfile")
}
