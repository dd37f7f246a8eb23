package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/portcullis/portcullis/proxy"
)

// serve.go runs a built gateway: the main listener (with TLS when
// configured), the side listeners, provider discovery in the background,
// and a graceful shutdown.

// serve listens (on ln when given) until ctx ends, then shuts down
// gracefully, letting in-flight requests finish within the shutdown timeout.
func (gw *gateway) serve(ctx context.Context, ln net.Listener) error {
	l := newLive(gw)
	if gw.reload != nil {
		gw.reload.attach(l, ctx)
	}
	sc := gw.parts.settings.Server()
	srv := sc.HTTPServer(l, gw.log)
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", srv.Addr); err != nil {
			return fmt.Errorf("listening on %s: %w", srv.Addr, err)
		}
	}
	ln, tlsConf, err := gw.listenTLS(ln, sc)
	if err != nil {
		return err
	}
	srv.TLSConfig = tlsConf
	gw.log.Info("portcullis starting", "version", version(), "revision", revision(), "go", runtime.Version(), "listen", ln.Addr().String(), "tls", tlsConf != nil,
		"public_url", sc.PublicURL, "callback", gw.callback, "session_store", gw.cfg.Session.Store)
	for _, w := range gw.warnings {
		gw.log.Warn(w)
	}
	gw.start(ctx)
	if gw.reload != nil && sc.WatchConfig {
		go gw.reload.watch(ctx, 2*time.Second, gw.log)
	}

	errc := make(chan error, 5) // every server's result; none may block on exit
	go func() { errc <- srv.Serve(ln) }()
	sides, err := gw.serveSides(tlsConf != nil, errc, l)
	defer func() {
		for _, s := range sides {
			s.Close()
		}
	}()
	var gs *grpc.Server
	if err == nil {
		gs, err = gw.serveGRPC(errc, l)
	}
	if err != nil {
		srv.Close()
		return err
	}
	if gs != nil {
		defer gs.Stop()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	cur := l.cur.Load() // the shutdown settings of the configuration in force
	sc = cur.parts.settings.Server()
	cur.handler.Drain()
	cur.delay(sc.ShutdownDelay)
	gw.log.Info("shutting down", "grace", sc.ShutdownTimeout, "websockets", cur.handler.Tunnels())
	sctx, cancel := context.WithTimeout(context.Background(), sc.ShutdownTimeout)
	defer cancel()
	for _, s := range sides {
		s.Shutdown(sctx)
	}
	stopGRPC(sctx, gs)
	err = srv.Shutdown(sctx)
	// Shutdown does not wait for upgraded connections: wait for them
	// within what is left of the grace, then end the rest.
	if n := cur.handler.EndTunnels(sctx); n > 0 {
		gw.log.Warn("ended websockets still open at the end of the shutdown grace", "websockets", n)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	gw.log.Info("stopped")
	return nil
}

// delay keeps serving, with /ready failing, for server.shutdown_delay, so
// load balancers take the replica out of rotation before its listener
// closes (a rolling restart without failed requests). A second SIGINT or
// SIGTERM cuts it short.
func (gw *gateway) delay(d time.Duration) {
	if d <= 0 {
		return
	}
	again := make(chan os.Signal, 1)
	signal.Notify(again, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(again)
	gw.log.Info("draining: /ready answers 503, still serving", "shutdown_delay", d)
	select {
	case <-time.After(d):
	case <-again:
		gw.log.Info("second signal: shutting down now")
	}
}

// serveSides starts the side listeners the configuration asks for: the
// HTTP-to-HTTPS redirector, metrics, the admin API.
func (gw *gateway) serveSides(withTLS bool, errc chan<- error, l *live) ([]*http.Server, error) {
	var sides []*http.Server
	start := func(what, addr string, h http.Handler) error {
		s, ln, err := listenSide(what, addr, h)
		if err != nil {
			return err
		}
		gw.log.Info(what+" listening", "listen", ln.Addr().String())
		sides = append(sides, s)
		go func() { errc <- s.Serve(ln) }()
		return nil
	}
	sc := gw.parts.settings.Server()
	if withTLS && sc.TLS.RedirectHTTP != "" {
		if err := start("server.tls.redirect_http", sc.TLS.RedirectHTTP, redirectToHTTPS(sc.PublicURL)); err != nil {
			return sides, err
		}
	}
	if gw.telemetry != nil {
		if err := start("metrics", gw.cfg.Metrics.Listen, metricsMux(gw.telemetry, gw.cfg.Metrics.PProf)); err != nil {
			return sides, err
		}
	}
	if gw.admin != nil {
		if err := start("admin API", gw.cfg.Admin.Listen, l.adminHandler()); err != nil {
			return sides, err
		}
	}
	return sides, nil
}

// serveGRPC starts the ext_authz gRPC listener when server.grpc_listen is
// set: Envoy's Authorization service, deciding with the gateway's handler.
// Plaintext (h2c) unless server.grpc_tls is set.
func (gw *gateway) serveGRPC(errc chan<- error, l *live) (*grpc.Server, error) {
	sc := gw.parts.settings.Server()
	if sc.GRPCListen == "" {
		return nil, nil
	}
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(grpcMaxMessage), grpc.ConnectionTimeout(sc.ReadHeaderTimeout)}
	if sc.GRPCTLS.Enabled() {
		r, err := newCertReloader("server.grpc_tls", sc.GRPCTLS.CertFile, sc.GRPCTLS.KeyFile, func(err error) {
			gw.log.Error("gRPC TLS certificate reload failed; keeping the previous certificate", "err", err)
		})
		if err != nil {
			return nil, err
		}
		conf := tlsConfig(proxy.ServerTLS{MinVersion: sc.TLS.MinVersion}, r)
		conf.NextProtos = []string{"h2"}
		opts = append(opts, grpc.Creds(credentials.NewTLS(conf)))
	}
	ln, err := net.Listen("tcp", sc.GRPCListen)
	if err != nil {
		return nil, fmt.Errorf("server.grpc_listen on %s: %w", sc.GRPCListen, err)
	}
	gs := grpc.NewServer(opts...)
	proxy.RegisterCurrent(gs, l.authz)
	gw.log.Info("ext_authz gRPC listening", "listen", ln.Addr().String(), "tls", sc.GRPCTLS.Enabled())
	go func() { errc <- gs.Serve(ln) }()
	return gs, nil
}

// grpcMaxMessage bounds a CheckRequest: headers (server.max_header_bytes
// at most on the main listener) and, if Envoy is told to send it, a
// buffered body the decision never reads.
const grpcMaxMessage = 1 << 20

// stopGRPC lets in-flight checks finish until ctx ends, then closes.
func stopGRPC(ctx context.Context, gs *grpc.Server) {
	if gs == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		gs.Stop()
	}
}

