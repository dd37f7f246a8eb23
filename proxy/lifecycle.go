package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// lifecycle.go keeps a loaded session valid exactly as long as it should
// be: idle timeout, token refresh before expiry (once across replicas),
// re-sealing cookies under a new secret, and the last-seen mark.

// maintain returns the session to use for this request, or nil when it
// has ended (idle, or the provider revoked it).
func (h *Handler) maintain(w http.ResponseWriter, r *http.Request, rq *request, s *session.Session) (*session.Session, error) {
	now := rq.start // this request's clock reading: one fewer per request
	if now.IsZero() {
		now = h.now()
	}
	if h.idle > 0 {
		last := s.LastSeen
		if last.IsZero() {
			last = s.CreatedAt
		}
		if now.Sub(last) > h.idle {
			h.endSession(w, r, rq, s, "idle", "idle timeout")
			return nil, nil
		}
	}
	if h.refreshDue(s, now) {
		next, err := h.refresh(w, r, s)
		switch {
		case err == nil:
			h.backoff.ok(backoffKey(s), providerBackoffKey(s.Provider))
			h.metrics.refresh(s.Provider, "success")
			h.audit(r, rq, "refresh", next)
			h.noteAmbiguous(r.Context(), rq, next, "refresh")
			return next, nil // saved by the store, cookies re-issued
		case errors.Is(err, providers.ErrRejected), errors.Is(err, providers.ErrInvalidToken),
			errors.Is(err, providers.ErrUnverifiedEmail), errors.Is(err, providers.ErrNotAdmitted):
			// invalid_grant and friends: the provider no longer vouches
			// for this session.
			h.metrics.refresh(s.Provider, "rejected")
			h.endSession(w, r, rq, s, "refresh_refused", "refresh refused: "+err.Error())
			return nil, nil
		case errors.Is(err, providers.ErrBadResponse):
			// The provider answered garbage: not an outage, and nothing
			// it vouches for either; keep the session until it ends on
			// its own and try again later, as for an outage.
			h.metrics.refresh(s.Provider, "bad_response")
			h.audit(r, rq, "refresh_failed", s, slog.String("reason", "provider_bad_response"))
			delay := h.backoff.fail(backoffKey(s), now)
			h.log.LogAttrs(r.Context(), slog.LevelWarn, "session refresh got an unusable answer; keeping the session", slog.String("id", rq.id),
				slog.String("sub", s.Subject), slog.Any("err", err), slog.Duration("retry_in", delay))
		case errors.Is(err, session.ErrUnavailable):
			// Redis could not take the refreshed session (down, full):
			// the provider is fine, so only this session waits.
			h.metrics.refresh(s.Provider, "store_unavailable")
			delay := h.backoff.fail(backoffKey(s), now)
			h.log.LogAttrs(r.Context(), slog.LevelWarn, "session refresh could not be stored; keeping the session", slog.String("id", rq.id),
				slog.String("sub", s.Subject), slog.Any("err", err), slog.Duration("retry_in", delay))
		case errors.Is(err, session.ErrRefreshBusy):
			// Another replica is refreshing; this request goes on with
			// the session it has.
			h.metrics.refresh(s.Provider, "busy")
		default:
			// The provider is unreachable: keep the session until it ends
			// on its own, and try again later.
			h.metrics.refresh(s.Provider, "unavailable")
			h.audit(r, rq, "refresh_failed", s, slog.String("reason", "provider_unavailable"))
			delay := h.backoff.fail(backoffKey(s), now)
			// And every session of this provider waits a while: during
			// an outage, requests do not each pay for a failed attempt.
			h.backoff.failProvider(providerBackoffKey(s.Provider), now)
			h.log.LogAttrs(r.Context(), slog.LevelWarn, "session refresh failed; keeping the session", slog.String("id", rq.id),
				slog.String("sub", s.Subject), slog.Any("err", err), slog.Duration("retry_in", delay))
		}
	}
	if s.SealedWithOldKey() || (h.idle > 0 && now.Sub(s.LastSeen) > h.touchEvery) {
		s.LastSeen = now
		if err := h.sessions.Save(w, r, s); err != nil {
			h.log.LogAttrs(r.Context(), slog.LevelWarn, "could not update the session", slog.String("id", rq.id), slog.Any("err", err))
		}
	}
	return s, nil
}

