package proxy

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/portcullis/portcullis/session"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// extAuthzClient serves e's handler as the ext_authz service on a
// loopback listener and returns a real gRPC client for it.
func extAuthzClient(t *testing.T, e *env) authv3.AuthorizationClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	NewExtAuthz(e.h).Register(s)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// checkRequest describes a request as Envoy does: lower-case header names,
// pseudo-headers included.
func checkRequest(method, host, path string, headers ...string) *authv3.CheckRequest {
	hm := map[string]string{":authority": host, ":path": path, ":method": method}
	for i := 0; i+1 < len(headers); i += 2 {
		hm[strings.ToLower(headers[i])] = headers[i+1]
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "192.0.2.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 50000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Host: host, Path: path, Scheme: "https", Protocol: "HTTP/1.1", Headers: hm,
		}},
	}}
}

func check(t *testing.T, c authv3.AuthorizationClient, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	res, err := c.Check(context.Background(), req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return res
}

func okHeaders(t *testing.T, res *authv3.CheckResponse) map[string]string {
	t.Helper()
	if res.GetStatus().GetCode() != int32(codes.OK) || res.GetOkResponse() == nil {
		t.Fatalf("want OK with an ok_response, got status %v, denied %v", res.GetStatus(), res.GetDeniedResponse())
	}
	out := map[string]string{}
	for _, o := range res.GetOkResponse().GetHeaders() {
		if o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %s: append action %v, want overwrite", o.GetHeader().GetKey(), o.GetAppendAction())
		}
		out[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	return out
}

func denial(t *testing.T, res *authv3.CheckResponse, code int) *authv3.DeniedHttpResponse {
	t.Helper()
	d := res.GetDeniedResponse()
	if res.GetStatus().GetCode() != int32(codes.PermissionDenied) || d == nil {
		t.Fatalf("want PERMISSION_DENIED with a denied_response, got status %v, ok %v", res.GetStatus(), res.GetOkResponse())
	}
	if got := int(d.GetStatus().GetCode()); got != code {
		t.Fatalf("denied status %d, want %d; body %q", got, code, d.GetBody())
	}
	return d
}

func deniedHeader(d *authv3.DeniedHttpResponse, name string) string {
	for _, o := range d.GetHeaders() {
		if strings.EqualFold(o.GetHeader().GetKey(), name) {
			return o.GetHeader().GetValue()
		}
	}
	return ""
}

func TestExtAuthzAllowsWithIdentityHeaders(t *testing.T) {
	e := newEnv(t, nil)
	c := extAuthzClient(t, e)
	res := check(t, c, checkRequest("GET", "app.example.com", "/reports?q=1",
		"cookie", "theme=dark; "+e.sessionCookie("alice", "alice@example.com", "admins"),
		"x-auth-request-email", "mallory@example.com"))
	h := okHeaders(t, res)
	if h[hdrAuthEmail] != "alice@example.com" || h[hdrAuthUser] != "alice" || h[hdrAuthGroups] != "admins" {
		t.Fatalf("identity headers %v", h)
	}
	if h["X-Portcullis-Assertion"] == "" && h[e.h.authAssertion] == "" {
		t.Fatalf("no assertion header among %v", h)
	}
	for k := range h {
		if k == "Cache-Control" || k == "Set-Cookie" {
			t.Errorf("%s must not be set on the upstream request", k)
		}
	}
	if logs := e.logs.String(); !strings.Contains(logs, envoyGRPCRoute) {
		t.Errorf("no access line for the check in %q", logs)
	}
}

func TestExtAuthzRemovesSpoofedIdentityHeaders(t *testing.T) {
	e := newEnv(t, nil)
	c := extAuthzClient(t, e)
	res := check(t, c, checkRequest("GET", "app.example.com", "/",
		"cookie", e.sessionCookie("alice", "alice@example.com"),
		"x-forwarded-email", "ceo@example.com", "x_forwarded_user", "ceo", "remote-user", "ceo"))
	okHeaders(t, res)
	remove := res.GetOkResponse().GetHeadersToRemove()
	for _, n := range []string{"x-forwarded-email", "x-forwarded-user", "x_forwarded_user", "remote-user", "x-webauth-user", "x-forwarded-groups"} {
		if !slices.Contains(remove, n) {
			t.Errorf("headers_to_remove lacks %s: %v", n, remove)
		}
	}
	// What the answer sets it does not also remove, and Envoy's own
	// forwarding headers stay.
	for _, n := range []string{"x-auth-request-email", "x-forwarded-for", "x-forwarded-proto", "x-request-id"} {
		if slices.Contains(remove, n) {
			t.Errorf("headers_to_remove names %s", n)
		}
	}
}

func TestExtAuthzRedirectsBrowserWithoutSession(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Server.AllowedRedirectHosts = []string{".example.com"} })
	c := extAuthzClient(t, e)
	d := denial(t, check(t, c, checkRequest("GET", "app.example.com", "/reports?q=1", "accept", "text/html")), 302)
	loc, err := url.Parse(deniedHeader(d, "Location"))
	if err != nil || loc.Host != "gw.example.com" || !strings.HasPrefix(loc.Path, "/oauth2/") {
		t.Fatalf("Location %q, want the gateway's sign-in", deniedHeader(d, "Location"))
	}
	if rd := loc.Query().Get("rd"); rd != "https://app.example.com/reports?q=1" {
		t.Fatalf("sign-in returns to %q (Location %s)", rd, loc)
	}
}

