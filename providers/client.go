package providers

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// maxResponseBytes caps what we read from a provider (token responses,
// discovery, JWKS, userinfo): a hostile or broken provider must not make the
// gateway buffer without bound (SECURITY.md §4.1).
const maxResponseBytes = 1 << 20

// newHTTPClient returns the client for all calls to a provider: an overall
// timeout, bounded bodies, and no redirects (a token endpoint that redirects
// elsewhere would carry our client secret and the code to another host).
func newHTTPClient(base http.RoundTripper, timeout time.Duration) *http.Client {
	if base == nil {
		base = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: timeout,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   16,
			ForceAttemptHTTP2:     true,
		}
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: limitedTransport{base},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return fmt.Errorf("%w to %s: providers are called without redirects", errRedirectRefused, req.URL.Redacted())
		},
	}
}

type limitedTransport struct{ base http.RoundTripper }

func (t limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxResponseBytes}
	return resp, nil
}

var (
	errResponseTooLarge = errors.New("provider response too large")
	errRedirectRefused  = errors.New("refusing redirect")
)

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte available means the body is over the limit.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, errResponseTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
