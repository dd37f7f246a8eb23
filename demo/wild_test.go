package demo

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// discoveryDoc fetches the raw discovery document.
func discoveryDoc(t *testing.T, issuer string) map[string]any {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&doc) != nil {
		t.Fatalf("discovery: %s", resp.Status)
	}
	return doc
}

// TestNoEndSession: like Dex, no end_session_endpoint in discovery and no
// end-session endpoint at all; the rest of discovery and the flow stay.
func TestNoEndSession(t *testing.T) {
	p := startRP(t, func(c *Config) { c.NoEndSession = true })
	doc := discoveryDoc(t, p.issuer)
	if v, ok := doc["end_session_endpoint"]; ok {
		t.Errorf("discovery end_session_endpoint = %v, want it absent", v)
	}
	for _, k := range []string{"issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("discovery lost %s", k)
		}
	}
	tok, _, _ := p.signIn(t, "alice", alicePass)
	hint, _ := tok.Extra("id_token").(string)
	resp, err := browser(t).Get(p.issuer + "/end_session?" + url.Values{"id_token_hint": {hint}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("end_session: %s, want 404", resp.Status)
	}
	if _, err := p.refresh(tok.RefreshToken); err != nil {
		t.Errorf("the refresh token was revoked by the refused end_session: %v", err)
	}

	plain := startRP(t, nil)
	if _, ok := discoveryDoc(t, plain.issuer)["end_session_endpoint"]; !ok {
		t.Error("without NoEndSession discovery has no end_session_endpoint")
	}
}

// TestRefreshReuseError: like Dex, a refresh token already rotated away,
// or redeemed by another holder, is answered invalid_request; tokens that
// were never issued or were revoked still get invalid_grant.
func TestRefreshReuseError(t *testing.T) {
	p := startRP(t, func(c *Config) { c.RefreshReuseError = "invalid_request" })
	tok, _, _ := p.signIn(t, "alice", alicePass)
	tok2, err := p.refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := p.refresh(tok.RefreshToken); oauthErrorCode(err) != "invalid_request" {
		t.Errorf("rotated token: %v, want invalid_request", err)
	}
	if _, err := p.refresh("not-a-token"); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("unknown token: %v, want invalid_grant", err)
	}
	if n := p.idp.RedeemRefreshTokens("u-alice"); n != 1 {
		t.Errorf("RedeemRefreshTokens = %d, want 1", n)
	}
	if _, err := p.refresh(tok2.RefreshToken); oauthErrorCode(err) != "invalid_request" {
		t.Errorf("token redeemed elsewhere: %v, want invalid_request", err)
	}

	tok3, _, _ := p.signIn(t, "alice", alicePass)
	p.idp.RevokeRefreshTokens("u-alice")
	if _, err := p.refresh(tok3.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("revoked token: %v, want invalid_grant", err)
	}

	plain := startRP(t, nil)
	tok4, _, _ := plain.signIn(t, "alice", alicePass)
	if n := plain.idp.RedeemRefreshTokens("u-alice"); n != 1 {
		t.Errorf("RedeemRefreshTokens = %d, want 1", n)
	}
	if _, err := plain.refresh(tok4.RefreshToken); oauthErrorCode(err) != "invalid_grant" {
		t.Errorf("without RefreshReuseError a redeemed token: %v, want invalid_grant", err)
	}
}

// TestRequireIDTokenHint: like Ory Hydra, end_session without
// id_token_hint is refused; with it, it works as before.
func TestRequireIDTokenHint(t *testing.T) {
	p := startRP(t, func(c *Config) { c.RequireIDTokenHint = true })
	tok, _, _ := p.signIn(t, "alice", alicePass)
	hint, _ := tok.Extra("id_token").(string)
	registered := p.callback.URL + "/signed-out"
	for _, tt := range []struct {
		name     string
		params   url.Values
		status   int
		location string
	}{
		{"client_id only", url.Values{"client_id": {clientID}, "post_logout_redirect_uri": {registered}}, http.StatusBadRequest, ""},
		{"hint", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {registered}}, http.StatusFound, registered},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := browser(t).Get(p.issuer + "/end_session?" + tt.params.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status || resp.Header.Get("Location") != tt.location {
				t.Errorf("end_session: %s to %q, want %d to %q", resp.Status, resp.Header.Get("Location"), tt.status, tt.location)
			}
		})
	}
}

// TestStartIssuerPath: Start fills the address in front of an issuer that
// is only a path, as a Keycloak realm's is.
func TestStartIssuerPath(t *testing.T) {
	srv, err := Start("127.0.0.1:0", Config{Issuer: "/realms/demo", SigningKey: sharedKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") || !strings.HasSuffix(srv.URL, "/realms/demo") {
		t.Fatalf("URL = %q", srv.URL)
	}
	if got := discoveryDoc(t, srv.URL)["issuer"]; got != srv.URL {
		t.Errorf("discovery issuer = %v, want %q", got, srv.URL)
	}
}

// TestIssuerTrailingSlash: like authentik, the issuer ends in "/" in
// discovery and in the tokens, and the endpoints are under it without a
// doubled slash.
func TestIssuerTrailingSlash(t *testing.T) {
	p := newRP(t, "/application/o/portcullis", func(c *Config) { c.IssuerTrailingSlash = true })
	if !strings.HasSuffix(p.issuer, "/application/o/portcullis/") {
		t.Fatalf("issuer = %q, want the trailing slash", p.issuer)
	}
	doc := discoveryDoc(t, strings.TrimSuffix(p.issuer, "/"))
	if doc["issuer"] != p.issuer {
		t.Errorf("discovery issuer = %v, want %q", doc["issuer"], p.issuer)
	}
	for _, k := range []string{"token_endpoint", "authorization_endpoint", "end_session_endpoint"} {
		if v, _ := doc[k].(string); !strings.HasPrefix(v, p.issuer) || strings.Contains(strings.TrimPrefix(v, "http://"), "//") {
			t.Errorf("discovery %s = %q, want it under %q", k, v, p.issuer)
		}
	}
	tok, idt, a := p.signIn(t, "alice", alicePass)
	if idt.Issuer != p.issuer {
		t.Errorf("iss = %q, want %q", idt.Issuer, p.issuer)
	}
	if got := mustParse(t, a.loginURL).Path; got != "/application/o/portcullis/login" {
		t.Errorf("login page path = %q", got)
	}
	if _, err := p.refresh(tok.RefreshToken); err != nil {
		t.Errorf("refresh: %v", err)
	}
}
