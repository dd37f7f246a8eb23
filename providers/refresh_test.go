package providers

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/session"
)

func TestRefresh(t *testing.T) {
	ti := newTestIssuer(t)
	clk := newClock()
	p := ti.provider(t, clk, func(c *Config) { c.Userinfo = "never" }).(*OIDC)
	now := clk.Now()
	base := &session.Session{
		Identity:     session.Identity{Issuer: ti.URL, Subject: "user-1", Email: "alice@example.com", EmailVerified: true, Groups: []string{"old"}},
		Provider:     "corp",
		CreatedAt:    now.Add(-time.Hour),
		TokenExpiry:  now.Add(30 * time.Second),
		RefreshToken: "rt-1",
	}
	refreshedID := func(edit func(map[string]any)) string {
		c := map[string]any{"iss": ti.URL, "sub": "user-1", "aud": testClientID, "exp": now.Add(5 * time.Minute).Unix(),
			"iat": now.Unix(), "email": "alice@example.com", "email_verified": true, "groups": []string{"new", "admins"}}
		if edit != nil {
			edit(c)
		}
		return rsaKey.sign(t, c)
	}
	for _, tt := range []struct {
		name       string
		status     int
		body       map[string]any
		wantErr    error
		wantRT     string
		wantGroups string
	}{
		{"rotation", 200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 300, "refresh_token": "rt-2"}, nil, "rt-2", "old"},
		{"no new refresh token keeps the old", 200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 300}, nil, "rt-1", "old"},
		{"groups re-read from the new ID token", 200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 300,
			"id_token": refreshedID(nil)}, nil, "rt-1", "new,admins"},
		{"invalid_grant ends it", 400, map[string]any{"error": "invalid_grant"}, ErrRejected, "", ""},
		{"provider outage keeps it", 503, map[string]any{"error": "temporarily_unavailable"}, ErrUnavailable, "", ""},
		{"temporarily_unavailable at 400 keeps it", 400, map[string]any{"error": "temporarily_unavailable"}, ErrUnavailable, "", ""},
		{"slow_down keeps it", 400, map[string]any{"error": "slow_down"}, ErrUnavailable, "", ""},
		{"Dex's invalid_request for a reused token ends it", 400, map[string]any{"error": "invalid_request"}, ErrRejected, "", ""},
		{"200 without access_token is an unusable answer, not an outage", 200, map[string]any{"token_type": "Bearer"}, ErrBadResponse, "", ""},
		{"refreshed ID token for another user", 200, map[string]any{"access_token": "at-2", "token_type": "Bearer",
			"id_token": refreshedID(func(c map[string]any) { c["sub"] = "someone-else" })}, ErrInvalidToken, "", ""},
		{"refreshed ID token for another client", 200, map[string]any{"access_token": "at-2", "token_type": "Bearer",
			"id_token": refreshedID(func(c map[string]any) { c["aud"] = "other" })}, ErrInvalidToken, "", ""},
		{"refreshed ID token with an unverified email", 200, map[string]any{"access_token": "at-2", "token_type": "Bearer",
			"id_token": refreshedID(func(c map[string]any) { c["email_verified"] = false })}, ErrUnverifiedEmail, "", ""},
		{"refreshed ID token with exp as a numeric string", 200, map[string]any{"access_token": "at-2", "token_type": "Bearer",
			"id_token": refreshedID(func(c map[string]any) { c["exp"] = strconv.FormatInt(now.Add(5*time.Minute).Unix(), 10) })}, ErrInvalidToken, "", ""},
		{"refreshed ID token with iat in another case", 200, map[string]any{"access_token": "at-2", "token_type": "Bearer",
			"id_token": refreshedID(func(c map[string]any) { c["IAT"] = now.Unix() })}, ErrInvalidToken, "", ""},
		{"refreshed ID token with a fractional exp", 200, map[string]any{"access_token": "at-2", "token_type": "Bearer",
			"id_token": refreshedID(func(c map[string]any) { c["exp"] = float64(now.Add(5*time.Minute).Unix()) + 0.5 })}, nil, "rt-1", "new,admins"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ti.replyJSON(tt.status, tt.body)
			before := *base
			got, err := p.Refresh(context.Background(), base)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if base.RefreshToken != before.RefreshToken || strings.Join(base.Groups, ",") != "old" {
				t.Error("Refresh modified its argument")
			}
			if req := ti.lastTokenRequest(t); req.Form.Get("grant_type") != "refresh_token" || req.Form.Get("refresh_token") != "rt-1" {
				t.Errorf("token request = %v", req.Form)
			}
			if err != nil {
				return
			}
			if got.RefreshToken != tt.wantRT || strings.Join(got.Groups, ",") != tt.wantGroups || got.AccessToken != "at-2" {
				t.Errorf("refreshed = rt %q groups %v at %q", got.RefreshToken, got.Groups, got.AccessToken)
			}
			if !got.RefreshedAt.Equal(now) || !got.CreatedAt.Equal(base.CreatedAt) || got.Subject != "user-1" {
				t.Errorf("refreshed times/identity = %+v", got)
			}
		})
	}
	if _, err := p.Refresh(context.Background(), &session.Session{}); !errors.Is(err, ErrNoRefreshToken) {
		t.Errorf("no refresh token: %v", err)
	}
}
