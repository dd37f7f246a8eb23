package proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/portcullis/portcullis/session"
)

// tracedEnv is an env whose handler traces into a span recorder, with
// 192.0.2.0/24 as trusted proxies.
func tracedEnv(t *testing.T, identity bool) (*env, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e := newEnvOpts(t, func(c *Config) { c.Server.TrustedProxies = []string{"192.0.2.0/24"} }, func(o *Options) {
		o.Tracer, o.TraceIdentity = tp.Tracer("test"), identity
	})
	return e, rec
}

const foreignParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// TestTraceParentFromTrustedProxiesOnly checks W3C Trace Context at the
// edge: a trusted proxy's traceparent is the request span's parent, a
// client's is ignored and removed; the upstream gets the gateway's own;
// the request id is the trace id.
func TestTraceParentFromTrustedProxiesOnly(t *testing.T) {
	e, rec := tracedEnv(t, false)
	jar := e.sessionCookie("alice", "alice@example.com")
	for _, tt := range []struct {
		name, peer string
		adopted    bool
	}{
		{"a client", "203.0.113.7:4000", false},
		{"a trusted proxy", "192.0.2.10:4000", true},
	} {
		r := get("https://gw.example.com/x", "Cookie", jar, "Traceparent", foreignParent, "Tracestate", "v=client")
		r.RemoteAddr = tt.peer
		resp := e.do(r)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", tt.name, resp.StatusCode)
		}
		spans := rec.Ended()
		var server sdktrace.ReadOnlySpan
		for _, s := range spans {
			if s.Name() == "proxy /" {
				server = s
			}
		}
		if server == nil {
			t.Fatalf("%s: no request span in %d spans", tt.name, len(spans))
		}
		adopted := server.SpanContext().TraceID().String() == "0af7651916cd43dd8448eb211c80319c" && server.Parent().SpanID().String() == "b7ad6b7169203331"
		if adopted != tt.adopted {
			t.Errorf("%s: traceparent adopted = %v, want %v", tt.name, adopted, tt.adopted)
		}
		got := e.last()
		tp := got.Header.Get("Traceparent")
		if !strings.Contains(tp, server.SpanContext().TraceID().String()) || tp == foreignParent {
			t.Errorf("%s: the upstream got traceparent %q, not the gateway's (trace %s)", tt.name, tp, server.SpanContext().TraceID())
		}
		var up sdktrace.ReadOnlySpan
		for _, s := range spans {
			if s.Name() == "upstream /" {
				up = s
			}
		}
		if up == nil || up.Parent().SpanID() != server.SpanContext().SpanID() || !strings.Contains(tp, "-"+up.SpanContext().SpanID().String()+"-") {
			t.Errorf("%s: the upstream call's span is missing, not the request's child, or not the upstream's parent (traceparent %q)", tt.name, tp)
		}
		if ts := got.Header.Get("Tracestate"); ts != "" && !tt.adopted {
			t.Errorf("%s: the client's tracestate reached the upstream: %q", tt.name, ts)
		}
		if id := got.Header.Get("X-Request-Id"); id != server.SpanContext().TraceID().String() {
			t.Errorf("%s: request id %q, trace id %s", tt.name, id, server.SpanContext().TraceID())
		}
		for _, kv := range server.Attributes() {
			if strings.Contains(kv.Value.Emit(), "alice") {
				t.Errorf("%s: the span names the user: %s", tt.name, kv.Key)
			}
		}
		rec.Reset()
	}
}

// TestTraceIdentityOptIn checks that include_identity adds who asked, and
// that the decision and rule are on the span.
func TestTraceIdentityOptIn(t *testing.T) {
	e, rec := tracedEnv(t, true)
	e.do(get("https://gw.example.com/x", "Cookie", e.sessionCookie("alice", "alice@example.com")))
	attrs := map[string]string{}
	for _, s := range rec.Ended() {
		if s.Name() == "proxy /" {
			for _, kv := range s.Attributes() {
				attrs[string(kv.Key)] = kv.Value.Emit()
			}
		}
	}
	if attrs["enduser.id"] == "" || attrs["portcullis.decision"] != "allowed" || attrs["portcullis.rule"] != "default" || attrs["http.response.status_code"] != "200" {
		t.Errorf("span attributes = %v", attrs)
	}
}

// discardExporter drops spans: the benchmarks measure the gateway, not
// an exporter.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkServeHTTPTracing is BenchmarkServeHTTPAuthenticated with
// tracing off, and on at sampling ratios 1 and 0.01 (spans batched to an
// exporter that drops them). Compare with benchstat -col /tracing.
func BenchmarkServeHTTPTracing(b *testing.B) {
	for _, tt := range []struct {
		name  string
		ratio float64
	}{{"off", 0}, {"ratio=1", 1}, {"ratio=0.01", 0.01}} {
		b.Run("tracing="+tt.name, func(b *testing.B) {
			h, store := benchHandler(b, nil)
			if tt.name != "off" {
				tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}),
					sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(tt.ratio))))
				b.Cleanup(func() { tp.Shutdown(context.Background()) })
				h, store = benchHandler(b, nil)
				h.tracer = tp.Tracer("bench")
			}
			serveLoop(b, h, dashboardRequest(benchCookie(b, store)))
		})
	}
}

// TestTraceRefresh checks the refresh span: under the request's span,
// with the lock wait recorded.
func TestTraceRefresh(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e := newEnvOpts(t, nil, func(o *Options) {
		o.IdleTimeout, o.RefreshBefore, o.Tracer = 10*time.Minute, time.Minute, tp.Tracer("test")
	})
	e.idp.refresh = func(s *session.Session) (*session.Session, error) {
		n := *s
		n.RefreshToken, n.TokenExpiry = "rt-2", e.clock().Add(5*time.Minute)
		return &n, nil
	}
	due := e.cookieFor(e.baseSession(func(s *session.Session) { s.TokenExpiry = e.clock().Add(30 * time.Second) }))
	if resp := e.do(get("https://gw.example.com/", "Cookie", due)); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var req, refresh sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.Name() {
		case "proxy /":
			req = s
		case "session refresh":
			refresh = s
		}
	}
	if req == nil || refresh == nil || refresh.Parent().SpanID() != req.SpanContext().SpanID() {
		t.Fatalf("spans: request %v, refresh %v", req, refresh)
	}
	attrs := map[string]string{}
	for _, kv := range refresh.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["portcullis.refresh.lock_wait_ms"] == "" || attrs["portcullis.refresh.by_this_request"] != "true" || attrs["portcullis.provider"] != "corp" {
		t.Errorf("refresh span attributes = %v", attrs)
	}
}

// TestTraceUnsampled checks an unsampled request: no span is recorded,
// and the upstream still gets a traceparent, flagged not sampled, naming
// the request's trace.
func TestTraceUnsampled(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.NeverSample()))
	e := newEnvOpts(t, nil, func(o *Options) { o.Tracer = tp.Tracer("test") })
	if resp := e.do(get("https://gw.example.com/x", "Cookie", e.sessionCookie("alice", "alice@example.com"))); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := e.last()
	parts := strings.Split(got.Header.Get("Traceparent"), "-")
	if len(parts) != 4 || parts[3] != "00" || parts[1] != got.Header.Get("X-Request-Id") {
		t.Errorf("upstream traceparent %q, request id %q", got.Header.Get("Traceparent"), got.Header.Get("X-Request-Id"))
	}
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded in an unsampled trace", n)
	}
}
