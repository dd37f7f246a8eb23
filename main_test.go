package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckExampleConfig(t *testing.T) {
	t.Setenv("OIDC_CLIENT_SECRET", "")
	t.Setenv("COOKIE_SECRET", "")
	var out, errOut bytes.Buffer
	if code := run([]string{"-config", "config.example.yaml", "-check"}, &out, &errOut); code != 1 {
		t.Fatalf("-check without secrets exited %d, want 1", code)
	}
	for _, want := range []string{
		"config.example.yaml is not valid",
		"providers[0].client_secret: environment variable OIDC_CLIENT_SECRET is not set",
		"session.cookie.secrets[0]: environment variable COOKIE_SECRET is not set",
		"openssl rand -base64 32",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("-check output lacks %q:\n%s", want, errOut.String())
		}
	}

	t.Setenv("OIDC_CLIENT_SECRET", "client-secret")
	t.Setenv("COOKIE_SECRET", "3kS1JsuaZLXS/H3jQHWtpBJKPM8iU5rz3XgTLwImVig=")
	out.Reset()
	errOut.Reset()
	if code := run([]string{"-config", "config.example.yaml", "-check"}, &out, &errOut); code != 0 {
		t.Fatalf("-check with secrets exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "http://127.0.0.1:4180/oauth2/callback") {
		t.Errorf("-check does not name the redirect URI: %s", out.String())
	}
}

func TestCheckRejectsWeakSecret(t *testing.T) {
	t.Setenv("OIDC_CLIENT_SECRET", "x")
	t.Setenv("COOKIE_SECRET", "password123")
	var out, errOut bytes.Buffer
	if code := run([]string{"-config", "config.example.yaml", "-check"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "cookie secret #1") {
		t.Errorf("output: %s", errOut.String())
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"-nope"}, {"-config"}, {"-config", "x", "extra"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
	var out bytes.Buffer
	if code := run([]string{"version"}, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "portcullis ") {
		t.Errorf("version = %d %q", code, out.String())
	}
}

func TestBuiltServerHasTimeouts(t *testing.T) {
	t.Setenv("OIDC_CLIENT_SECRET", "client-secret")
	t.Setenv("COOKIE_SECRET", "3kS1JsuaZLXS/H3jQHWtpBJKPM8iU5rz3XgTLwImVig=")
	cfg, err := loadConfig("config.example.yaml", osSource)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := build(cfg, slog.New(slog.DiscardHandler), buildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc := gw.handler.ServerConfig()
	srv := sc.HTTPServer(gw.handler, gw.log)
	if srv.ReadHeaderTimeout != 10*time.Second || srv.IdleTimeout != 120*time.Second || srv.MaxHeaderBytes != 64<<10 || srv.ReadTimeout != 60*time.Second {
		t.Errorf("server settings = header %v, idle %v, max header %d, read %v", srv.ReadHeaderTimeout, srv.IdleTimeout, srv.MaxHeaderBytes, srv.ReadTimeout)
	}
	if sc.ShutdownTimeout != 30*time.Second {
		t.Errorf("shutdown grace = %v", sc.ShutdownTimeout)
	}
}

// TestCheckReportsEverySection: -check validates every section without
// building anything (a Redis store nobody runs is not dialled), and one run
// names every problem of every section.
func TestCheckReportsEverySection(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret := "3kS1JsuaZLXS/H3jQHWtpBJKPM8iU5rz3XgTLwImVig="
	good := write("good.yaml", `
server: {public_url: https://gw.example.com}
providers: [{id: corp, issuer_url: https://idp.example.com, client_id: c, client_secret: s}]
session:
  store: redis
  redis: {addrs: ["127.0.0.1:1"]}
  cookie: {secrets: [`+secret+`]}
upstreams: [{path: /, url: http://127.0.0.1:8080}]
policy: {email_domains: ["*"]}
`)
	var out, errOut bytes.Buffer
	if code := run([]string{"-config", good, "-check"}, &out, &errOut); code != 0 {
		t.Fatalf("-check of a Redis config with no Redis running: exit %d\n%s", code, errOut.String())
	}
	bad := write("bad.yaml", `
server: {public_url: https://gw.example.com}
providers: [{id: corp, issuer_url: http://idp.example.com, client_id: c, client_secret: s}]
session:
  lifetime: 1000h
  cookie: {name: "a;b", secrets: [`+secret+`]}
upstreams: [{path: /, url: ftp://x, tls: {ca_file: `+filepath.Join(dir, "missing.pem")+`}}]
policy:
  routes: [{path: /x/, provider: ghost}]
admin: {listen: "127.0.0.1:0"}
`)
	out.Reset()
	errOut.Reset()
	if code := run([]string{"-config", bad, "-check"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"providers: corp: issuer_url", "session.lifetime", "session.cookie.name", "upstreams: /: tls.ca_file", "must be http(s)",
		`pins provider "ghost"`, "admin.token_file is required",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("-check output lacks %q:\n%s", want, errOut.String())
		}
	}
}
