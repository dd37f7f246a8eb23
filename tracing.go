package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/proxy"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// tracing.go is OpenTelemetry tracing (docs/operations.md, "Tracing"): off
// unless tracing.otlp_endpoint or the standard OTEL_EXPORTER_OTLP_*
// variables name a collector. When on, the handler traces each request
// (proxy.Options.Tracer), provider calls and Redis commands become its
// children, the upstream gets a W3C traceparent, and log lines carry
// trace_id. Spans go out in batches over OTLP (HTTP or gRPC); a collector
// that is down costs dropped spans, never a slower request.

// tracingConfig is the `tracing` section.
type tracingConfig struct {
	// OTLPEndpoint is the collector: a URL for http/protobuf
	// (http://collector:4318, the path /v1/traces is added when it has
	// none), host:port or a URL for grpc (collector:4317). Empty: the
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT
	// variable, and without either tracing is off.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Protocol is http/protobuf (default; also "http") or grpc; default
	// OTEL_EXPORTER_OTLP_PROTOCOL.
	Protocol string `yaml:"protocol"`
	// SampleRatio is the share of new traces kept, 0 to 1 (default 1, or
	// OTEL_TRACES_SAMPLER_ARG). A trace a trusted proxy started keeps its
	// own sampling decision.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// Headers are sent with every export (an API key for a hosted
	// collector); OTEL_EXPORTER_OTLP_HEADERS adds to them.
	Headers map[string]string `yaml:"headers"`
	// Insecure sends spans without TLS (a collector on the node).
	Insecure bool `yaml:"insecure"`
	// IncludeIdentity adds who asked (enduser.id, the subject, and the
	// email) to request spans; off, spans name no one.
	IncludeIdentity bool `yaml:"include_identity"`
	// ServiceName is service.name (default OTEL_SERVICE_NAME, else
	// portcullis).
	ServiceName string `yaml:"service_name"`
}

// endpoint is the collector the configuration or the environment names.
func (c tracingConfig) endpoint() string {
	if c.OTLPEndpoint != "" {
		return c.OTLPEndpoint
	}
	if v := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		return v
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
}

// enabled reports whether spans are to be sent anywhere.
func (c tracingConfig) enabled() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(os.Getenv("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return c.endpoint() != ""
}

func (c tracingConfig) protocol() string {
	p := c.Protocol
	if p == "" {
		p = cmpOrEnv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch strings.ToLower(p) {
	case "", "http", "http/protobuf":
		return "http/protobuf"
	case "grpc":
		return "grpc"
	}
	return p
}

func cmpOrEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// ratio is the sampling ratio in force.
func (c tracingConfig) ratio() (float64, error) {
	if c.SampleRatio != nil {
		return *c.SampleRatio, nil
	}
	if v := os.Getenv("OTEL_TRACES_SAMPLER_ARG"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG %q is not a number", v)
		}
		return r, nil
	}
	return 1, nil
}

// validate checks the section without dialling anything.
func (c tracingConfig) validate() error {
	var errs []error
	if p := c.protocol(); p != "http/protobuf" && p != "grpc" {
		errs = append(errs, fmt.Errorf("tracing.protocol %q: want http/protobuf or grpc", p))
	}
	if r, err := c.ratio(); err != nil {
		errs = append(errs, fmt.Errorf("tracing.sample_ratio: %w", err))
	} else if r < 0 || r > 1 {
		errs = append(errs, fmt.Errorf("tracing.sample_ratio %v: want a share from 0 to 1", r))
	}
	if e := c.OTLPEndpoint; e != "" && strings.Contains(e, "://") {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("tracing.otlp_endpoint %q: want http(s)://host:port[/path] or host:port", e))
		} else if u.Scheme == "http" && !c.Insecure {
			errs = append(errs, fmt.Errorf("tracing.otlp_endpoint %q is plain http: set tracing.insecure: true to send spans without TLS", e))
		}
	}
	for k := range c.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			errs = append(errs, fmt.Errorf("tracing.headers: %q is not a header name", k))
		}
	}
	return errors.Join(errs...)
}

// tracing is the process's tracer provider: built once at start and kept
// across reloads (tracing needs a restart to change).
type tracing struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	identity bool
}