// listenSide opens a side listener (metrics, admin API, HTTP→HTTPS
// redirect): short timeouts and small headers, since none of them streams.
func listenSide(what, addr string, h http.Handler) (*http.Server, net.Listener, error) {
	s := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s on %s: %w", what, addr, err)
	}
	return s, ln, nil
}

// discover contacts every provider at start, retrying until it answers, so
// the log says early whether sign-in will work and /ready turns green.
func (gw *gateway) discover(ctx context.Context) {
	for _, p := range gw.parts.providers.All() {
		go func() {
			delay := time.Second
			for {
				err := p.Ready(ctx)
				if err == nil {
					gw.log.Info("provider ready", "provider", p.ID(), "issuer", p.Issuer())
					return
				}
				gw.log.Warn("provider not reachable yet; sign-ins fail until it is", "provider", p.ID(), "err", err, "retry_in", delay)
				// ±20% jitter: replicas started together do not retry
				// in step against a provider coming back.
				jittered := delay + time.Duration((rand.Float64()*0.4-0.2)*float64(delay))
				select {
				case <-ctx.Done():
					return
				case <-time.After(jittered):
				}
				delay = min(delay*2, time.Minute)
			}
		}()
	}
}

// ignoreHangup keeps SIGHUP from ending the demo (its default action is
// to exit, status 129, with nothing drained): the demo has no file to
// reload. The gateway reloads instead (reloader.hangups). The returned
// function restores the default.
func ignoreHangup(log *slog.Logger) (stop func()) {
	return onHangup(func() { log.Warn("SIGHUP received and ignored: the demo has no configuration file to reload") })
}

// onHangup calls fn for every SIGHUP, one at a time, until stop is called;
// meanwhile SIGHUP has no default action.
func onHangup(fn func()) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				fn()
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
	}
}