func TestExtAuthzJSONClientGets401(t *testing.T) {
	e := newEnv(t, nil)
	c := extAuthzClient(t, e)
	d := denial(t, check(t, c, checkRequest("GET", "app.example.com", "/api", "accept", "application/json")), 401)
	var m map[string]any
	if err := json.Unmarshal([]byte(d.GetBody()), &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", d.GetBody(), err)
	}
	if deniedHeader(d, "Location") != "" {
		t.Fatal("a JSON client must not be redirected")
	}
	if !strings.Contains(deniedHeader(d, "Content-Type"), "json") {
		t.Fatalf("Content-Type %q", deniedHeader(d, "Content-Type"))
	}
}

func TestExtAuthzDeniesOtherDomain(t *testing.T) {
	e := newEnv(t, nil)
	c := extAuthzClient(t, e)
	d := denial(t, check(t, c, checkRequest("GET", "app.example.com", "/",
		"cookie", e.sessionCookie("eve", "eve@other.org"))), 403)
	if d.GetBody() == "" || deniedHeader(d, "Content-Type") == "" {
		t.Fatalf("the 403 carries no page: %q", d.GetBody())
	}
}

func TestExtAuthzRefusesMalformed(t *testing.T) {
	e := newEnv(t, nil)
	c := extAuthzClient(t, e)
	for name, req := range map[string]*authv3.CheckRequest{
		"no http attributes": {},
		"lower-case method":  checkRequest("get", "app.example.com", "/"),
		"bad host":           checkRequest("GET", "app.example.com/evil", "/"),
		"bad path":           checkRequest("GET", "app.example.com", "/a/%2e%2e/b%00"),
		"bad scheme": func() *authv3.CheckRequest {
			r := checkRequest("GET", "app.example.com", "/")
			r.Attributes.Request.Http.Scheme = "ftp"
			return r
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			d := denial(t, check(t, c, req), 400)
			if strings.Contains(d.GetBody(), "malformed") {
				t.Fatalf("the body shows internals: %q", d.GetBody())
			}
		})
	}
}

func TestExtAuthzReissuedSessionCookie(t *testing.T) {
	e := lifecycleEnv(t)
	c := extAuthzClient(t, e)
	recent := e.cookieFor(e.baseSession(func(s *session.Session) { s.LastSeen = e.clock().Add(-2 * time.Minute) }))
	res := check(t, c, checkRequest("GET", "gw.example.com", "/", "cookie", recent))
	okHeaders(t, res)
	var cookies []string
	for _, o := range res.GetOkResponse().GetResponseHeadersToAdd() {
		if o.GetHeader().GetKey() != "Set-Cookie" || o.GetAppendAction() != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD || !o.GetAppend().GetValue() {
			t.Errorf("response header %v", o)
			continue
		}
		cookies = append(cookies, o.GetHeader().GetValue())
	}
	if len(cookies) == 0 || !strings.HasPrefix(cookies[0], e.store.Name()+"=") {
		t.Fatalf("the re-issued session is not in response_headers_to_add: %v", cookies)
	}

	// An idle session ends: the sign-in redirect clears its cookie.
	idle := e.cookieFor(e.baseSession(func(s *session.Session) { s.LastSeen = e.clock().Add(-11 * time.Minute) }))
	d := denial(t, check(t, c, checkRequest("GET", "gw.example.com", "/", "cookie", idle)), 302)
	if v := deniedHeader(d, "Set-Cookie"); !strings.HasPrefix(v, e.store.Name()+"=") || !strings.Contains(v, "Max-Age=0") {
		t.Fatalf("the ended session's cookie is not cleared: %q", v)
	}
}

// BenchmarkExtAuthzCheck is one allowed ext_authz check without the gRPC
// transport: BenchmarkForwardAuth's decision driven through a recorder
// from a CheckRequest, and the answer turned into a CheckResponse.
func BenchmarkExtAuthzCheck(b *testing.B) {
	h, store := benchHandler(b, nil)
	a := NewExtAuthz(h)
	req := checkRequest("GET", "gw.example.com", "/dashboard/panel?id=7", "cookie", benchCookie(b, store))
	b.ReportAllocs()
	for b.Loop() {
		if res, _ := a.Check(context.Background(), req); res.GetOkResponse() == nil {
			b.Fatal("not allowed")
		}
	}
}

