package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/session"
)

// device.go is the device authorization grant (RFC 8628), served by the
// gateway itself for the applications behind it: a terminal, script or
// device without a browser asks for a code (§3.1), the user approves it
// in a browser on this gateway's verification page after signing in as
// usual (§3.3), and the device's polls (§3.4) end in an access token
// (§3.5) that is a gateway session of its own, accepted as
// Authorization: Bearer on the routes whose policy admits that user.
//
// The token names a session in the session store (session/tokens.go): it
// expires after device.lifetime, is revoked like any session (the admin
// API, back-channel logout of the provider session that approved it,
// `portcullis sessions revoke`, POST /oauth2/revoke), and carries no
// provider token.

// DeviceConfig is the `device` section.
type DeviceConfig struct {
	// Enabled serves the grant's endpoints; off by default.
	Enabled bool `yaml:"enabled"`
	// Lifetime is how long an issued token is valid (default 8h); at
	// most the session lifetime.
	Lifetime time.Duration `yaml:"lifetime"`
	// CodeLifetime is how long a user has to approve (expires_in;
	// default 10m, 1m to 30m).
	CodeLifetime time.Duration `yaml:"code_lifetime"`
	// Interval is the least time between polls (default 5s, RFC 8628
	// §3.2); faster polls get slow_down.
	Interval time.Duration `yaml:"interval"`
	// AttemptsPerSource and AttemptsPerMinute bound user-code lookups on
	// the verification page (§5.1): per client address and across all,
	// per replica, each a minute's worth (defaults 10 and 100).
	AttemptsPerSource int `yaml:"attempts_per_source"`
	AttemptsPerMinute int `yaml:"attempts_per_minute"`
}

func (c *DeviceConfig) validate(sessionLifetime time.Duration) error {
	for _, d := range []struct {
		v           *time.Duration
		def, lo, hi time.Duration // hi 0: no upper bound here
		name        string
	}{
		{&c.Lifetime, 8 * time.Hour, time.Minute, 0, "lifetime"},
		{&c.CodeLifetime, 10 * time.Minute, time.Minute, 30 * time.Minute, "code_lifetime"},
		{&c.Interval, 5 * time.Second, time.Second, time.Minute, "interval"},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
		switch {
		case *d.v < d.lo && d.hi == 0:
			return fmt.Errorf("device.%s %v: want at least %v", d.name, *d.v, d.lo)
		case *d.v < d.lo || (d.hi > 0 && *d.v > d.hi):
			return fmt.Errorf("device.%s %v: want between %v and %v", d.name, *d.v, d.lo, d.hi)
		}
	}
	if sessionLifetime > 0 && c.Lifetime > sessionLifetime {
		if c.Enabled {
			return fmt.Errorf("device.lifetime %v is longer than session.lifetime %v: a device token is a session and lives no longer", c.Lifetime, sessionLifetime)
		}
		c.Lifetime = sessionLifetime
	}
	if c.AttemptsPerSource == 0 {
		c.AttemptsPerSource = 10
	}
	if c.AttemptsPerMinute == 0 {
		c.AttemptsPerMinute = 100
	}
	if c.AttemptsPerSource < 1 || c.AttemptsPerMinute < c.AttemptsPerSource {
		return fmt.Errorf("device.attempts_per_source %d and attempts_per_minute %d: want at least 1, and per minute at least per source", c.AttemptsPerSource, c.AttemptsPerMinute)
	}
	return nil
}

// deviceTokenPrefix starts every token the grant issues, so it is told
// from a provider's JWT at a glance (and by secret scanners).
const deviceTokenPrefix = "pcd_"

// isDeviceAuthorization reports whether an Authorization value carries a
// device token, as bearerToken reads it.
func isDeviceAuthorization(v string) bool {
	return len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") && strings.HasPrefix(strings.TrimSpace(v[7:]), deviceTokenPrefix)
}

// grantType is RFC 8628 §3.4's grant_type.
const grantType = "urn:ietf:params:oauth:grant-type:device_code"

// oauthError is the JSON error of RFC 6749 §5.2, which RFC 8628 §3.5
// extends.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func oauthFail(code int, e, desc string, err error) *httpError {
	return &httpError{Code: code, Msg: desc, Err: err, body: oauthError{Error: e, Description: desc}}
}

// deviceOff answers every device endpoint when the grant is not enabled.
func (h *Handler) deviceOff() error {
	return errorf(http.StatusNotFound, "This gateway does not offer device sign-in.", errors.New("device.enabled is false"))
}

