package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics.go counts what the gateway does, for Prometheus on a listener of
// its own (metrics.listen). Labels never carry user ids, emails or paths:
// routes are the configured prefixes, rules the configured route names,
// reasons a fixed vocabulary.

// Metrics are the gateway's collectors. A nil *Metrics records nothing.
type Metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	decisions *prometheus.CounterVec
	signIns   *prometheus.CounterVec
	refreshes *prometheus.CounterVec
	signOuts  *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	revokes   *prometheus.CounterVec
	exprErrs  *prometheus.CounterVec
}

// NewMetrics registers the gateway's collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_requests_total",
			Help: "Requests answered, by route (configured upstream prefix or endpoint), mode (proxy, auth, endpoint) and status code.",
		}, []string{"route", "mode", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_request_duration_seconds",
			Help:    "Time to answer a request, upstream included, by mode.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"mode"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_auth_decisions_total",
			Help: "Authorisation decisions by outcome (allowed, public, denied, unauthenticated) and rule (the deciding policy route, or default).",
		}, []string{"outcome", "rule"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_sign_ins_total",
			Help: "Completed sign-ins (result success) and failed ones by reason.",
		}, []string{"provider", "result"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_session_refreshes_total",
			Help: "Session refreshes at the provider by result (success, rejected, unavailable, bad_response, store_unavailable, busy).",
		}, []string{"provider", "result"}),
		signOuts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_sessions_ended_total",
			Help: "Sessions ended, by how (sign_out, backchannel_logout, frontchannel_logout, admin, idle, refresh_refused).",
		}, []string{"how"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_identity_values_dropped_total",
			Help: "Identity values left out of upstream headers at sign-in and refresh because an upstream would read them as other values (a group with a comma, a value with edge whitespace), by field (user, email, preferred_username, group).",
		}, []string{"field"}),
		revokes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_token_revocations_total",
			Help: "Token revocations at sign-out (RFC 7009) by provider and result (revoked, failed: the provider refused or answered garbage, unavailable: it could not be reached).",
		}, []string{"provider", "result"}),
		exprErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_policy_expr_errors_total",
			Help: "Policy expressions that failed to evaluate (and so denied), by rule (the policy route, or default).",
		}, []string{"rule"}),
	}
	reg.MustRegister(m.requests, m.duration, m.decisions, m.signIns, m.refreshes, m.signOuts, m.dropped, m.revokes, m.exprErrs)
	return m
}

func (m *Metrics) request(route, mode string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, mode, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(mode).Observe(d.Seconds())
}

func (m *Metrics) decision(outcome, rule string) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(outcome, rule).Inc()
}

func (m *Metrics) exprError(rule string) {
	if m == nil {
		return
	}
	m.exprErrs.WithLabelValues(rule).Inc()
}

func (m *Metrics) signIn(provider, result string) {
	if m == nil {
		return
	}
	m.signIns.WithLabelValues(provider, result).Inc()
}

func (m *Metrics) refresh(provider, result string) {
	if m == nil {
		return
	}
	m.refreshes.WithLabelValues(provider, result).Inc()
}

func (m *Metrics) ended(how string) {
	if m == nil {
		return
	}
	m.signOuts.WithLabelValues(how).Inc()
}

// InstrumentTransport times calls to an identity provider, for
// portcullis_provider_request_duration_seconds. The returned function
// wraps a provider's own transport (its ca_file's), or base when it has
// none.
func InstrumentTransport(reg prometheus.Registerer, base http.RoundTripper) func(provider string, own http.RoundTripper) http.RoundTripper {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "portcullis_provider_request_duration_seconds",
		Help:    "Calls to identity providers (discovery, keys, token, userinfo, APIs), by provider and outcome.",
		Buckets: prometheus.DefBuckets,
	}, []string{"provider", "outcome"})
	reg.MustRegister(h)
	if base == nil {
		base = http.DefaultTransport
	}
	return func(provider string, own http.RoundTripper) http.RoundTripper {
		rt := base
		if own != nil {
			rt = own
		}
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			start := time.Now()
			resp, err := rt.RoundTrip(r)
			outcome := "error"
			if err == nil {
				outcome = strconv.Itoa(resp.StatusCode/100) + "xx"
			}
			h.WithLabelValues(provider, outcome).Observe(time.Since(start).Seconds())
			return resp, err
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (m *Metrics) identityDropped(field string) {
	if m == nil {
		return
	}
	m.dropped.WithLabelValues(field).Inc()
}

func (m *Metrics) revocation(provider, result string) {
	if m == nil {
		return
	}
	m.revokes.WithLabelValues(provider, result).Inc()
}
