package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckProviderFiles: a provider's ca_file and client_private_key_file
// are read at start; a missing or certificate-less ca_file refuses the
// start naming the provider and the file, and the files' contents reach
// the provider (a valid pair passes -check).
func TestCheckProviderFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, body []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pk := write("client.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	notPEM := write("empty.pem", []byte("nothing here\n"))
	config := func(caFile string) string {
		return write("c.yaml", []byte(`
server: {public_url: https://gw.example.com}
providers:
- {id: corp, issuer_url: https://idp.example.com, client_id: c, client_auth: private_key_jwt, client_private_key_file: `+pk+`, ca_file: `+caFile+`}
session: {cookie: {secrets: [3kS1JsuaZLXS/H3jQHWtpBJKPM8iU5rz3XgTLwImVig=]}}
upstreams: [{path: /, url: http://127.0.0.1:8080}]
policy: {email_domains: ["*"]}
`))
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"-config", config(ca), "-check"}, &out, &errOut); code != 0 {
		t.Fatalf("-check with a CA file and a private key: exit %d\n%s", code, errOut.String())
	}
	for _, tt := range []struct{ file, want string }{
		{filepath.Join(dir, "missing.pem"), "providers: corp: ca_file"},
		{notPEM, "providers: corp: ca_file " + notPEM + ": no PEM certificate"},
	} {
		out.Reset()
		errOut.Reset()
		if code := run([]string{"-config", config(tt.file), "-check"}, &out, &errOut); code != 1 {
			t.Fatalf("ca_file %s: exit %d, want 1", tt.file, code)
		}
		if !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("-check output lacks %q:\n%s", tt.want, errOut.String())
		}
	}
}
