package proxy

import (
	"context"
	"net/http"
	"net/http/httputil"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis/portcullis/session"
)

// tracing.go traces requests when Options.Tracer is set (main's
// tracing.go builds it from the tracing section). Off, nothing here runs
// and a request costs what it did. On, each request is a server span
// whose parent is the W3C traceparent a trusted proxy sent (W3C Trace
// Context §3), never a client's: a client's traceparent and tracestate
// are removed, so it can neither join a trace nor reach the upstream as
// if the gateway had sent it. The request id is then the trace id. Spans
// name the route, the decision and the rule; never a token, a cookie or
// an email unless tracing.include_identity.

// traceHeaders are W3C Trace Context's request headers.
var traceHeaders = []string{"Traceparent", "Tracestate"}

var tracePropagator = propagation.TraceContext{}

// startSpan begins r's span; r is returned with the span in its context.
func (h *Handler) startSpan(r *http.Request, rq *request) (*http.Request, trace.Span) {
	ctx := r.Context()
	if h.trusted.trusts(r) {
		ctx = tracePropagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	for _, name := range traceHeaders {
		delete(r.Header, name)
	}
	ctx, span := h.tracer.Start(ctx, "request", trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		span.SetAttributes(attribute.String("http.request.method", r.Method), attribute.String("server.address", r.Host))
	}
	rq.id = span.SpanContext().TraceID().String()
	return r.WithContext(ctx), span
}

// endSpan names the span after what the request turned out to be and
// records how it was decided and answered.
func (h *Handler) endSpan(span trace.Span, rq *request, status int) {
	if !span.IsRecording() {
		span.End()
		return
	}
	name := rq.mode + " " + rq.route
	if rq.mode == "" {
		name = "request"
	}
	span.SetName(name)
	attrs := []attribute.KeyValue{
		attribute.String("portcullis.mode", rq.mode),
		attribute.String("portcullis.route", rq.route),
		attribute.Int("http.response.status_code", status),
	}
	if rq.d.rule != "" {
		attrs = append(attrs, attribute.String("portcullis.decision", rq.d.outcomeLabel()), attribute.String("portcullis.rule", rq.d.ruleLabel()))
	}
	if h.traceIdentity && rq.user != "" {
		attrs = append(attrs, attribute.String("enduser.id", rq.user))
	}
	span.SetAttributes(attrs...)
	if status >= 500 {
		msg := http.StatusText(status)
		if rq.err != nil {
			msg = strconv.Itoa(status) + " " + rq.err.Error()
		}
		span.SetStatus(codes.Error, truncate(msg, 256))
	}
	span.End()
}

// traceRefresh is a span around a session's refresh, with the time spent
// waiting for the refresh lock (another request, or replica, refreshing
// the same session) as portcullis.refresh.lock_wait_ms; the provider's
// token call is its child.
func (h *Handler) traceRefresh(ctx context.Context, s *session.Session) (context.Context, func(refreshed bool, err error)) {
	if h.tracer == nil {
		return ctx, func(bool, error) {}
	}
	ctx, span := h.tracer.Start(ctx, "session refresh", trace.WithAttributes(attribute.String("portcullis.provider", s.Provider)))
	return ctx, func(refreshed bool, err error) {
		span.SetAttributes(attribute.Bool("portcullis.refresh.by_this_request", refreshed))
		if err != nil {
			span.SetStatus(codes.Error, truncate(err.Error(), 256))
		}
		span.End()
	}
}

// lockWaited records on ctx's span how long the refresh waited for its
// lock.
func lockWaited(ctx context.Context, start time.Time) {
	trace.SpanFromContext(ctx).SetAttributes(attribute.Float64("portcullis.refresh.lock_wait_ms", float64(time.Since(start).Microseconds())/1000))
}

// upstreamSpan starts the upstream call's span, in a sampled trace only,
// and sends the upstream its traceparent: that span's, or the request
// span's in an unsampled trace (the client's was removed in startSpan).
// The span ends when the upstream's response headers arrive, or with the
// error that stopped the call.
func (h *Handler) upstreamSpan(pr *httputil.ProxyRequest, px *proxied, name string) {
	ctx := pr.In.Context()
	if trace.SpanFromContext(ctx).IsRecording() {
		ctx, px.span = h.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("http.request.method", pr.Out.Method), attribute.String("server.address", pr.Out.URL.Host)))
		pr.Out = pr.Out.WithContext(ctx)
	}
	tracePropagator.Inject(ctx, propagation.HeaderCarrier(pr.Out.Header))
}

func endUpstreamSpan(px *proxied, status int, err error) {
	span := px.span
	px.span = nil
	if err != nil {
		span.SetStatus(codes.Error, truncate(err.Error(), 256))
	} else {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}
