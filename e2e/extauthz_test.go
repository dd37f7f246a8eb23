package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// TestExtAuthzGRPC runs the real binary with server.grpc_listen and asks
// it as Envoy's ext_authz filter does, through a real gRPC client: the
// session cookie of a demo sign-in is allowed with the user's identity
// headers; no cookie is a redirect to sign-in; a spoofed identity header
// is among those Envoy is told to remove. (No Envoy binary here: the
// CheckRequest is built as Envoy documents it.)
func TestExtAuthzGRPC(t *testing.T) {
	w, rp, grpcAddr := extAuthzWorld(t, "")
	client := grpcClient(t, grpcAddr, insecure.NewCredentials())
	c := browser(t)
	w.signIn(c, "/", "alice").Body.Close()
	var cookie []string
	for _, ck := range c.Jar.Cookies(mustURL(w.gateway)) {
		cookie = append(cookie, ck.Name+"="+ck.Value)
	}
	if len(cookie) == 0 {
		t.Fatal("no session cookie after sign-in")
	}
	host := mustURL(w.gateway).Host
	ask := func(headers map[string]string) *authv3.CheckResponse {
		t.Helper()
		headers[":authority"], headers[":path"], headers[":method"] = host, "/reports?q=1", "GET"
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Host: host, Path: "/reports?q=1", Scheme: "http", Protocol: "HTTP/1.1", Headers: headers,
			}},
		}})
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		return res
	}
	res := ask(map[string]string{"cookie": strings.Join(cookie, "; "), "x-forwarded-email": "ceo@example.com", "accept": "text/html"})
	if res.GetStatus().GetCode() != int32(codes.OK) || res.GetOkResponse() == nil {
		t.Fatalf("signed-in check: status %v, denied %v", res.GetStatus(), res.GetDeniedResponse())
	}
	set := map[string]string{}
	for _, o := range res.GetOkResponse().GetHeaders() {
		set[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	if set["X-Auth-Request-Email"] != "alice@example.com" || set["X-Auth-Request-User"] != "u-alice" {
		t.Fatalf("identity headers for upstream: %v", set)
	}
	if !slices.Contains(res.GetOkResponse().GetHeadersToRemove(), "x-forwarded-email") {
		t.Fatalf("the client's X-Forwarded-Email is not removed: %v", res.GetOkResponse().GetHeadersToRemove())
	}

	res = ask(map[string]string{"accept": "text/html"})
	d := res.GetDeniedResponse()
	if res.GetStatus().GetCode() != int32(codes.PermissionDenied) || d == nil || d.GetStatus().GetCode() != 302 {
		t.Fatalf("no session: status %v, ok %v, denied %v", res.GetStatus(), res.GetOkResponse(), d)
	}
	loc := ""
	for _, o := range d.GetHeaders() {
		if o.GetHeader().GetKey() == "Location" {
			loc = o.GetHeader().GetValue()
		}
	}
	if u, err := url.Parse(loc); err != nil || u.Path != "/oauth2/start" || u.Query().Get("rd") != "/reports?q=1" && u.Query().Get("rd") != w.gateway+"/reports?q=1" {
		t.Fatalf("no session: Location %q, want sign-in returning to the request", loc)
	}
	if !rp.logs.waitFor("envoy.service.auth.v3.Authorization/Check") {
		t.Errorf("no access line for the checks:\n%s", rp.logs.String())
	}
}

// extAuthzWorld is a world whose gateway also serves server.grpc_listen
// (with serverExtra, indented, added to the server section); it returns
// the listener's address.
func extAuthzWorld(t *testing.T, serverExtra string) (*world, *replica, string) {
	t.Helper()
	w := newWorld(t, worldOptions{})
	grpcAddr := freeAddr(t)
	rp := w.replicas[0]
	rp.stop(t)
	cfg, err := os.ReadFile(rp.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "\nserver:\n", "\nserver:\n  grpc_listen: "+grpcAddr+"\n"+serverExtra, 1))
	if err := os.WriteFile(rp.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	rp.start(t)
	if !rp.logs.waitFor("ext_authz gRPC listening") {
		t.Fatalf("no gRPC listener in the log:\n%s", rp.logs.String())
	}
	return w, rp, grpcAddr
}

func grpcClient(t *testing.T, addr string, creds credentials.TransportCredentials) authv3.AuthorizationClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// TestExtAuthzGRPCTLS: with server.grpc_tls the listener speaks TLS only:
// a client verifying the certificate gets answers, a plaintext one none.
func TestExtAuthzGRPCTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "grpc.crt"), filepath.Join(dir, "grpc.key")
	ca.issue(t, certFile, keyFile, 200)
	w, _, addr := extAuthzWorld(t, "  grpc_tls: {cert_file: "+certFile+", key_file: "+keyFile+"}\n")
	host := mustURL(w.gateway).Host
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Host: host, Path: "/", Scheme: "http",
			Headers: map[string]string{"accept": "application/json"}}}}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.pem)
	res, err := grpcClient(t, addr, credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})).Check(ctx, req)
	if err != nil {
		t.Fatalf("Check over TLS: %v", err)
	}
	if d := res.GetDeniedResponse(); d == nil || d.GetStatus().GetCode() != 401 {
		t.Fatalf("no session over TLS: %v", res)
	}
	if _, err := grpcClient(t, addr, insecure.NewCredentials()).Check(ctx, req); err == nil {
		t.Fatal("a plaintext client got an answer from the TLS listener")
	}
}
