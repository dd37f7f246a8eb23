package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The client side of the OAuth 2.0 device authorization grant (RFC 8628)
// against the gateway's own endpoints.

const (
	cliClientID      = "portcullis-cli"
	deviceGrantType  = "urn:ietf:params:oauth:grant-type:device_code"
	deviceAuthorize  = "/oauth2/device/authorize"
	deviceToken      = "/oauth2/device/token"
	deviceRevoke     = "/oauth2/revoke"
	slowDownStep     = 5  // seconds added to the interval on slow_down (§3.5)
	defaultInterval  = 5  // seconds, when the response has no interval (§3.2)
	maxPollFailures  = 5  // consecutive unreachable polls before giving up
	maxBackoffFactor = 12 // a failing poll backs off to at most 12× the interval
)

// deviceSecond is the length of one of the grant's seconds (interval,
// expires_in of the code). Tests shorten it so that polling takes
// milliseconds; the token's own lifetime is always in real seconds.
var deviceSecond = time.Second

var (
	errAccessDenied = errors.New("the sign-in was denied")
	errCodeExpired  = errors.New("the device code expired")
)

// b64token is RFC 6750 §2.1's token syntax: what may follow "Bearer ".
var b64token = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

// oauthError is an error response of the gateway (RFC 6749 §5.2), or a
// status without one.
type oauthError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
	RetryAfter  time.Duration
}

func (e *oauthError) Error() string {
	switch {
	case e.Status == http.StatusNotFound:
		return "the gateway does not serve the device grant (404): it is turned off there, or this URL is not a Portcullis gateway"
	case e.Status == http.StatusServiceUnavailable:
		msg := "the gateway is unavailable (503)"
		if e.RetryAfter > 0 {
			msg += fmt.Sprintf("; try again in %s", e.RetryAfter)
		}
		return msg
	case e.Status >= 300 && e.Status < 400:
		return fmt.Sprintf("the gateway answered with a redirect (%d): give its public https:// URL", e.Status)
	case e.Code == "":
		return fmt.Sprintf("the gateway answered %d %s", e.Status, http.StatusText(e.Status))
	case e.Description != "":
		return fmt.Sprintf("the gateway refused (%d %s): %s", e.Status, printable(e.Code), printable(e.Description))
	}
	return fmt.Sprintf("the gateway refused (%d %s)", e.Status, printable(e.Code))
}

// deviceAuth is the device authorization response (§3.2).
type deviceAuth struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"`
	Interval                int    `json:"interval"`
}

// tokenReply is the access token response (§3.5, RFC 6749 §5.1).
type tokenReply struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	obtained    time.Time
}

// deviceClient talks to one gateway.
type deviceClient struct {
	origin string
	http   *http.Client
	now    func() time.Time
	wait   func(ctx context.Context, d time.Duration) error
}

func newDeviceClient(origin string) *deviceClient {
	return &deviceClient{origin: origin, http: cliHTTPClient(), now: time.Now, wait: sleepCtx}
}

// cliHTTPClient never follows a redirect: a redirected POST would carry
// the device code or the token to wherever the redirect points.
func cliHTTPClient() *http.Client {
	return &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// login runs the whole grant: ask for a code, show it, poll until the user
// approves, denies, or the code expires.
func (c *deviceClient) login(ctx context.Context, stderr io.Writer, show showOptions) (*tokenReply, error) {
	da, err := c.authorize(ctx)
	if err != nil {
		return nil, err
	}
	showCode(stderr, c.origin, da, show)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(da.ExpiresIn)*deviceSecond)
	defer cancel()
	return c.poll(ctx, da)
}

// authorize is the device authorization request (§3.1).
func (c *deviceClient) authorize(ctx context.Context) (*deviceAuth, error) {
	var da deviceAuth
	if err := c.post(ctx, deviceAuthorize, url.Values{"client_id": {cliClientID}}, &da); err != nil {
		return nil, fmt.Errorf("asking %s for a code: %w", c.origin, err)
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" || da.ExpiresIn <= 0 {
		return nil, fmt.Errorf("asking %s for a code: the answer lacks device_code, user_code, verification_uri or expires_in", c.origin)
	}
	if _, err := checkWebURL(da.VerificationURI); err != nil {
		return nil, fmt.Errorf("asking %s for a code: verification_uri: %w", c.origin, err)
	}
	if _, err := checkWebURL(da.VerificationURIComplete); err != nil {
		da.VerificationURIComplete = "" // optional (§3.2): show the code instead
	}
	if da.Interval <= 0 {
		da.Interval = defaultInterval
	}
	return &da, nil
}

