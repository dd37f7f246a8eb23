package demo

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// ErrSignInRejected is what SignIn returns when the provider answered the
// form with the form again: wrong username or password.
var ErrSignInRejected = errors.New("demo: sign-in rejected: wrong username or password")

// SignIn signs in through the provider's own login page, as a browser would:
// it loads the page, reads the form's action and hidden fields, and posts
// them with the username and password. There is no back door; what works
// here works in a browser. Tests and the load harness use it.
//
// loginURL is the login page the browser was sent to: the Location of the
// redirect from /authorize, or resp.Request.URL when c follows redirects.
// Give c a cookie jar when a gateway's cookies are part of the flow.
//
// The response returned is the first one that leaves the provider, and the
// caller closes its body:
//   - if c does not follow redirects, the redirect to the client's
//     redirect_uri carrying code and state (SignIn itself follows the
//     provider-internal hop from the form to /authorize/callback);
//   - if c follows redirects, whatever the chain ended on, typically the
//     page the gateway was protecting.
//
// A wrong username or password returns ErrSignInRejected; any other error
// page from the provider (an expired or used link) returns an error too.
func SignIn(ctx context.Context, c *http.Client, loginURL, username, password string) (*http.Response, error) {
	page, err := get(ctx, c, loginURL)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(page.Body, 1<<20))
	page.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("demo: reading the login page: %w", err)
	}
	if page.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("demo: login page %s answered %s", loginURL, page.Status)
	}
	action, form, err := parseLoginForm(page.Request.URL, string(body))
	if err != nil {
		return nil, err
	}
	form.Set("username", username)
	form.Set("password", password)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("demo: building the login post: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("demo: posting the login form: %w", err)
	}
	if resp.Request.Method == http.MethodPost && resp.StatusCode == http.StatusUnauthorized {
		resp.Body.Close()
		return nil, ErrSignInRejected
	}

	// Follow the provider's own redirect to /authorize/callback, which the
	// client may have declined to follow; stop at the first hop elsewhere.
	callback := strings.TrimSuffix(action.Path, loginPath) + "/authorize/callback"
	for range 3 {
		next, ok := redirectTarget(resp)
		if !ok || next.Scheme != action.Scheme || next.Host != action.Host || next.Path != callback {
			break
		}
		resp.Body.Close()
		if resp, err = get(ctx, c, next.String()); err != nil {
			return nil, err
		}
	}
	if resp.Request.URL.Host == action.Host && resp.StatusCode >= 400 {
		resp.Body.Close()
		return nil, fmt.Errorf("demo: provider answered %s at %s", resp.Status, resp.Request.URL.Path)
	}
	return resp, nil
}

func get(ctx context.Context, c *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("demo: building request for %s: %w", u, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("demo: requesting %s: %w", u, err)
	}
	return resp, nil
}

// redirectTarget is the absolute Location of a redirect response.
func redirectTarget(resp *http.Response) (*url.URL, bool) {
	if resp.StatusCode/100 != 3 {
		return nil, false
	}
	loc, err := resp.Location()
	return loc, err == nil
}

// The login template writes these attributes in this order; the parser is
// only meant to read our own page.
var (
	formActionRE  = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	hiddenInputRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// parseLoginForm finds the login form's absolute action and its hidden
// fields in page, which was served from base.
func parseLoginForm(base *url.URL, page string) (*url.URL, url.Values, error) {
	m := formActionRE.FindStringSubmatch(page)
	if m == nil {
		return nil, nil, errors.New("demo: no login form on the login page")
	}
	action, err := base.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return nil, nil, fmt.Errorf("demo: parsing the login form's action: %w", err)
	}
	form := url.Values{}
	for _, in := range hiddenInputRE.FindAllStringSubmatch(page, -1) {
		form.Add(html.UnescapeString(in[1]), html.UnescapeString(in[2]))
	}
	return action, form, nil
}
