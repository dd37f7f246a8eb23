package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// Server is a Provider listening on its own address.
type Server struct {
	*Provider
	URL string // the issuer

	srv  *http.Server
	done chan struct{}
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves a provider built
// from cfg. When cfg.Issuer is empty it becomes "http://" plus the bound
// address, with 127.0.0.1 standing in for an unspecified IP; when it is a
// path ("/realms/demo"), that address followed by the path, as Keycloak's
// issuers are.
func Start(addr string, cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: listening on %s: %w", addr, err)
	}
	if cfg.Issuer == "" || strings.HasPrefix(cfg.Issuer, "/") {
		cfg.Issuer = "http://" + issuerHost(ln.Addr()) + cfg.Issuer
	}
	p, err := New(cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{
		Provider: p,
		URL:      p.Issuer(),
		srv:      &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second},
		done:     make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			p.log.LogAttrs(context.Background(), slog.LevelError, "demo idp stopped", slog.Any("err", err))
		}
	}()
	return s, nil
}

// issuerHost turns a bound address into a host:port a client can dial.
func issuerHost(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(tcp.Port))
}

// Close stops the server, giving requests in flight a few seconds.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}
