package proxy

import (
	"errors"
	"fmt"
	"net/http"

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
func (h *Handler) authorize(r *http.Request, rq *request, t target, narrow []*rule) (access, error) {
	d := h.policy.decide(t.host, t.method, t.path, nil)
	if d.public {
		// A public route needs no session; a signed-in user's identity is
		// still passed on, but a store failure must not break the route.
		s, _ := h.loadSession(r)
		rq.rule = d.rule
		return access{session: s, d: d}, nil
	}
	if d.route != nil && !d.allow && !d.signIn {
		rq.rule = d.rule // e.g. the method is not listed: signing in will not help
		return access{d: d}, nil
	}
	s, err := h.loadSession(r)
	if err != nil {
		return access{}, err
	}
	if s == nil {
		rq.rule = d.rule
		return access{d: d}, nil
	}
	rq.user = h.userValue(s)
	d = h.policy.decide(t.host, t.method, t.path, &s.Identity)
	if d.allow {
		for _, n := range narrow {
			if ok, _ := n.allows(&s.Identity); !ok {
				d = decision{route: d.route, rule: "narrowed by " + n.name}
				break
			}
		}
	}
	rq.rule = d.rule
	return access{session: s, d: d}, nil
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
	return &httpError{Code: http.StatusForbidden, Msg: msg, Err: fmt.Errorf("denied %s by %s", sub, a.d.rule)}
}

// errNoSession marks 401s for requests without a session.
var errNoSession = errors.New("no session")