func TestGRPCListenConfig(t *testing.T) {
	for _, tt := range []struct {
		name    string
		server  func(*ServerConfig)
		wantErr string
	}{
		{"off by default", func(*ServerConfig) {}, ""},
		{"loopback", func(s *ServerConfig) { s.GRPCListen = "127.0.0.1:9191" }, ""},
		{"with tls", func(s *ServerConfig) {
			s.GRPCListen, s.GRPCTLS = "127.0.0.1:9191", GRPCTLS{CertFile: "c.pem", KeyFile: "k.pem"}
		}, ""},
		{"not host:port", func(s *ServerConfig) { s.GRPCListen = "9191" }, "server.grpc_listen"},
		{"half tls", func(s *ServerConfig) { s.GRPCListen, s.GRPCTLS.CertFile = "127.0.0.1:9191", "c.pem" }, "server.grpc_tls"},
		{"tls without listener", func(s *ServerConfig) { s.GRPCTLS = GRPCTLS{CertFile: "c.pem", KeyFile: "k.pem"} }, "server.grpc_listen"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tryNew(t, func(c *Config) { tt.server(&c.Server) })
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}

// With encode_raw_headers Envoy sends header_map with raw values instead
// of the headers map: the session cookie is read from there.
func TestExtAuthzRawHeaderMap(t *testing.T) {
	e := newEnv(t, nil)
	c := extAuthzClient(t, e)
	req := checkRequest("GET", "app.example.com", "/")
	req.Attributes.Request.Http.Headers = nil
	req.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: ":authority", RawValue: []byte("app.example.com")},
		{Key: "cookie", RawValue: []byte(e.sessionCookie("alice", "alice@example.com"))},
	}}
	if h := okHeaders(t, check(t, c, req)); h[hdrAuthEmail] != "alice@example.com" {
		t.Fatalf("identity headers %v", h)
	}
}

// TestExtAuthzTrustedIPs: policy.trusted_ips reads the source address
// Envoy reports, never an X-Forwarded-For inside the described request.
func TestExtAuthzTrustedIPs(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Policy.TrustedIPs = []string{"192.0.2.0/24"} })
	c := extAuthzClient(t, e)
	okHeaders(t, check(t, c, checkRequest("GET", "app.example.com", "/app"))) // source 192.0.2.7
	req := checkRequest("GET", "app.example.com", "/app", "x-forwarded-for", "192.0.2.9")
	req.Attributes.Source.Address.GetSocketAddress().Address = "203.0.113.5"
	denial(t, check(t, c, req), 302)
	if !strings.Contains(e.logs.String(), "203.0.113.5") {
		t.Errorf("the access line does not name the source Envoy reported:\n%s", e.logs)
	}
}

// TestExtAuthzKeepsSessionCookieFromApp: the application behind Envoy
// gets the client's other cookies, never the gateway's session, over
// gRPC (headers / headers_to_remove) and HTTP (Cookie /
// x-envoy-auth-headers-to-remove in the answer).
func TestExtAuthzKeepsSessionCookieFromApp(t *testing.T) {
	e := newEnv(t, nil)
	c := extAuthzClient(t, e)
	session := e.sessionCookie("alice", "alice@example.com")

	h := okHeaders(t, check(t, c, checkRequest("GET", "app.example.com", "/", "cookie", "theme=dark; "+session+"; lang=en")))
	if h["cookie"] != "theme=dark; lang=en" {
		t.Errorf("gRPC: upstream cookie = %q, want the client's others", h["cookie"])
	}
	res := check(t, c, checkRequest("GET", "app.example.com", "/", "cookie", session))
	if h := okHeaders(t, res); h["cookie"] != "" || !slices.Contains(res.GetOkResponse().GetHeadersToRemove(), "cookie") {
		t.Errorf("gRPC, only the session: cookie %q set, headers_to_remove %v", h["cookie"], res.GetOkResponse().GetHeadersToRemove())
	}

	resp := e.do(get("https://gw.example.com/oauth2/auth/app", "Cookie", "theme=dark; "+session))
	if resp.StatusCode != 200 || resp.Header.Get("Cookie") != "theme=dark" {
		t.Errorf("HTTP ext_authz: %d, Cookie %q, want 200 and the client's other cookies", resp.StatusCode, resp.Header.Get("Cookie"))
	}
	resp = e.do(get("https://gw.example.com/oauth2/auth/app", "Cookie", session))
	if resp.StatusCode != 200 || resp.Header.Get("X-Envoy-Auth-Headers-To-Remove") != "cookie" || resp.Header.Get("Cookie") != "" {
		t.Errorf("HTTP ext_authz, only the session: %d, %v", resp.StatusCode, resp.Header)
	}
	// nginx's /oauth2/auth has nothing to do with either.
	resp = e.do(authReq(trustedPeer, "/oauth2/auth", "Cookie", "theme=dark; "+session))
	if resp.Header.Get("Cookie") != "" || resp.Header.Get("X-Envoy-Auth-Headers-To-Remove") != "" {
		t.Errorf("/oauth2/auth answered Envoy's headers: %v", resp.Header)
	}
}