// poll asks the token endpoint until it answers with a token or a final
// error (§3.4, §3.5): never sooner than the interval, 5 s more after each
// slow_down, and backing off while the gateway cannot be reached. ctx
// carries the code's expiry.
func (c *deviceClient) poll(ctx context.Context, da *deviceAuth) (*tokenReply, error) {
	interval := time.Duration(da.Interval) * deviceSecond
	form := url.Values{"grant_type": {deviceGrantType}, "device_code": {da.DeviceCode}, "client_id": {cliClientID}}
	delay, failures := interval, 0
	for {
		if err := c.wait(ctx, delay); err != nil {
			return nil, expiredOr(ctx, err)
		}
		var tok tokenReply
		err := c.post(ctx, deviceToken, form, &tok)
		var oe *oauthError
		switch {
		case err == nil:
			tok.obtained = c.now()
			return checkTokenReply(&tok)
		case errors.As(err, &oe) && oe.Code == "authorization_pending":
			delay, failures = interval, 0
		case errors.As(err, &oe) && oe.Code == "slow_down":
			interval += slowDownStep * deviceSecond // for this and every later request
			delay, failures = interval, 0
		case errors.As(err, &oe) && oe.Code == "access_denied":
			return nil, errAccessDenied
		case errors.As(err, &oe) && oe.Code == "expired_token":
			return nil, errCodeExpired
		case ctx.Err() != nil:
			return nil, expiredOr(ctx, ctx.Err())
		case transient(err) && failures < maxPollFailures:
			failures++
			delay = backoff(interval, failures, oe)
		default:
			return nil, fmt.Errorf("waiting for the sign-in at %s: %w", c.origin, err)
		}
	}
}

// expiredOr maps the code's deadline to errCodeExpired; a cancellation
// (Ctrl-C) stays context.Canceled.
func expiredOr(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errCodeExpired
	}
	return err
}

// transient: the gateway could not be reached, or said 5xx. §3.5 asks for
// an exponential back-off on a connection timeout.
func transient(err error) bool {
	var oe *oauthError
	if errors.As(err, &oe) {
		return oe.Status >= 500
	}
	return true // transport errors: refused, reset, timeout
}

// backoff doubles the wait per failure, capped, and honours Retry-After.
func backoff(interval time.Duration, failures int, oe *oauthError) time.Duration {
	d := interval << failures
	if limit := interval * maxBackoffFactor; d > limit {
		d = limit
	}
	if oe != nil && oe.RetryAfter > d {
		d = min(oe.RetryAfter, 60*deviceSecond)
	}
	return d
}

// checkTokenReply refuses what could not be sent back as a bearer token
// or whose lifetime is unknown.
func checkTokenReply(tok *tokenReply) (*tokenReply, error) {
	switch {
	case !strings.EqualFold(tok.TokenType, "Bearer"):
		return nil, fmt.Errorf("the gateway issued a %q token; this client uses only Bearer tokens", printable(tok.TokenType))
	case !b64token.MatchString(tok.AccessToken):
		return nil, errors.New("the gateway issued an access token that is not a valid bearer token (RFC 6750 §2.1)")
	case tok.ExpiresIn <= 0:
		return nil, errors.New("the gateway issued a token without expires_in; its lifetime is unknown, so it is not stored")
	}
	return tok, nil
}

// post sends form to path at the gateway and decodes a 200 JSON answer
// into out; anything else is an *oauthError or a transport error.
func (c *deviceClient) post(ctx context.Context, path string, form url.Values, out any) error {
	resp, err := postForm(ctx, c.http, c.origin+path, form)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		oe := &oauthError{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
		// RFC 6749 §5.2 says application/json; read the error whatever the
		// Content-Type says. A status without a JSON body is still an answer.
		_ = json.Unmarshal(body, oe)
		return oe
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("the gateway's answer is not the expected JSON: %w", err)
	}
	return nil
}

// postForm POSTs an application/x-www-form-urlencoded body.
func postForm(ctx context.Context, client *http.Client, u string, form url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "portcullis-cli/"+version())
	return client.Do(req)
}

// retryAfter reads a Retry-After of delay-seconds (the gateway's form).
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * deviceSecond
}