// newTracing starts the exporter and the provider; nil when tracing is
// off.
func newTracing(c tracingConfig) (*tracing, error) {
	if !c.enabled() {
		return nil, nil
	}
	exp, err := c.exporter()
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	ratio, _ := c.ratio()
	name := c.ServiceName
	if name == "" {
		name = cmpOrEnv("OTEL_SERVICE_NAME")
	}
	if name == "" {
		name = "portcullis"
	}
	res := resource.NewSchemaless(attribute.String("service.name", name), attribute.String("service.version", version()))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	return &tracing{provider: tp, tracer: tp.Tracer("github.com/portcullis/portcullis"), identity: c.IncludeIdentity}, nil
}

// exporter is the OTLP exporter the section describes; the SDK reads the
// OTEL_EXPORTER_OTLP_* variables for what the section leaves out.
func (c tracingConfig) exporter() (sdktrace.SpanExporter, error) {
	ctx := context.Background()
	e := c.OTLPEndpoint
	if c.protocol() == "grpc" {
		var opts []otlptracegrpc.Option
		if e != "" {
			if strings.Contains(e, "://") {
				opts = append(opts, otlptracegrpc.WithEndpointURL(e))
			} else {
				opts = append(opts, otlptracegrpc.WithEndpoint(e))
			}
		}
		if c.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		if len(c.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(c.Headers))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	var opts []otlptracehttp.Option
	if e != "" {
		if !strings.Contains(e, "://") {
			e = "https://" + e
			if c.Insecure {
				e = "http://" + c.OTLPEndpoint
			}
		}
		if u, err := url.Parse(e); err == nil && (u.Path == "" || u.Path == "/") {
			e = strings.TrimSuffix(e, "/") + "/v1/traces"
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(e))
	}
	if c.Insecure {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	if len(c.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(c.Headers))
	}
	return otlptracehttp.New(ctx, opts...)
}

// withTracing is o with tracing on when t is set.
func withTracing(o proxy.Options, t *tracing) proxy.Options {
	if t == nil {
		return o
	}
	o.Tracer, o.TraceIdentity = t.tracer, t.identity
	return o
}

// shutdown sends what is buffered, within a few seconds.
func (t *tracing) shutdown() {
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t.provider.Shutdown(ctx)
}

// propagator is W3C Trace Context (traceparent, tracestate).
var propagator = propagation.TraceContext{}

// transport wraps a provider's transport so that each call is a child
// span named by what it is for ("provider corp token"), and the provider
// receives the span's traceparent. (The proxy makes upstream calls' spans
// itself, proxy/tracing.go.)
func (t *tracing) transport(id string, rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return otelhttp.NewTransport(rt,
		otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "provider " + id + " " + providerCall(r) }),
	)
}

// providerCall names a call to a provider by its endpoint: token,
// userinfo, keys (JWKS), discovery, or the path's last segment.
func providerCall(r *http.Request) string {
	p := strings.ToLower(r.URL.Path)
	switch {
	case strings.Contains(p, "/.well-known/"):
		return "discovery"
	case strings.Contains(p, "userinfo"):
		return "userinfo"
	case strings.Contains(p, "revoke") || strings.Contains(p, "revocation"):
		return "revoke"
	case strings.Contains(p, "token"):
		return "token"
	case strings.Contains(p, "jwks") || strings.Contains(p, "certs") || strings.HasSuffix(p, "/keys"):
		return "keys"
	}
	if i := strings.LastIndexByte(p, '/'); i >= 0 && i < len(p)-1 {
		return p[i+1:]
	}
	return r.Method
}

// redisHook makes each Redis command a span ("redis get").
type redisHook struct{ tracer trace.Tracer }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		ctx, span := h.tracer.Start(ctx, "redis "+strings.ToLower(cmd.Name()), trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("db.system.name", "redis"), attribute.String("db.operation.name", strings.ToLower(cmd.Name()))))
		err := next(ctx, cmd)
		endRedisSpan(span, err)
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		ctx, span := h.tracer.Start(ctx, "redis pipeline", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("db.system.name", "redis"), attribute.Int("db.operation.batch.size", len(cmds))))
		err := next(ctx, cmds)
		endRedisSpan(span, err)
		return err
	}
}

func endRedisSpan(span trace.Span, err error) {
	if err != nil && err != redis.Nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// traceLogs adds trace_id and span_id to every log line written with a
// context that carries a span.
type traceLogs struct{ slog.Handler }

func (h traceLogs) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceLogs) WithAttrs(as []slog.Attr) slog.Handler { return traceLogs{h.Handler.WithAttrs(as)} }
func (h traceLogs) WithGroup(name string) slog.Handler    { return traceLogs{h.Handler.WithGroup(name)} }
