package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis/portcullis/demo"
)

// testCA issues certificates for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portcullis test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a certificate and key for 127.0.0.1 with serial n.
func (ca *testCA) issue(t *testing.T, certFile, keyFile string, n int64) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	// Write to temporary names and rename, as certificate managers do.
	os.WriteFile(keyFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	os.WriteFile(certFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.Rename(keyFile+".tmp", keyFile)
	os.Rename(certFile+".tmp", certFile)
}

// TestTLS: the gateway serves HTTPS with HTTP/2, refuses TLS below 1.2,
// picks up a renewed certificate without a restart, redirects plain HTTP,
// and reaches an HTTPS upstream through a custom CA.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.issue(t, certFile, keyFile, 100)

	upTLS := newTLSRecorder(t)
	caFile := filepath.Join(dir, "upstream-ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: upTLS.Certificate().Raw}), 0o600)

	addr, redirectAddr := freeAddr(t), freeAddr(t)
	public := "https://" + addr
	secret := randomSecret()
	idp, err := demo.Start("127.0.0.1:0", demo.Config{Users: defaultUsers(),
		Clients: []demo.Client{{ID: "portcullis", Secret: secret, RedirectURIs: []string{public + "/oauth2/callback"}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
server:
  listen: %s
  public_url: %s
  tls: {cert_file: %s, key_file: %s, redirect_http: %s}
providers: [{id: corp, issuer_url: %s, client_id: portcullis, client_secret: %s}]
session: {cookie: {secrets: [%s]}}
upstreams: [{path: /, url: %s, tls: {ca_file: %s}}]
policy: {email_domains: [example.com]}
`, addr, public, certFile, keyFile, redirectAddr, idp.URL, secret, randomSecret(), upTLS.URL, caFile)), 0o600)
	rp := &replica{url: public, config: cfg, env: os.Environ()}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	tlsClient := func(maxVersion uint16) *http.Client {
		jar, _ := cookiejar.New(nil)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: maxVersion}, ForceAttemptHTTP2: true}
		return &http.Client{Jar: jar, Transport: tr, Timeout: 20 * time.Second}
	}
	rp.waitReadyWith = tlsClient(0)
	rp.start(t)
	t.Cleanup(func() { rp.stop(t) })

	c := tlsClient(0)
	resp, err := c.Get(public + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// RFC 6797 §6.1: an https public_url means HSTS, one year by default.
	if got := resp.Header.Values("Strict-Transport-Security"); len(got) != 1 || got[0] != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security over https = %q, want max-age=31536000", got)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol = %s, want HTTP/2 on the TLS listener", resp.Proto)
	}
	if serial := resp.TLS.PeerCertificates[0].SerialNumber.Int64(); serial != 100 {
		t.Errorf("serial = %d", serial)
	}
	if _, err := tlsClient(tls.VersionTLS11).Get(public + "/ping"); err == nil {
		t.Error("a TLS 1.1 client was served")
	}

	// Sign in over HTTPS: the session cookie is __Host- and Secure, and
	// the HTTPS upstream (custom CA) receives the identity.
	final := signInAt(t, c, public, idp, "alice", "alice-password-1")
	if got := final.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("proxied response over https: Strict-Transport-Security %q", got)
	}
	seen := decodeSeen(t, final)
	if seen.Header.Get("X-Forwarded-User") != "u-alice" {
		t.Errorf("HTTPS upstream identity = %v", seen.Header)
	}
	for _, ck := range c.Jar.Cookies(mustURL(public)) {
		if ck.Name != "__Host-_portcullis" {
			t.Errorf("cookie %s; want only __Host-_portcullis", ck.Name)
		}
	}

	// Plain HTTP is redirected to public_url, whatever Host it names.
	req, _ := http.NewRequest("GET", "http://"+redirectAddr+"/a?b=1", nil)
	req.Host = "evil.example"
	resp, err = noFollow(http.DefaultClient).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != public+"/a?b=1" {
		t.Errorf("plain HTTP: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// RFC 6797 §7.2: never over plain HTTP.
	if got := resp.Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("the plain-HTTP redirect sent Strict-Transport-Security %q", got)
	}

	// A renewed certificate is served without a restart.
	ca.issue(t, certFile, keyFile, 101)
	deadline := time.Now().Add(15 * time.Second)
	for {
		fresh := tlsClient(0) // a new connection, a new handshake
		resp, err := fresh.Get(public + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.TLS.PeerCertificates[0].SerialNumber.Int64() == 101 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was not picked up within 15s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// signInAt opens public and signs in at the provider's form.
func signInAt(t *testing.T, c *http.Client, public string, idp *demo.Server, user, password string) *http.Response {
	t.Helper()
	resp, err := c.Get(public + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	final, err := demoSignIn(c, resp.Request.URL.String(), user, password)
	if err != nil {
		t.Fatal(err)
	}
	return final
}
