package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestCheckOfflineURIs: offline, -check cannot know what a provider
// supports: only the redirect URI is required, the others conditional.
func TestCheckOfflineURIs(t *testing.T) {
	t.Setenv("OIDC_CLIENT_SECRET", "client-secret")
	t.Setenv("COOKIE_SECRET", "3kS1JsuaZLXS/H3jQHWtpBJKPM8iU5rz3XgTLwImVig=")
	var out, errOut bytes.Buffer
	if code := run([]string{"-config", "config.example.yaml", "-check"}, &out, &errOut); code != 0 {
		t.Fatalf("-check exited %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"redirect URI:              http://127.0.0.1:4180/oauth2/callback\n    required",
		"post-logout redirect URI:  http://127.0.0.1:4180/oauth2/signed_out\n    if the provider has an end_session endpoint",
		"back-channel logout URI:   http://127.0.0.1:4180/oauth2/backchannel_logout\n    if the provider supports back-channel logout",
		"front-channel logout URI:  http://127.0.0.1:4180/oauth2/frontchannel_logout\n    if the provider supports front-channel logout",
		"-check -online",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-check output lacks %q:\n%s", want, out.String())
		}
	}
	if code := run([]string{"-config", "config.example.yaml", "-online"}, &out, &errOut); code != 2 {
		t.Errorf("-online without -check exited %d, want 2 (usage)", code)
	}
}
