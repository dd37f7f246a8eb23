package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func TestTracingConfig(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_TRACES_SAMPLER_ARG", "")
	ratio := func(r float64) *float64 { return &r }
	for _, tt := range []struct {
		name string
		cfg  tracingConfig
		want string // in the error; "" for valid
	}{
		{"off", tracingConfig{}, ""},
		{"http", tracingConfig{OTLPEndpoint: "https://otel.example.com:4318"}, ""},
		{"grpc", tracingConfig{OTLPEndpoint: "otel.example.com:4317", Protocol: "grpc"}, ""},
		{"plain http without insecure", tracingConfig{OTLPEndpoint: "http://127.0.0.1:4318"}, "set tracing.insecure"},
		{"plain http, insecure", tracingConfig{OTLPEndpoint: "http://127.0.0.1:4318", Insecure: true}, ""},
		{"a protocol", tracingConfig{OTLPEndpoint: "x:1", Protocol: "thrift"}, "tracing.protocol"},
		{"a ratio above 1", tracingConfig{OTLPEndpoint: "x:1", SampleRatio: ratio(1.5)}, "from 0 to 1"},
		{"a negative ratio", tracingConfig{OTLPEndpoint: "x:1", SampleRatio: ratio(-0.1)}, "from 0 to 1"},
		{"a bad URL", tracingConfig{OTLPEndpoint: "ftp://x"}, "tracing.otlp_endpoint"},
		{"a bad header", tracingConfig{OTLPEndpoint: "x:1", Headers: map[string]string{"a b": "c"}}, "tracing.headers"},
	} {
		err := tt.cfg.validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
	if (tracingConfig{}).enabled() {
		t.Error("tracing on with nothing configured")
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	if !(tracingConfig{}).enabled() {
		t.Error("OTEL_EXPORTER_OTLP_ENDPOINT does not turn tracing on")
	}
	t.Setenv("OTEL_SDK_DISABLED", "true")
	if (tracingConfig{}).enabled() {
		t.Error("OTEL_SDK_DISABLED=true does not turn tracing off")
	}
	t.Setenv("OTEL_SDK_DISABLED", "")
	t.Setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
	if r, err := (tracingConfig{}).ratio(); err != nil || r != 0.25 {
		t.Errorf("OTEL_TRACES_SAMPLER_ARG: %v %v", r, err)
	}
}

func TestProviderCallNames(t *testing.T) {
	for path, want := range map[string]string{
		"/realms/corp/.well-known/openid-configuration": "discovery",
		"/realms/corp/protocol/openid-connect/token":    "token",
		"/realms/corp/protocol/openid-connect/userinfo": "userinfo",
		"/realms/corp/protocol/openid-connect/certs":    "keys",
		"/oauth2/v3/certs": "keys",
		"/keys":            "keys",
		"/realms/corp/protocol/openid-connect/revoke":           "revoke",
		"/oauth/token/revocation":                               "revoke",
		"/user/orgs":                                            "orgs",
		"/.well-known/oauth-authorization-server/tenant-a":      "discovery",
		"/tenant/v2.0/.well-known/oauth-authorization-server":   "discovery",
		"/realms/corp/protocol/openid-connect/token/introspect": "token",
	} {
		if got := providerCall(httptest.NewRequest("GET", "https://idp.example.com"+path, nil)); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}

// TestTraceLogs checks that a line written in a traced request's context
// carries its trace and span ids, and one without carries none.
func TestTraceLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(traceLogs{slog.NewTextHandler(&buf, nil)}).With("component", "test")
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "x")
	log.InfoContext(ctx, "inside")
	span.End()
	log.InfoContext(context.Background(), "outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "trace_id="+span.SpanContext().TraceID().String()) ||
		!strings.Contains(lines[0], "span_id=") || !strings.Contains(lines[0], "component=test") || strings.Contains(lines[1], "trace_id") {
		t.Errorf("log lines:\n%s", buf.String())
	}
}
