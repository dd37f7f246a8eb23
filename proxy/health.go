package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/session"
)

// health.go answers the probes: /ping (the process is up) and /ready
// (sign-ins and sessions can work now).

func (h *Handler) ping(w http.ResponseWriter, r *http.Request, rq *request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("OK\n"))
	return nil
}

// ready reports whether every provider has been discovered and the session
// store answers. Problems are named, their causes logged.
func (h *Handler) ready(w http.ResponseWriter, r *http.Request, rq *request) error {
	if h.drain.draining.Load() {
		// Shutting down: take this replica out of rotation before it stops.
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "shutting down", "problems": []string{"shutting down"}})
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	var problems []string
	for _, p := range h.providers.All() {
		if err := p.Ready(ctx); err != nil {
			problems = append(problems, providerProblem(p.ID(), err))
			h.log.LogAttrs(ctx, slog.LevelWarn, "not ready", slog.String("provider", p.ID()),
				slog.String("cause", providers.Cause(err)), slog.Any("err", err))
		}
	}
	if pg, ok := h.sessions.(session.Pinger); ok {
		if err := pg.Ready(ctx); err != nil {
			problems = append(problems, "session store unavailable")
			h.log.LogAttrs(ctx, slog.LevelWarn, "not ready", slog.String("store", "session"), slog.Any("err", err))
		}
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "problems": problems})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	return nil
}

// providerProblem is what /ready says about a provider that is not ready:
// "misconfigured" for a configuration error the operator must fix,
// "unavailable" otherwise, each with the cause in plain words
// (providers.Cause: the kind of network failure, or the provider's
// answer; configured and discovered URLs, never a secret).
func providerProblem(id string, err error) string {
	if errors.Is(err, providers.ErrIssuerMismatch) {
		return "provider " + id + " misconfigured: " + providers.Cause(err)
	}
	return "provider " + id + " unavailable: " + providers.Cause(err)
}