// endSession clears a session the gateway no longer honours.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request, rq *request, s *session.Session, how, why string) {
	if err := h.sessions.Clear(w, r); err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "could not clear the session", slog.String("id", rq.id), slog.Any("err", err))
	}
	h.metrics.ended(how)
	h.audit(r, rq, "session_ended", s, slog.String("reason", why))
}

// refreshDue says whether s should be refreshed now.
func (h *Handler) refreshDue(s *session.Session, now time.Time) bool {
	if s.RefreshToken == "" || s.TokenExpiry.IsZero() || now.Before(s.TokenExpiry.Add(-h.refreshBefore)) {
		return false
	}
	return h.backoff.ready(backoffKey(s), now) && h.backoff.ready(providerBackoffKey(s.Provider), now)
}

// refresh runs the provider's refresh at most once at a time for s, across
// replicas when the store is shared.
func (h *Handler) refresh(w http.ResponseWriter, r *http.Request, s *session.Session) (*session.Session, error) {
	p, _ := h.providers.Get(s.Provider).(providers.Refresher)
	if p == nil {
		// GitHub issues no refresh tokens; a provider removed from the
		// configuration can refresh nothing either.
		return nil, fmt.Errorf("provider %q cannot refresh sessions", s.Provider)
	}
	ctx, traced := h.traceRefresh(r.Context(), s)
	start, ran := time.Now(), false
	next, err := h.sessions.RefreshOnce(ctx, w, r, s, func(ctx context.Context, cur *session.Session) (*session.Session, error) {
		ran = true
		if h.tracer != nil {
			lockWaited(ctx, start)
		}
		next, err := p.Refresh(ctx, cur)
		if err != nil {
			return nil, err
		}
		next.LastSeen = h.now()
		h.keepNeededTokens(ctx, next)
		return next, nil
	})
	traced(ran, err)
	return next, err
}

func backoffKey(s *session.Session) string {
	return s.Issuer + "\x00" + s.Subject + "\x00" + strconv.FormatInt(s.CreatedAt.Unix(), 10)
}

// providerBackoffKey is a provider's entry in refreshBackoff; no session
// key starts with NUL.
func providerBackoffKey(provider string) string { return "\x00provider\x00" + provider }

// refreshBackoff spaces out refresh attempts for a session whose provider
// failed: 5s, doubling up to 5m. Bounded; forgets entries once they are due.
// A provider that is unreachable gets an entry of its own, 5s doubling up
// to 30s, which holds back the refreshes of all its sessions; the first
// success clears it. A session is never ended for want of a refresh, nor
// kept past its own expiry.
type refreshBackoff struct {
	mu    sync.Mutex
	tries map[string]backoffState
}

type backoffState struct {
	next  time.Time
	delay time.Duration
}

func (b *refreshBackoff) ready(key string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.tries[key]
	return !ok || !now.Before(st.next)
}

func (b *refreshBackoff) fail(key string, now time.Time) time.Duration {
	return b.failUpTo(key, now, 5*time.Minute)
}

func (b *refreshBackoff) failProvider(key string, now time.Time) time.Duration {
	return b.failUpTo(key, now, 30*time.Second)
}

// ok forgets the keys after a success, so the next failure starts short.
func (b *refreshBackoff) ok(keys ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		delete(b.tries, k)
	}
}

func (b *refreshBackoff) failUpTo(key string, now time.Time, limit time.Duration) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tries == nil {
		b.tries = map[string]backoffState{}
	}
	if len(b.tries) > 100_000 {
		for k, st := range b.tries {
			if now.After(st.next.Add(10 * time.Minute)) {
				delete(b.tries, k)
			}
		}
	}
	st := b.tries[key]
	st.delay = min(max(st.delay*2, 5*time.Second), limit)
	st.next = now.Add(st.delay)
	b.tries[key] = st
	return st.delay
}