// deviceForm checks what every device endpoint needs: the grant on, a
// POST, an urlencoded form of at most 8 KiB, which it parses.
func (h *Handler) deviceForm(w http.ResponseWriter, r *http.Request) error {
	if h.devices == nil {
		return h.deviceOff()
	}
	if r.Method != http.MethodPost {
		return oauthFail(http.StatusMethodNotAllowed, "invalid_request", "Use POST.", errMethod(r.Method))
	}
	if err := parseSmallForm(w, r); err != nil {
		return oauthFail(http.StatusBadRequest, "invalid_request", "The request could not be read.", err)
	}
	return nil
}

// deviceAuthorize is POST /oauth2/device/authorize (RFC 8628 §3.1–3.2).
func (h *Handler) deviceAuthorize(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := h.deviceForm(w, r); err != nil {
		return err
	}
	if !h.deviceStarts.allow(rq.client.ip, h.now()) {
		return &httpError{Code: http.StatusTooManyRequests, Msg: "Too many device requests; try again in a minute.", retryAfter: 60,
			Err: errors.New("device authorization rate limited"), body: oauthError{Error: "slow_down", Description: "Too many device requests; try again in a minute."}}
	}
	g := &session.DeviceGrant{ClientID: truncate(r.PostForm.Get("client_id"), 64), Scope: truncate(r.PostForm.Get("scope"), 256),
		Source: rq.client.ip, UserAgent: truncate(r.UserAgent(), 160)}
	dc, err := h.devices.Start(r.Context(), g, h.device.CodeLifetime, h.device.Interval)
	if err != nil {
		return oauthFail(http.StatusServiceUnavailable, "temporarily_unavailable", "Device sign-in is unavailable right now.", err)
	}
	h.audit(r, rq, "device_requested", nil, slog.String("client_id", g.ClientID), slog.String("user_code", session.FormatUserCode(g.UserCode)))
	verify := h.public.String() + h.prefix + "/device"
	tokenAnswer(w)
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code":               dc,
		"user_code":                 session.FormatUserCode(g.UserCode),
		"verification_uri":          verify,
		"verification_uri_complete": verify + "?user_code=" + url.QueryEscape(session.FormatUserCode(g.UserCode)),
		"expires_in":                int(h.device.CodeLifetime / time.Second),
		"interval":                  int(h.device.Interval / time.Second),
	})
	return nil
}

// deviceToken is POST /oauth2/device/token (RFC 8628 §3.4–3.5).
func (h *Handler) deviceToken(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := h.deviceForm(w, r); err != nil {
		return err
	}
	if gt := r.PostForm.Get("grant_type"); gt != grantType {
		return oauthFail(http.StatusBadRequest, "unsupported_grant_type", "Only the device code grant is served here.", fmt.Errorf("grant_type %q", truncate(gt, 64)))
	}
	tokenAnswer(w)
	p, err := h.devices.Poll(r.Context(), r.PostForm.Get("device_code"))
	switch {
	case errors.Is(err, session.ErrGrantExpired):
		return oauthFail(http.StatusBadRequest, "expired_token", "The device code has expired; start again.", err)
	case errors.Is(err, session.ErrGrantGone):
		return oauthFail(http.StatusBadRequest, "invalid_grant", "The device code is not valid (or was used already).", err)
	case err != nil:
		return oauthFail(http.StatusServiceUnavailable, "temporarily_unavailable", "Device sign-in is unavailable right now.", err)
	}
	switch p.Status {
	case session.GrantPending:
		return oauthFail(http.StatusBadRequest, "authorization_pending", "Waiting for the user to approve.", errors.New("pending"))
	case session.GrantSlowDown:
		return oauthFail(http.StatusBadRequest, "slow_down", fmt.Sprintf("Polling too fast: wait %d seconds between polls.", int(p.Interval/time.Second)), errors.New("slow down"))
	case session.GrantDenied:
		return oauthFail(http.StatusBadRequest, "access_denied", "The user denied the request.", errors.New("denied"))
	}
	return h.issueDeviceToken(w, r, rq, p.Session, p.Grant)
}

