package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// decide.go is the one decision core: every mode (reverse proxy, nginx
// auth_request, Traefik/Caddy forward-auth, Envoy ext_authz) turns its
// request into a target, asks authorize, and only renders the answer its
// own way.

// access is the outcome of authenticating and authorising one target.
type access struct {
	session *session.Session // nil when not signed in
	d       decision
}

// authorize finds who is asking (the session, if any) and what the policy
// says about t for them. narrow, when set, must also admit the identity
// (forward-auth's per-request allowed_* parameters can only narrow).
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, rq *request, t target, narrow []*rule) (access, error) {
	overrides := overrideMethods(r)
	d := h.alsoFor(h.policy.decide(t.host, t.method, t.path, nil), t, nil, overrides)
	if d.public {
		// A public route needs no session; a signed-in user's identity is
		// still passed on, but a store failure must not break the route.
		s, _ := h.loadSession(r)
		rq.rule, rq.why = d.rule, d.why
		return access{session: s, d: d}, nil
	}
	if d.route != nil && !d.allow && !d.signIn {
		rq.rule, rq.why = d.rule, d.why // e.g. the method is not listed: signing in will not help
		return access{d: d}, nil
	}
	var s *session.Session
	if token, ok := bearerToken(r); ok && d.route != nil && d.route.bearer {
		if s, err := h.bearerSession(r, token); err != nil {
			return access{}, err
		} else {
			return h.authorizeIdentity(rq, t, s, narrow, overrides), nil
		}
	}
	s, err := h.loadSession(r)
	if err != nil {
		return access{}, err
	}
	if s != nil {
		if s, err = h.maintain(w, r, rq, s); err != nil {
			return access{}, err
		}
	}
	if s != nil && d.pinned() != "" && s.Provider != d.pinned() {
		// Signed in, but with another provider than the route requires:
		// for this route that is not signed in.
		rq.rule = d.route.name + ": requires provider " + d.pinned()
		return access{d: d}, nil
	}
	if s == nil {
		rq.rule, rq.why = d.rule, d.why
		return access{d: d}, nil
	}
	return h.authorizeIdentity(rq, t, s, narrow, overrides), nil
}

// overrideMethods returns the methods the request's method-override
// headers name, upper-cased.
func overrideMethods(r *http.Request) []string {
	var out []string
	for k, vs := range r.Header {
		if !methodOverrideHeaders.has(k) {
			continue
		}
		for _, v := range vs {
			out = append(out, strings.ToUpper(strings.TrimSpace(v)))
		}
	}
	return out
}

// alsoFor narrows a decision: every method in others must be allowed too.
func (h *Handler) alsoFor(d decision, t target, id *session.Identity, others []string) decision {
	for _, m := range others {
		if !d.allow {
			return d
		}
		if !isMethod(m) {
			return decision{route: d.route, rule: "method override " + strconv.Quote(truncate(m, 16)) + " is not a method"}
		}
		if d2 := h.policy.decide(t.host, m, t.path, id); !d2.allow {
			d2.signIn = false
			d2.rule, d2.why = "method override "+m+": "+d2.text(), ""
			return d2
		}
	}
	return d
}

// authorizeIdentity asks the policy about t for a known identity.
func (h *Handler) authorizeIdentity(rq *request, t target, s *session.Session, narrow []*rule, overrides []string) access {
	rq.user = h.userValue(s)
	d := h.alsoFor(h.policy.decide(t.host, t.method, t.path, &s.Identity), t, &s.Identity, overrides)
	if d.allow {
		for _, n := range narrow {
			if ok, _ := n.allows(&s.Identity); !ok {
				d = decision{route: d.route, rule: "narrowed by " + n.name}
				break
			}
		}
	}
	rq.rule, rq.why = d.rule, d.why
	return access{session: s, d: d}
}

// bearerToken returns the token of an Authorization: Bearer header
// (RFC 6750 §2.1; the scheme is case-insensitive).
func bearerToken(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "Bearer ") {
		return "", false
	}
	return strings.TrimSpace(v[7:]), true
}

// BearerVerifier checks machine clients' tokens (providers.BearerVerifier).
type BearerVerifier interface {
	Verify(ctx context.Context, token string) (*session.Identity, error)
}

// bearerSession verifies a bearer token into a session that lives for this
// request only. A refused token is a 401 with WWW-Authenticate (RFC 6750
// §3.1), never a redirect.
func (h *Handler) bearerSession(r *http.Request, token string) (*session.Session, error) {
	if h.bearer == nil {
		return nil, &httpError{Code: http.StatusUnauthorized, Msg: "Bearer tokens are not configured on this gateway.",
			Err: errors.New("bearer token on a bearer route, but no bearer section"), bearer: true}
	}
	id, err := h.bearer.Verify(r.Context(), token)
	switch {
	case errors.Is(err, providers.ErrUnavailable):
		return nil, errorf(http.StatusServiceUnavailable, "The token issuer cannot be reached right now. Please try again shortly.", err)
	case err != nil:
		return nil, &httpError{Code: http.StatusUnauthorized, Msg: "The bearer token is not valid.", Err: err, bearer: true}
	}
	return &session.Session{Identity: *id}, nil
}

// denied is the error for an identity the policy turned away.
func (h *Handler) denied(a access) error {
	msg := "You are signed in, but not allowed to use this application."
	if a.session == nil {
		msg = "This request is not allowed."
	}
	if a.d.route != nil && a.d.route.denyMessage != "" {
		msg = a.d.route.denyMessage
	}
	sub := "-"
	if a.session != nil {
		sub = a.session.Subject
	}
	return &httpError{Code: http.StatusForbidden, Msg: msg, Err: fmt.Errorf("denied %s by %s", sub, a.d.text())}
}

// errNoSession marks 401s for requests without a session.
var errNoSession = errors.New("no session")

// recordDecision counts the decision, and audits denials of signed-in
// users with the rule that denied them.
func (h *Handler) recordDecision(r *http.Request, rq *request, a access) {
	outcome := a.outcomeLabel()
	h.metrics.decision(outcome, a.d.ruleLabel())
	if outcome == "denied" {
		h.audit(r, rq, "denied", a.session, slog.String("route", rq.route), slog.String("rule", a.d.text()))
	}
}
