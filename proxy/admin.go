package proxy

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/portcullis/portcullis/session"
)

// admin.go is the session admin API, served on its own listener
// (admin.listen) and never on the public one:
//
//	GET    /admin/sessions?user=SUB[&provider=ID|&issuer=ISS]  list a user's sessions (no tokens)
//	DELETE /admin/sessions?user=SUB[&provider=ID]        revoke all of them
//	DELETE /admin/sessions/{id}?user=SUB[&provider=ID]   revoke one
//
// Every call needs Authorization: Bearer <admin token>. Revocations reach
// every replica within a second in Redis mode (pub/sub); in cookie mode
// they are kept by the replica that receives them.

// AdminConfig is the `admin` section.
type AdminConfig struct {
	// Listen is the admin API's address; empty disables it. Keep it off
	// public networks.
	Listen string `yaml:"listen"`
	// TokenFile holds the bearer token callers must present (at least 32
	// characters). main reads it into Token.
	TokenFile string `yaml:"token_file"`
	Token     string `yaml:"-"`
}

// Validate checks the section: a listener needs a token, and the token
// must be long enough.
func (c AdminConfig) Validate() error {
	switch {
	case c.Listen == "":
		return nil
	case c.TokenFile == "":
		return errors.New("admin.token_file is required when admin.listen is set")
	}
	return checkAdminToken(c.Token)
}

func checkAdminToken(token string) error {
	if len(strings.TrimSpace(token)) < 32 {
		return errors.New("admin.token_file: the token must be at least 32 characters (openssl rand -hex 32)")
	}
	return nil
}

// Admin serves the admin API.
type Admin struct {
	h     *Handler
	token []byte
}

// NewAdmin builds the admin API. token is the contents of token_file.
func NewAdmin(token string, h *Handler) (*Admin, error) {
	if err := checkAdminToken(token); err != nil {
		return nil, err
	}
	return &Admin{h: h, token: []byte(strings.TrimSpace(token))}, nil
}

func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	status, err := a.serve(w, r)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	a.h.log.LogAttrs(r.Context(), level, "admin", slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.String("user", r.URL.Query().Get("user")), slog.Int("status", status), slog.Duration("dur", time.Since(start)),
		slog.String("remote", remoteIP(r)), slog.Any("err", err))
}

// adminCall is one authenticated admin request: whose sessions, and which
// one ("" for all).
type adminCall struct {
	w           http.ResponseWriter
	r           *http.Request
	issuer, sub string
	id          string
}

func (c adminCall) reply(code int, v any) (int, error) {
	writeJSON(c.w, code, v)
	return code, nil
}

func (c adminCall) problem(code int, msg string, err error) (int, error) {
	writeJSON(c.w, code, map[string]string{"error": errorCode(code), "message": msg})
	return code, err
}

func (a *Admin) serve(w http.ResponseWriter, r *http.Request) (int, error) {
	c := adminCall{w: w, r: r}
	auth := r.Header.Get("Authorization")
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "Bearer ") ||
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(auth[7:])), a.token) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis-admin"`)
		return c.problem(http.StatusUnauthorized, "A valid admin token is required.", errors.New("bad admin token"))
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/admin/sessions")
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		return c.problem(http.StatusNotFound, "Unknown admin endpoint.", nil)
	}
	c.id = strings.TrimPrefix(rest, "/")
	q := r.URL.Query()
	if c.sub = q.Get("user"); c.sub == "" {
		return c.problem(http.StatusBadRequest, "Name the user: ?user=<subject>.", nil)
	}
	issuer, err := a.issuer(q.Get("provider"))
	if err != nil {
		return c.problem(http.StatusBadRequest, err.Error(), nil)
	}
	c.issuer = issuer
	if iss := q.Get("issuer"); iss != "" {
		// Sessions are keyed by the token's issuer, which can differ from
		// the provider's (a multi-tenant Entra app: each tenant's own).
		c.issuer = iss
	}
	switch {
	case r.Method == http.MethodGet && c.id == "":
		return a.list(c)
	case r.Method == http.MethodDelete && c.id == "":
		return a.revokeUser(c)
	case r.Method == http.MethodDelete:
		return a.revokeOne(c)
	}
	w.Header().Set("Allow", "GET, DELETE")
	return c.problem(http.StatusMethodNotAllowed, "Use GET to list and DELETE to revoke.", nil)
}

// list is GET /admin/sessions: the user's sessions, without tokens.
func (a *Admin) list(c adminCall) (int, error) {
	if a.h.lister == nil {
		return c.problem(http.StatusNotImplemented, "Cookie sessions live in browsers and cannot be listed; use session.store: redis.", nil)
	}
	infos, err := a.h.lister.ListUser(c.r.Context(), c.issuer, c.sub)
	if err != nil {
		return c.problem(http.StatusServiceUnavailable, "Sessions cannot be listed right now.", err)
	}
	out := make([]map[string]any, 0, len(infos))
	for _, in := range infos {
		out = append(out, map[string]any{"id": in.ID, "created": in.CreatedAt.UTC(), "last_seen": in.LastSeen.UTC(),
			"expires": in.ExpiresAt.UTC(), "user_agent": in.UserAgent})
	}
	return c.reply(http.StatusOK, map[string]any{"user": c.sub, "issuer": c.issuer, "sessions": out})
}

// revokeUser is DELETE /admin/sessions: every session of the user.
func (a *Admin) revokeUser(c adminCall) (int, error) {
	n, err := a.h.sessions.RevokeUser(c.r.Context(), c.issuer, c.sub)
	if err != nil {
		return c.problem(http.StatusServiceUnavailable, "Sessions cannot be revoked right now.", err)
	}
	a.h.metrics.ended("admin")
	a.h.audit(c.r, nil, "revoked", nil, slog.String("issuer", c.issuer), slog.String("sub", c.sub), slog.Int("sessions", n))
	return c.reply(http.StatusOK, map[string]any{"user": c.sub, "issuer": c.issuer, "revoked": n})
}

// revokeOne is DELETE /admin/sessions/{id}: one session, by the id list
// gave.
func (a *Admin) revokeOne(c adminCall) (int, error) {
	if a.h.lister == nil {
		return c.problem(http.StatusNotImplemented, "Single cookie sessions cannot be revoked; revoke the user, or use session.store: redis.", nil)
	}
	err := a.h.lister.RevokeTicket(c.r.Context(), c.issuer, c.sub, c.id)
	switch {
	case errors.Is(err, session.ErrNoSession):
		return c.problem(http.StatusNotFound, "No such session for this user.", nil)
	case err != nil:
		return c.problem(http.StatusServiceUnavailable, "The session cannot be revoked right now.", err)
	}
	a.h.metrics.ended("admin")
	a.h.audit(c.r, nil, "revoked", nil, slog.String("issuer", c.issuer), slog.String("sub", c.sub), slog.String("session", c.id))
	return c.reply(http.StatusOK, map[string]any{"user": c.sub, "issuer": c.issuer, "revoked": 1})
}

// issuer resolves ?provider=ID, or the only provider.
func (a *Admin) issuer(id string) (string, error) {
	if id == "" {
		if p := a.h.providers.Only(); p != nil {
			return p.Issuer(), nil
		}
		return "", errors.New("several providers are configured: name one with ?provider=<id>")
	}
	if p := a.h.providers.Get(id); p != nil {
		return p.Issuer(), nil
	}
	return "", fmt.Errorf("no provider %q", id)
}