// issueDeviceToken turns the approving user's session into the device's:
// the identity, the provider and its session id (so back-channel logout
// ends it), no provider token, its own lifetime.
func (h *Handler) issueDeviceToken(w http.ResponseWriter, r *http.Request, rq *request, approver *session.Session, g *session.DeviceGrant) error {
	now := h.now()
	s := &session.Session{Identity: approver.Identity, Provider: approver.Provider, SID: approver.SID,
		ExpiresAt: now.Add(h.device.Lifetime), LastSeen: now}
	label := "device grant from " + g.Source
	if g.ClientID != "" {
		label = g.ClientID + ", " + label
	}
	if g.UserAgent != "" {
		label += " (" + g.UserAgent + ")"
	}
	token, err := h.sessions.IssueToken(r.Context(), s, label)
	if err != nil {
		return oauthFail(http.StatusServiceUnavailable, "temporarily_unavailable", "Device sign-in is unavailable right now.", err)
	}
	rq.user = h.userValue(s)
	h.audit(r, rq, "device_token_issued", s)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": deviceTokenPrefix + token,
		"token_type":   "Bearer",
		"expires_in":   int(s.ExpiresAt.Sub(now) / time.Second),
	})
	return nil
}

// deviceSession is the session a device token names, for a route that
// takes them. A token that is not valid is a 401 for a bearer client
// (RFC 6750 §3.1).
func (h *Handler) deviceSession(r *http.Request, token string) (*session.Session, error) {
	s, err := h.sessions.LoadToken(r.Context(), strings.TrimPrefix(token, deviceTokenPrefix))
	switch {
	case session.IsAbsent(err):
		return nil, &httpError{Code: http.StatusUnauthorized, Msg: "The token is not valid (expired or revoked): sign in again.", Err: err, bearer: true}
	case err != nil:
		return nil, errorf(http.StatusServiceUnavailable, "Sessions are unavailable right now. Please try again shortly.", err)
	}
	return s, nil
}

// revoke is POST /oauth2/revoke (RFC 7009) for device tokens: 200 whether
// or not the token was valid (§2.2), so it reveals nothing.
func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := h.deviceForm(w, r); err != nil {
		return err
	}
	token := r.PostForm.Get("token")
	if strings.HasPrefix(token, deviceTokenPrefix) {
		s, _ := h.sessions.LoadToken(r.Context(), token[len(deviceTokenPrefix):])
		if err := h.sessions.RevokeToken(r.Context(), token[len(deviceTokenPrefix):]); err != nil {
			// §2.2.1: the server could not revoke it; the client may retry.
			return oauthFail(http.StatusServiceUnavailable, "temporarily_unavailable", "The token could not be revoked right now.", err)
		}
		if s != nil {
			rq.user = h.userValue(s)
			h.audit(r, rq, "device_token_revoked", s)
		}
	}
	tokenAnswer(w)
	w.WriteHeader(http.StatusOK)
	return nil
}

// parseSmallForm reads an urlencoded body of at most 8 KiB.
func parseSmallForm(w http.ResponseWriter, r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		return fmt.Errorf("content type %q, want application/x-www-form-urlencoded", truncate(ct, 64))
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	return r.ParseForm()
}

// tokenAnswer marks a token endpoint's answer uncacheable (RFC 6749 §5.1).
func tokenAnswer(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// rateLimit counts attempts per key and in all within a sliding minute
// (two fixed windows, weighted), bounded in the keys it remembers.
type rateLimit struct {
	mu        sync.Mutex
	perKey    int
	total     int
	window    time.Time // start of the current minute
	cur, prev map[string]int
	curAll    int
	prevAll   int
}

func newRateLimit(perKey, total int) *rateLimit {
	return &rateLimit{perKey: perKey, total: total, cur: map[string]int{}, prev: map[string]int{}}
}

// allow counts one attempt by key at now and reports whether it is
// within both limits.
func (l *rateLimit) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := now.Truncate(time.Minute)
	switch {
	case start.Sub(l.window) >= 2*time.Minute:
		l.prev, l.prevAll = map[string]int{}, 0
		l.cur, l.curAll, l.window = map[string]int{}, 0, start
	case start.After(l.window):
		l.prev, l.prevAll = l.cur, l.curAll
		l.cur, l.curAll, l.window = map[string]int{}, 0, start
	}
	// The previous minute counts for the part of it still in the last 60s.
	weight := 1 - float64(now.Sub(start))/float64(time.Minute)
	if float64(l.curAll)+weight*float64(l.prevAll) >= float64(l.total) {
		return false
	}
	if float64(l.cur[key])+weight*float64(l.prev[key]) >= float64(l.perKey) {
		return false
	}
	if len(l.cur) >= 100_000 {
		return false // more sources in a minute than we remember: refuse, fail closed
	}
	l.cur[key]++
	l.curAll++
	return true
}
