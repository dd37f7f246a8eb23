package main

import (
	"context"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/proxy"
)

// metricsConfig is the `metrics` section.
type metricsConfig struct {
	// Listen serves Prometheus metrics at /metrics on this address, apart
	// from the main listener. Empty: no metrics.
	Listen string `yaml:"listen"`
	// PProf also serves Go's profiler at /debug/pprof/ on the metrics
	// listener, for finding where CPU and memory go under load. Off by
	// default: profiles reveal internals, and taking one costs CPU.
	PProf bool `yaml:"pprof"`
}

// telemetry is the metrics registry and what records into it.
type telemetry struct {
	reg      *prometheus.Registry
	proxy    *proxy.Metrics
	provider func(id string, own http.RoundTripper) http.RoundTripper
	redis    *redisMetrics
	// emailsReloads counts re-reads of policy.authenticated_emails_file.
	emailsReloads *prometheus.CounterVec
	// configReloads counts configuration reloads by result.
	configReloads *prometheus.CounterVec
	cache         cacheCounts
}

func newTelemetry() *telemetry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "portcullis_build_info",
		Help: "Always 1; the labels say which build is running.",
	}, []string{"version", "revision", "go_version"})
	reg.MustRegister(info)
	info.WithLabelValues(version(), revision(), runtime.Version()).Set(1)
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portcullis_emails_file_reloads_total",
		Help: "Re-reads of policy.authenticated_emails_file after it changed, by result (ok; error: unreadable or malformed, the previous list stays in force).",
	}, []string{"result"})
	reg.MustRegister(reloads)
	configReloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portcullis_config_reload_total",
		Help: "Configuration reloads (SIGHUP, server.watch_config) by result: success, or failure (the file was refused; the running configuration stays).",
	}, []string{"result"})
	reg.MustRegister(configReloads)
	return &telemetry{
		configReloads: configReloads,
		reg:           reg,
		proxy:         proxy.NewMetrics(reg),
		provider:      proxy.InstrumentTransport(reg, nil),
		redis:         newRedisMetrics(reg),
		emailsReloads: reloads,
	}
}

func (t *telemetry) handler() http.Handler {
	return promhttp.HandlerFor(t.reg, promhttp.HandlerOpts{Registry: t.reg})
}

// proxyMetrics is what the handler records into; nil without metrics.
func (t *telemetry) proxyMetrics() *proxy.Metrics {
	if t == nil {
		return nil
	}
	return t.proxy
}

// cacheStats is implemented by stores with a local cache (Redis).
type cacheStats interface {
	CacheStats() (hits, misses uint64)
}

// cacheCounts follows the current store's local cache across reloads: a
// store replaced by a reload leaves its counts behind in base, so the
// exported counters never go down.
type cacheCounts struct {
	mu         sync.Mutex
	cur        cacheStats
	hits, miss uint64 // of the stores before cur
	registered bool
}

func (c *cacheCounts) read() (hits, misses uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hits, misses = c.hits, c.miss
	if c.cur != nil {
		h, m := c.cur.CacheStats()
		hits, misses = hits+h, misses+m
	}
	return hits, misses
}

// watchCache exports the store's local-cache hits and misses, when it has
// a cache and metrics are on; a reload's new store takes over.
func (t *telemetry) watchCache(store any) {
	if t == nil {
		return
	}
	cs, _ := store.(cacheStats)
	c := &t.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil {
		h, m := c.cur.CacheStats()
		c.hits, c.miss = c.hits+h, c.miss+m
	}
	c.cur = cs
	if cs == nil || c.registered {
		return
	}
	c.registered = true
	t.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "portcullis_session_cache_hits_total",
		Help: "Session loads answered from the replica's local cache.",
	}, func() float64 { h, _ := c.read(); return float64(h) }))
	t.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "portcullis_session_cache_misses_total",
		Help: "Session loads that went to Redis.",
	}, func() float64 { _, m := c.read(); return float64(m) }))
}

// metricsMux serves /metrics on the metrics listener, and with pprof the
// Go profiler under /debug/pprof/ (a CPU profile: /debug/pprof/profile?seconds=10).
func metricsMux(t *telemetry, withPProf bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", t.handler())
	if withPProf {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// redisMetrics times Redis commands through a go-redis hook.
type redisMetrics struct {
	dur *prometheus.HistogramVec
}

func newRedisMetrics(reg prometheus.Registerer) *redisMetrics {
	m := &redisMetrics{dur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "portcullis_redis_command_duration_seconds",
		Help:    "Redis commands by command name and outcome (ok, nil, error).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
	}, []string{"command", "outcome"})}
	reg.MustRegister(m.dur)
	return m
}

func (m *redisMetrics) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		start := time.Now()
		c, err := next(ctx, network, addr)
		m.observe("dial", err, start)
		return c, err
	}
}

func (m *redisMetrics) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		m.observe(cmd.Name(), err, start)
		return err
	}
}

func (m *redisMetrics) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		m.observe("pipeline", err, start)
		return err
	}
}

func (m *redisMetrics) observe(command string, err error, start time.Time) {
	outcome := "ok"
	switch {
	case err == redis.Nil:
		outcome = "nil"
	case err != nil:
		outcome = "error"
	}
	m.dur.WithLabelValues(strings.ToLower(command), outcome).Observe(time.Since(start).Seconds())
}
