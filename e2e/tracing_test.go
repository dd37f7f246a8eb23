package e2e

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/portcullis/portcullis/demo"
	"github.com/portcullis/portcullis/redistest"
)

// otlpReceiver is an OTLP/HTTP trace receiver (OTLP specification,
// "OTLP/HTTP": POST /v1/traces, binary protobuf): it decodes what the
// gateway exports with the protocol's own generated types and keeps the
// spans.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []otlpSpan
}

type otlpSpan struct {
	trace, id, parent string
	name              string
	start, end        time.Time
	attrs             map[string]string
	service           string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	rc := &otlpReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusBadRequest)
			return
		}
		rc.keep(&req)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *otlpReceiver) keep(req *coltracepb.ExportTraceServiceRequest) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := otlpSpan{trace: hex.EncodeToString(s.GetTraceId()), id: hex.EncodeToString(s.GetSpanId()), parent: hex.EncodeToString(s.GetParentSpanId()),
					name: s.GetName(), start: time.Unix(0, int64(s.GetStartTimeUnixNano())), end: time.Unix(0, int64(s.GetEndTimeUnixNano())),
					attrs: map[string]string{}, service: service}
				for _, kv := range s.GetAttributes() {
					v := kv.GetValue()
					sp.attrs[kv.GetKey()] = cmpOr(v.GetStringValue(), fmt.Sprint(v.GetIntValue()))
				}
				rc.spans = append(rc.spans, sp)
			}
		}
	}
}

// waitFor returns the spans once one named each of names has arrived.
func (rc *otlpReceiver) waitFor(t *testing.T, names ...string) []otlpSpan {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rc.mu.Lock()
		spans := slices.Clone(rc.spans)
		rc.mu.Unlock()
		missing := ""
		for _, n := range names {
			if !slices.ContainsFunc(spans, func(s otlpSpan) bool { return s.name == n }) {
				missing = n
			}
		}
		if missing == "" {
			return spans
		}
		if time.Now().After(deadline) {
			var got []string
			for _, s := range spans {
				got = append(got, s.name)
			}
			t.Fatalf("no span %q arrived; got %v", missing, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tree prints the trace of root as an indented list of names and
// durations.
func tree(spans []otlpSpan, root otlpSpan) string {
	var b strings.Builder
	var walk func(s otlpSpan, depth int)
	walk = func(s otlpSpan, depth int) {
		fmt.Fprintf(&b, "%s%s  %s\n", strings.Repeat("  ", depth), s.name, s.end.Sub(s.start).Round(10*time.Microsecond))
		for _, c := range spans {
			if c.parent == s.id && c.trace == s.trace {
				walk(c, depth+1)
			}
		}
	}
	walk(root, 0)
	return b.String()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func findSpan(spans []otlpSpan, match func(otlpSpan) bool) (otlpSpan, bool) {
	for _, s := range spans {
		if match(s) {
			return s, true
		}
	}
	return otlpSpan{}, false
}

// TestTracing runs the gateway with tracing to a real OTLP/HTTP receiver:
// a sign-in's callback is a trace whose children are the provider's token
// and userinfo calls and the Redis commands; a proxied request's trace has
// the upstream call as its child, and the upstream receives that span as
// its traceparent; a client's own traceparent (the client is not a
// trusted proxy) is neither adopted nor passed on.
func TestTracing(t *testing.T) {
	rc := newOTLPReceiver(t)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100") // export within 100 ms (the SDK's variable)
	rs := redistest.Standalone(t)
	// The ID token carries the protocol's claims only, as with many
	// providers: the profile comes from userinfo.
	w := newWorld(t, worldOptions{redis: rs.Addr(), gatewayClient: func(c *demo.Client) { c.MinimalIDToken = true },
		extraConfig: "tracing:\n  otlp_endpoint: " + rc.URL + "\n  insecure: true\n  service_name: portcullis-e2e\n"})
	alice := browser(t)
	seen := decodeSeen(t, w.signIn(alice, "/app/reports", "alice"))
	spans := rc.waitFor(t, "endpoint oauth2/callback", "proxy /")

	cb, _ := findSpan(spans, func(s otlpSpan) bool { return s.name == "endpoint oauth2/callback" })
	t.Logf("the sign-in's callback, as traced:\n%s", tree(spans, cb))
	for _, child := range []string{"provider corp token", "provider corp userinfo"} {
		if _, ok := findSpan(spans, func(s otlpSpan) bool { return s.name == child && s.parent == cb.id && s.trace == cb.trace }); !ok {
			t.Errorf("no %q span under the callback", child)
		}
	}
	if _, ok := findSpan(spans, func(s otlpSpan) bool { return strings.HasPrefix(s.name, "redis ") && s.trace == cb.trace }); !ok {
		t.Error("no Redis span in the callback's trace")
	}
	if cb.service != "portcullis-e2e" || cb.attrs["http.response.status_code"] != "302" {
		t.Errorf("callback span: service %q attributes %v", cb.service, cb.attrs)
	}
	for k, v := range cb.attrs {
		if strings.Contains(v, "alice") || strings.Contains(v, "example.com") && k != "server.address" {
			t.Errorf("the span names the user without include_identity: %s=%s", k, v)
		}
	}

	// The proxied request: its upstream call is its child, and the
	// upstream's traceparent is that call.
	tp := strings.Split(seen.Header.Get("Traceparent"), "-")
	if len(tp) != 4 {
		t.Fatalf("the upstream got traceparent %q", seen.Header.Get("Traceparent"))
	}
	spans = rc.waitFor(t, "upstream /")
	up, ok := findSpan(spans, func(s otlpSpan) bool { return s.name == "upstream /" && s.id == tp[2] })
	if !ok || up.trace != tp[1] {
		t.Fatalf("no upstream span %s in trace %s", tp[2], tp[1])
	}
	if _, ok := findSpan(spans, func(s otlpSpan) bool { return s.name == "proxy /" && s.id == up.parent && s.trace == up.trace }); !ok {
		t.Error("the upstream span's parent is not the proxied request's span")
	}
	if id := seen.Header.Get("X-Request-Id"); id != tp[1] {
		t.Errorf("X-Request-Id %q is not the trace id %s", id, tp[1])
	}

	// A client's traceparent: not adopted, not passed on.
	const foreign = "0af7651916cd43dd8448eb211c80319c"
	req, _ := http.NewRequest("GET", w.gateway+"/app/other", nil)
	req.Header.Set("Traceparent", "00-"+foreign+"-b7ad6b7169203331-01")
	req.Header.Set("Tracestate", "vendor=client-says")
	resp, err := alice.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	seen = decodeSeen(t, resp)
	if got := seen.Header.Get("Traceparent"); strings.Contains(got, foreign) || seen.Header.Get("Tracestate") != "" || got == "" {
		t.Errorf("the upstream got traceparent %q tracestate %q: the client's, or none", got, seen.Header.Get("Tracestate"))
	}
	mine := strings.Split(seen.Header.Get("Traceparent"), "-")[1]
	spans = rc.waitFor(t, "upstream /")
	for _, s := range spans {
		if s.trace == foreign {
			t.Errorf("span %q joined the client's trace", s.name)
		}
	}
	if !w.logs.waitFor(`trace_id=` + mine) {
		t.Error("the access log line does not carry the trace id")
	}
}
