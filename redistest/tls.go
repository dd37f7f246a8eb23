package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TLSServer is a standalone server that also serves TLS, with a
// certificate for 127.0.0.1 signed by a CA made for this test.
type TLSServer struct {
	*Server
	tlsPort int
	caPEM   []byte
}

// StandaloneTLS starts a server listening on Addr (plain) and TLSAddr (TLS;
// client certificates not required). CAPEM returns the CA to trust.
func StandaloneTLS(t testing.TB) *TLSServer {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	caPEM, certPEM, keyPEM := testCerts(t)
	files := map[string][]byte{"ca.pem": caPEM, "cert.pem": certPEM, "key.pem": keyPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tlsPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, "tls", func(int) []string {
		return []string{
			"tls-port " + strconv.Itoa(tlsPort),
			"tls-cert-file " + filepath.Join(dir, "cert.pem"),
			"tls-key-file " + filepath.Join(dir, "key.pem"),
			"tls-ca-cert-file " + filepath.Join(dir, "ca.pem"),
			"tls-auth-clients no",
		}
	}, false)
	return &TLSServer{Server: s, tlsPort: tlsPort, caPEM: caPEM}
}

// TLSAddr returns the TLS listener's "127.0.0.1:port".
func (s *TLSServer) TLSAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.tlsPort))
}

// CAPEM returns the PEM of the CA that signed the server's certificate.
func (s *TLSServer) CAPEM() []byte { return s.caPEM }

// testCerts makes a CA and a server certificate for 127.0.0.1.
func testCerts(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
