package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// tokens.go: sessions that travel as a bearer token instead of a cookie,
// which is what the gateway's device authorization grant issues (RFC 8628
// §3.5: the access token). A token is what the store's cookie would hold
// for the session, sealed under its own name, so a cookie value is never a
// token and a token never a cookie value; it opens, expires and is revoked
// like the store's other sessions.

// tokenName is the securecookie name tokens are sealed under, in place of
// the cookie's name. securecookie MACs the name with the value, so the two
// cannot be swapped.
const tokenName = "portcullis-token"

// maxToken bounds a token before any work on it: a sealed cookie session
// fits in the cookie chunks (cookie.go), a sealed ticket in 512 bytes.
const maxToken = 16 << 10

// Tokens issues and opens sessions named by a bearer token. Both stores
// implement it: the cookie store's token is the sealed session itself
// (revoking it is known to this replica only, like a cookie's sign-out);
// the Redis store's names a record in Redis, which every replica sees
// deleted at once.
type Tokens interface {
	// IssueToken stores s as a session of its own, apart from any cookie,
	// and returns the token naming it.
	// label says in the admin list what holds it (the Redis store's
	// metadata, in place of a browser's User-Agent).
	IssueToken(ctx context.Context, s *Session, label string) (string, error)
	// LoadToken returns the session token names. Its errors are Load's:
	// ErrInvalidSession for a token that is forged, expired or revoked,
	// ErrUnavailable when Redis cannot be reached.
	LoadToken(ctx context.Context, token string) (*Session, error)
	// RevokeToken ends the session token names; an invalid token is no
	// error (there is nothing to end).
	RevokeToken(ctx context.Context, token string) error
}

var (
	_ Tokens = (*CookieStore)(nil)
	_ Tokens = (*RedisStore)(nil)
)

func tokenShape(token string) error {
	if token == "" || len(token) > maxToken || strings.ContainsAny(token, " ,;\"\\") {
		return fmt.Errorf("%w: not a token", ErrInvalidSession)
	}
	return nil
}

// IssueToken implements Tokens.
func (c *CookieStore) IssueToken(_ context.Context, s *Session, _ string) (string, error) {
	now := c.now()
	s.CreatedAt = now
	s.ID = newSessionID()
	if s.ExpiresAt.IsZero() || s.ExpiresAt.Sub(s.CreatedAt) > c.lifetime {
		s.ExpiresAt = s.CreatedAt.Add(c.lifetime)
	}
	s.LastSeen = now
	value, err := c.codecs[0].Encode(tokenName, s)
	if err != nil {
		return "", fmt.Errorf("session: sealing token: %w", err)
	}
	return value, nil
}

// LoadToken implements Tokens.
func (c *CookieStore) LoadToken(_ context.Context, token string) (*Session, error) {
	if err := tokenShape(token); err != nil {
		return nil, err
	}
	s := new(Session)
	var err error
	for _, codec := range c.codecs {
		if err = codec.Decode(tokenName, token, s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSession, err)
	}
	if err := c.check(s, c.now()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSession, err)
	}
	if err := c.revoked.check(s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSession, err)
	}
	return s, nil
}

// RevokeToken implements Tokens: this replica refuses the token from now
// on; other replicas cannot know (say so wherever it matters).
func (c *CookieStore) RevokeToken(ctx context.Context, token string) error {
	s, err := c.LoadToken(ctx, token)
	if err != nil {
		if IsAbsent(err) {
			return nil
		}
		return err
	}
	c.revoked.end(s, c.now())
	return nil
}

// IssueToken implements Tokens: a new record under a fresh ticket, as at
// a sign-in, without a cookie. It joins the user's index (listed and
// revoked with the user's other sessions) and claims its provider session
// id, so back-channel logout of that provider session ends it too.
func (s *RedisStore) IssueToken(ctx context.Context, sess *Session, label string) (string, error) {
	now := s.now()
	sess.CreatedAt, sess.handle = now, nil
	ttl, err := s.bound(sess, now)
	if err != nil {
		return "", err
	}
	tag := userTag(sess.Issuer, sess.Subject)
	t, err := newTicket(tag)
	if err != nil {
		return "", err
	}
	n := s.names(tag, t.hash())
	data, meta, err := s.seal(sess, t, n, truncateUA(label), now)
	if err != nil {
		return "", err
	}
	if sess.SID != "" {
		if err := s.claimSID(ctx, sess, n); err != nil {
			return "", err
		}
	}
	if err := s.writeRecord(ctx, n, data, meta, ttl, sess.CreatedAt, sess.ExpiresAt, now, false, ""); err != nil {
		return "", err
	}
	if sess.SID != "" {
		if err := s.checkSID(ctx, sess, n, t); err != nil {
			return "", err
		}
	}
	token, err := s.codecs[0].Encode(tokenName, t)
	if err != nil {
		return "", fmt.Errorf("session: sealing token: %w", err)
	}
	sess.handle = t
	return token, nil
}

// tokenTicket opens the ticket a token carries.
func (s *RedisStore) tokenTicket(token string) (*ticket, error) {
	if err := tokenShape(token); err != nil {
		return nil, err
	}
	if len(token) > maxTicketCookie {
		return nil, fmt.Errorf("%w: token too long", ErrInvalidSession)
	}
	t := new(ticket)
	var err error
	for _, codec := range s.codecs {
		if err = codec.Decode(tokenName, token, t); err == nil {
			return t, nil
		}
	}
	return nil, fmt.Errorf("%w: %v", ErrInvalidSession, err)
}

// LoadToken implements Tokens, through the same cache as Load.
func (s *RedisStore) LoadToken(ctx context.Context, token string) (*Session, error) {
	t, err := s.tokenTicket(token)
	if err != nil {
		return nil, err
	}
	return s.loadTicket(ctx, t, s.now())
}

// RevokeToken implements Tokens: the record is deleted and every
// replica's cache told.
func (s *RedisStore) RevokeToken(ctx context.Context, token string) error {
	t, err := s.tokenTicket(token)
	if err != nil {
		if errors.Is(err, ErrInvalidSession) {
			return nil
		}
		return err
	}
	_, err = s.deleteTicket(ctx, t.tag, t.hash())
	return err
}
