package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/portcullis/portcullis/proxy"
)

// certReloader serves the certificate in cert_file/key_file and re-reads
// the files when they change (checked at most every few seconds, on the
// handshakes that follow), so a renewed certificate (cert-manager, certbot)
// is picked up without a restart. A pair that fails to load keeps the old
// certificate in service, and the error is logged once per change.
type certReloader struct {
	key               string // the configuration section, for errors: server.tls
	certFile, keyFile string
	onError           func(error)

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

const certCheckEvery = 5 * time.Second

func newCertReloader(key, certFile, keyFile string, onError func(error)) (*certReloader, error) {
	r := &certReloader{key: key, certFile: certFile, keyFile: keyFile, onError: onError}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) load() error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("%s: loading %s and %s: %w", r.key, r.certFile, r.keyFile, err)
	}
	r.cert, r.modTime = &cert, r.stamp()
	return nil
}

// stamp is the newer of the two files' modification times.
func (r *certReloader) stamp() time.Time {
	var t time.Time
	for _, f := range []string{r.certFile, r.keyFile} {
		if st, err := os.Stat(f); err == nil && st.ModTime().After(t) {
			t = st.ModTime()
		}
	}
	return t
}

func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= certCheckEvery {
		r.checked = now
		if st := r.stamp(); st.After(r.modTime) {
			prev := r.cert
			if err := r.load(); err != nil {
				r.cert, r.modTime = prev, st // keep serving; report once
				r.onError(err)
			}
		}
	}
	return r.cert, nil
}

// tlsConfig is the server's TLS configuration: TLS 1.2 or later, HTTP/2
// offered (ALPN), certificates from the reloader.
func tlsConfig(c proxy.ServerTLS, r *certReloader) *tls.Config {
	minVersion := uint16(tls.VersionTLS12)
	if c.MinVersion == "1.3" {
		minVersion = tls.VersionTLS13
	}
	return &tls.Config{
		MinVersion:     minVersion,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// redirectToHTTPS answers plain-HTTP requests with a permanent redirect to
// the same path on public_url (never to the Host the client named).
func redirectToHTTPS(publicURL string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := publicURL + r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusPermanentRedirect)
	})
}

// listenTLS wraps ln in TLS when server.tls is set.
func (gw *gateway) listenTLS(ln net.Listener, sc proxy.ServerConfig) (net.Listener, *tls.Config, error) {
	if !sc.TLS.Enabled() {
		return ln, nil, nil
	}
	r, err := newCertReloader("server.tls", sc.TLS.CertFile, sc.TLS.KeyFile, func(err error) {
		gw.log.Error("TLS certificate reload failed; keeping the previous certificate", "err", err)
	})
	if err != nil {
		return nil, nil, err
	}
	conf := tlsConfig(sc.TLS, r)
	return tls.NewListener(ln, conf), conf, nil
}
