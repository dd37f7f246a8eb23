package proxy

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// extauthz.go is Envoy's ext_authz gRPC service
// (envoy.service.auth.v3.Authorization/Check) on server.grpc_listen. It is
// the same decision as /oauth2/auth/<path>, the HTTP ext_authz variant:
// the CheckRequest becomes an *http.Request and a Target, answerAuth
// decides it into a response recorder, and the recorded answer becomes
// the CheckResponse. One code path; the cost is one recorder and one
// request per check (BenchmarkExtAuthzCheck).
//
// Envoy is the peer asking, so what it says about the request it
// describes (method, scheme, authority, path) is believed whatever
// server.trusted_proxies says: it is the listener's only intended client,
// which is why the listener belongs on loopback or a pod-local address.
// The forwarded headers the client sent inside the request are not: they
// are stripped before anything reads them, as on the main listener.

// ExtAuthz is the Authorization service for one Handler.
type ExtAuthz struct {
	authv3.UnimplementedAuthorizationServer
	h *Handler
	// remove is every managed header name, lower case, sorted: Envoy
	// removes them from the request it forwards, so an application only
	// ever sees identity headers the gateway set.
	remove []string
	// upstream are the headers an allowed answer sets on the request.
	upstream []string
}

// envoyOwned are managed headers Envoy's connection manager sets or
// sanitises itself (use_remote_address, xff_num_trusted_hops, request ID
// generation) before ext_authz runs: removing them would take Envoy's own
// values, and its tracing, from the upstream request.
var envoyOwned = map[string]bool{"x-forwarded-for": true, "x-forwarded-proto": true, "x-request-id": true}

// NewExtAuthz returns the ext_authz service deciding with h.
func NewExtAuthz(h *Handler) *ExtAuthz {
	a := &ExtAuthz{h: h}
	for n := range h.managed.names {
		if !envoyOwned[n] {
			a.remove = append(a.remove, n)
		}
	}
	slices.Sort(a.remove)
	a.upstream = []string{hdrAuthUser, hdrAuthEmail, hdrAuthGroups, hdrAuthPreferredUsername,
		hdrAuthAccessToken, "Authorization", h.authAssertion}
	return a
}

// Register adds the service to s.
func (a *ExtAuthz) Register(s *grpc.Server) { authv3.RegisterAuthorizationServer(s, a) }

// RegisterCurrent registers the Authorization service answered by
// whichever ExtAuthz current returns at each check: a configuration reload
// swaps it while the gRPC server keeps running.
func RegisterCurrent(s *grpc.Server, current func() *ExtAuthz) {
	authv3.RegisterAuthorizationServer(s, currentAuthz{current: current})
}

type currentAuthz struct {
	authv3.UnimplementedAuthorizationServer
	current func() *ExtAuthz
}

func (c currentAuthz) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return c.current().Check(ctx, req)
}

// Check answers one ext_authz request. Every answer, a refusal included,
// is a CheckResponse: a gRPC error would make Envoy apply its own
// failure_mode_allow, which the gateway must not decide for it.
func (a *ExtAuthz) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := a.h
	r, t, perr := a.request(ctx, req)
	rq := &request{id: h.newRequestID(), start: h.now(), route: envoyGRPCRoute, mode: "auth"}
	// The client is the source Envoy reports (sourceAddr); the forwarded
	// headers inside the request are not believed (this file's comment).
	rq.client = h.clientOf(r, nil)
	rec := &recorder{ResponseWriter: httptest.NewRecorder()}
	err := perr
	if err == nil {
		err = h.answerAuth(rec, r, rq, t, nil, true, http.StatusOK)
	}
	if err != nil {
		e := asHTTPError(err)
		rq.err = e
		if !rec.wroteHeader {
			h.render(rec, r, rq, e)
		}
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	h.logRequest(r, rec, rq)
	h.metrics.request(rq.route, rq.mode, status, h.now().Sub(rq.start))
	res := rec.ResponseWriter.(*httptest.ResponseRecorder)
	if status == http.StatusOK && err == nil {
		return a.allowed(req, res.Header(), r.Header), nil
	}
	return deniedResponse(status, res.Header(), res.Body.String()), nil
}

// envoyGRPCRoute labels ext_authz gRPC checks in logs and metrics.
const envoyGRPCRoute = "envoy.service.auth.v3.Authorization/Check"

// request turns the CheckRequest into the request and Target answerAuth
// decides. A request it cannot describe is refused with 400, like the HTTP
// variant's; r is usable for rendering the refusal either way.
func (a *ExtAuthz) request(ctx context.Context, req *authv3.CheckRequest) (*http.Request, Target, error) {
	h := a.h
	hr := req.GetAttributes().GetRequest().GetHttp()
	r := (&http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/"}, Header: http.Header{},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: h.public.Host}).WithContext(ctx)
	r.RemoteAddr = sourceAddr(ctx, req)
	copyCheckHeaders(r.Header, hr)
	h.managed.strip(r.Header) // as ServeHTTP does: no client identity gets further
	refuse := func(msg string, err error) (*http.Request, Target, error) {
		return r, Target{}, errorf(http.StatusBadRequest, msg, err)
	}
	if hr == nil {
		return refuse("The request is not accepted by this gateway.", errBadForwarded)
	}
	if !isMethod(hr.GetMethod()) {
		return refuse("The request method is not accepted by this gateway.", errMethod(hr.GetMethod()))
	}
	host := hr.GetHost()
	if !validHostPort(host) {
		return refuse("The request host is not accepted by this gateway.", errorfHost(host))
	}
	target, _, _ := strings.Cut(hr.GetPath(), "#")
	path, query, _ := strings.Cut(target, "?")
	p, raw, err := h.routes.canonicalFor(host, path) // "%2F" only where pass_encoded_slashes admits it
	if err != nil {
		return refuse("The request path is not accepted by this gateway.", err)
	}
	t := Target{Method: hr.GetMethod(), Host: normHost(host), HostPort: strings.ToLower(host),
		Path: p, RawPath: raw, Query: query, Scheme: h.public.Scheme}
	switch s := strings.ToLower(hr.GetScheme()); s {
	case "http", "https":
		t.Scheme = s
	case "":
	default:
		return refuse("The request scheme is not accepted by this gateway.", errorfScheme(s))
	}
	r.Method, r.Host = t.Method, host
	r.URL = &url.URL{Path: upstreamPath(p), RawPath: raw, RawQuery: query}
	return r, t, nil
}

func errorfHost(host string) error {
	return &forwardError{what: "host", v: truncate(host, 128)}
}

func errorfScheme(s string) error {
	return &forwardError{what: "scheme", v: truncate(s, 32)}
}

// forwardError is a request attribute Envoy sent that is not valid.
type forwardError struct{ what, v string }

func (e *forwardError) Error() string { return errBadForwarded.Error() + ": " + e.what + " " + e.v }
func (e *forwardError) Unwrap() error { return errBadForwarded }

// copyCheckHeaders copies the request's headers as Envoy describes them:
// the headers map (names lower case, repeated headers joined), or
// header_map when Envoy sends raw values. Pseudo-headers (:authority,
// :path) are the attributes' own fields and are skipped.
func copyCheckHeaders(dst http.Header, hr *authv3.AttributeContext_HttpRequest) {
	add := func(k, v string) {
		if k == "" || k[0] == ':' {
			return
		}
		k = http.CanonicalHeaderKey(k)
		dst[k] = append(dst[k], v)
	}
	for k, v := range hr.GetHeaders() {
		add(k, v)
	}
	for _, hv := range hr.GetHeaderMap().GetHeaders() {
		v := hv.GetValue()
		if len(hv.GetRawValue()) > 0 {
			v = string(hv.GetRawValue())
		}
		add(hv.GetKey(), v)
	}
}

// sourceAddr is the downstream client's address as Envoy reports it, for
// the log and audit lines; the gRPC peer's when Envoy sent none.
func sourceAddr(ctx context.Context, req *authv3.CheckRequest) string {
	if sa := req.GetAttributes().GetSource().GetAddress().GetSocketAddress(); sa != nil && sa.GetAddress() != "" {
		return net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// allowed is the OK answer: the identity headers set on the upstream
// request, every other managed header removed from it, the gateway's own
// cookies taken out of its Cookie header (in the request as described,
// in), and the re-issued session cookie, if any, added to the client's
// response.
func (a *ExtAuthz) allowed(req *authv3.CheckRequest, hdr, in http.Header) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{Headers: make([]*corev3.HeaderValueOption, 0, len(a.upstream)),
		HeadersToRemove: make([]string, 0, len(a.remove)+4)}
	set := make(map[string]bool, len(a.upstream))
	for _, name := range a.upstream {
		vs := hdr[name]
		if len(vs) == 0 {
			continue
		}
		set[strings.ToLower(name)] = true
		ok.Headers = append(ok.Headers, headerOption(name, vs[0], false))
	}
	// Envoy applies headers_to_remove after the headers it sets in some
	// versions: a header the answer sets is never also removed.
	for _, n := range a.remove {
		if !set[n] {
			ok.HeadersToRemove = append(ok.HeadersToRemove, n)
		}
	}
	// Any other spelling the client sent (X_Auth_Request_Email) is named
	// as it arrived.
	for k := range req.GetAttributes().GetRequest().GetHttp().GetHeaders() {
		lk := strings.ToLower(k)
		if a.h.managed.has(lk) && !set[lk] && !envoyOwned[lk] && !slices.Contains(ok.HeadersToRemove, lk) {
			ok.HeadersToRemove = append(ok.HeadersToRemove, lk)
		}
	}
	// The session is the gateway's credential, not the application's: as
	// the reverse proxy does, the application gets the client's other
	// cookies only.
	switch kept, changed := a.h.upstreamCookie(in); {
	case !changed:
	case kept != "":
		ok.Headers = append(ok.Headers, headerOption("cookie", kept, false))
	default:
		ok.HeadersToRemove = append(ok.HeadersToRemove, "cookie")
	}
	for _, c := range hdr["Set-Cookie"] {
		ok.ResponseHeadersToAdd = append(ok.ResponseHeadersToAdd, headerOption("Set-Cookie", c, true))
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

// deniedResponse is every other answer, as the HTTP endpoints render it:
// the status, headers (Location, Set-Cookie, Content-Type, the page's
// security headers) and body Envoy sends the client.
func deniedResponse(status int, hdr http.Header, body string) *authv3.CheckResponse {
	d := &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode(status)}, Body: body}
	names := make([]string, 0, len(hdr))
	for k := range hdr {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for i, v := range hdr[k] {
			d.Headers = append(d.Headers, headerOption(k, v, i > 0))
		}
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: d},
	}
}

// headerOption is one header of an answer. Envoy versions before
// append_action read only the deprecated append flag, whose default in
// ext_authz answers is false (set, replacing): a value that must be
// appended (a second Set-Cookie) carries both, which Envoy accepts as
// APPEND_IF_EXISTS_OR_ADD is append_action's default.
func headerOption(k, v string, appendValue bool) *corev3.HeaderValueOption {
	o := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
	if appendValue {
		o.AppendAction, o.Append = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD, wrapperspb.Bool(true)
	}
	return o
}
