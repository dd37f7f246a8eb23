package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/providers"
)

// The redirection endpoint under attack (SECURITY.md BCP-2/3/4/7, ISS-1..3,
// IDT-2, IDT-16; oauth2-proxy CVE-2017-1000069; traefik-forward-auth
// PR #77): what flow_test.go's TestCallbackRejects does not already cover.
// Every refusal must leave no session cookie and redeem no code.

// attempt is one started sign-in: its state and the login cookie.
type attempt struct {
	state string
	login string // Cookie header value
}

func (e *env) begin(rd string) attempt {
	e.t.Helper()
	start := e.do(get("https://gw.example.com/oauth2/start?rd=" + url.QueryEscape(rd)))
	loc, err := url.Parse(start.Header.Get("Location"))
	if err != nil || start.StatusCode != http.StatusFound {
		e.t.Fatalf("start: %d to %q", start.StatusCode, start.Header.Get("Location"))
	}
	for _, c := range start.Cookies() {
		if c.MaxAge > 0 {
			return attempt{state: loc.Query().Get("state"), login: c.Name + "=" + c.Value}
		}
	}
	e.t.Fatal("start set no login cookie")
	return attempt{}
}

func (e *env) callback(query, cookie string, header ...string) (*http.Response, http.Header) {
	e.t.Helper()
	r := get("https://gw.example.com/oauth2/callback?"+query, header...)
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	return e.serve(r)
}

// refused checks a callback that must not sign anyone in.
func refused(t *testing.T, e *env, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Errorf("status %d, want %d", resp.StatusCode, want)
	}
	for _, c := range resp.Cookies() {
		if c.Name == e.store.Name() && c.MaxAge >= 0 {
			t.Error("a session cookie was set")
		}
	}
}

func (e *env) redeemed() int {
	e.idp.mu.Lock()
	defer e.idp.mu.Unlock()
	return len(e.idp.redeemed)
}

func TestCallbackStateAttacks(t *testing.T) {
	for _, tt := range []struct {
		name  string
		query func(mine, theirs attempt) (query, cookie string)
		want  int
	}{
		{"no state, with a login cookie", func(m, _ attempt) (string, string) { return "code=c", m.login }, 400},
		{"empty state", func(m, _ attempt) (string, string) { return "code=c&state=", m.login }, 400},
		{"login CSRF: the attacker's code and state, the victim's own login cookie", func(m, o attempt) (string, string) {
			return "code=c&state=" + url.QueryEscape(o.state), m.login
		}, 400},
		{"login CSRF: the attacker's code and state, no login cookie", func(_, o attempt) (string, string) {
			return "code=c&state=" + url.QueryEscape(o.state), ""
		}, 400},
		{"state with a different case", func(m, _ attempt) (string, string) {
			return "code=c&state=" + url.QueryEscape(strings.ToUpper(m.state)), m.login
		}, 400},
		{"state with a suffix", func(m, _ attempt) (string, string) { return "code=c&state=" + url.QueryEscape(m.state+"x"), m.login }, 400},
		{"state truncated", func(m, _ attempt) (string, string) { return "code=c&state=" + url.QueryEscape(m.state[:10]), m.login }, 400},
		{"state twice, ours second", func(m, _ attempt) (string, string) {
			return "code=c&state=forged&state=" + url.QueryEscape(m.state), m.login
		}, 400},
		{"login cookie renamed to the state's slot", func(m, o attempt) (string, string) {
			name, _, _ := strings.Cut(m.login, "=")
			_, value, _ := strings.Cut(o.login, "=")
			return "code=c&state=" + url.QueryEscape(m.state), name + "=" + value
		}, 400},
		{"login cookie value tampered", func(m, _ attempt) (string, string) {
			return "code=c&state=" + url.QueryEscape(m.state), m.login[:len(m.login)-6] + "AAAAAA"
		}, 400},
		{"huge state", func(m, _ attempt) (string, string) {
			return "code=c&state=" + strings.Repeat("s", 4096), m.login
		}, 400},
		{"100 KB state", func(m, _ attempt) (string, string) {
			return "code=c&state=" + strings.Repeat("A", 100<<10), m.login
		}, 400},
		{"state with control characters", func(m, _ attempt) (string, string) {
			return "code=c&state=" + url.QueryEscape(m.state+"\r\nSet-Cookie: a=b"), m.login
		}, 400},
		{"100 KB code", func(m, _ attempt) (string, string) {
			return "code=" + strings.Repeat("c", 100<<10) + "&state=" + url.QueryEscape(m.state), m.login
		}, 400},
		{"code twice", func(m, _ attempt) (string, string) {
			return "code=never-issued&code=c&state=" + url.QueryEscape(m.state), m.login
		}, 400},
		{"code twice, the issued one first", func(m, _ attempt) (string, string) {
			return "code=c&code=never-issued&state=" + url.QueryEscape(m.state), m.login
		}, 400},
		{"the same code twice", func(m, _ attempt) (string, string) {
			return "code=c&code=c&state=" + url.QueryEscape(m.state), m.login
		}, 400},
		{"state twice, ours first", func(m, _ attempt) (string, string) {
			return "code=c&state=" + url.QueryEscape(m.state) + "&state=forged", m.login
		}, 400},
		{"the same state twice", func(m, _ attempt) (string, string) {
			return "code=c&state=" + url.QueryEscape(m.state) + "&state=" + url.QueryEscape(m.state), m.login
		}, 400},
		{"state twice, once empty", func(m, _ attempt) (string, string) {
			return "code=c&state=&state=" + url.QueryEscape(m.state), m.login
		}, 400},
		{"iss twice", func(m, _ attempt) (string, string) {
			return "code=c&iss=x&iss=y&state=" + url.QueryEscape(m.state), m.login
		}, 400},
		{"error twice", func(m, _ attempt) (string, string) {
			return "error=a&error=b&state=" + url.QueryEscape(m.state), m.login
		}, 400},
		{"an unknown parameter twice", func(m, _ attempt) (string, string) {
			return "code=c&session_state=1&session_state=2&state=" + url.QueryEscape(m.state), m.login
		}, 400},
		{"a second code after a semicolon", func(m, _ attempt) (string, string) {
			return "code=c;code=d&state=" + url.QueryEscape(m.state), m.login
		}, 400},
		{"a bad escape hiding a parameter", func(m, _ attempt) (string, string) {
			return "code=c&state=" + url.QueryEscape(m.state) + "&x=%zz", m.login
		}, 400},
		{"code spelled with an escape, twice", func(m, _ attempt) (string, string) {
			return "code=c&c%6fde=d&state=" + url.QueryEscape(m.state), m.login
		}, 400},
		{"error and code together", func(m, _ attempt) (string, string) {
			return "error=access_denied&code=c&state=" + url.QueryEscape(m.state), m.login
		}, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := hostileEnv(t)
			mine, theirs := e.begin("/mine"), e.begin("/theirs")
			e.idp.issue("c", "mallory", "mallory@example.com")
			q, cookie := tt.query(mine, theirs)
			resp, hdr := e.callback(q, cookie)
			refused(t, e, resp, tt.want)
			if bad := headerInjection(hdr); bad != "" {
				t.Errorf("header carries CR/LF/NUL: %q", bad)
			}
			if n := e.redeemed(); n != 0 {
				t.Errorf("%d codes redeemed", n)
			}
		})
	}
}

// TestCallbackRepeatedParamsFirst: a response with a repeated parameter
// is refused before the login cookie is consumed (RFC 6749 §3.1), so the
// real response that follows still signs the user in; the near misses
// (empty pairs, an unknown parameter once) are ordinary responses.
func TestCallbackRepeatedParamsFirst(t *testing.T) {
	for _, tt := range []struct {
		name, extra string
		want        int
	}{
		{"code repeated", "&code=c", http.StatusBadRequest},
		{"state repeated", "&state=x", http.StatusBadRequest},
		{"near miss: an empty pair", "&&", http.StatusFound},
		{"near miss: an unknown parameter once", "&session_state=abc", http.StatusFound},
		{"near miss: iss absent, scope once", "&scope=openid", http.StatusFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := hostileEnv(t)
			a := e.begin("/mine")
			e.idp.issue("c", "bob", "bob@example.com")
			good := "code=c&state=" + url.QueryEscape(a.state)
			resp, _ := e.callback(good+tt.extra, a.login)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want != http.StatusBadRequest {
				return
			}
			if n := e.redeemed(); n != 0 {
				t.Errorf("%d codes redeemed for a refused response", n)
			}
			resp, _ = e.callback(good, a.login)
			if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/mine" {
				t.Errorf("the real response after a refused one: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

// TestCallbackReuse: a state is good for one callback (RFC 9700 §4.2.4),
// and a code for one redemption, whatever is replayed with them.
func TestCallbackReuse(t *testing.T) {
	e := hostileEnv(t)
	a := e.begin("/x")
	e.idp.issue("c1", "alice", "alice@example.com")
	first, _ := e.callback("code=c1&state="+url.QueryEscape(a.state), a.login)
	if first.StatusCode != http.StatusFound {
		t.Fatalf("first callback: %d", first.StatusCode)
	}
	e.idp.issue("c2", "mallory", "mallory@example.com")
	for _, tt := range []struct{ name, query, cookie string }{
		{"same state, new code, captured login cookie", "code=c2&state=" + url.QueryEscape(a.state), a.login},
		{"same state, same code", "code=c1&state=" + url.QueryEscape(a.state), a.login},
		{"same state, no cookie", "code=c2&state=" + url.QueryEscape(a.state), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := e.callback(tt.query, tt.cookie)
			refused(t, e, resp, http.StatusBadRequest)
		})
	}
	// The first code replayed into a fresh attempt: the provider already
	// redeemed it (the fake, like a real provider, refuses a second use).
	b := e.begin("/y")
	resp, _ := e.callback("code=c1&state="+url.QueryEscape(b.state), b.login)
	refused(t, e, resp, http.StatusBadRequest)
	if n := e.redeemed(); n != 1 {
		t.Errorf("%d codes redeemed, want 1", n)
	}
}

// TestCallbackIssuerMixUp uses the fake provider's CheckResponse: the
// gateway must stop before redeeming when the provider says the response
// names another issuer (RFC 9207 §2.4; providers' own tests check iss).
func TestCallbackIssuerMixUp(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		query string
		want  int
	}{
		{"iss of another provider", providers.ErrMixUp, "&iss=https%3A%2F%2Fevil.example", http.StatusBadRequest},
		{"iss missing where advertised", providers.ErrMixUp, "", http.StatusBadRequest},
		// Refused by the gateway itself, before the attempt is looked up
		// (RFC 6749 §3.1): see TestCallbackRepeatedParamsFirst.
		{"iss twice", nil, "&iss=https%3A%2F%2Fidp.test&iss=https%3A%2F%2Fevil.example", http.StatusBadRequest},
		{"error response from another issuer", providers.ErrMixUp, "&error=access_denied&iss=https%3A%2F%2Fevil.example", http.StatusBadRequest},
		{"provider unreachable for the check", providers.ErrUnavailable, "", http.StatusServiceUnavailable},
		{"any other refusal", errors.New("odd"), "", http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := hostileEnv(t)
			a := e.begin("/x")
			e.idp.issue("c", "alice", "alice@example.com")
			e.idp.respErr = tt.err
			resp, _ := e.callback("code=c&state="+url.QueryEscape(a.state)+tt.query, a.login)
			refused(t, e, resp, tt.want)
			if n := e.redeemed(); n != 0 {
				t.Errorf("%d codes redeemed after a mix-up", n)
			}
			if tt.err == nil {
				return
			}
			// The attempt is spent: it cannot be retried once the check
			// would pass.
			e.idp.respErr = nil
			again, _ := e.callback("code=c&state="+url.QueryEscape(a.state), a.login)
			refused(t, e, again, http.StatusBadRequest)
		})
	}
}

// TestCallbackReflection: error parameters and the state are attacker
// input (OpenID Connect Core §3.1.2.6) and never appear in the page, the
// JSON body, or a header.
func TestCallbackReflection(t *testing.T) {
	payloads := []string{
		`<script>alert(1)</script>`,
		`"><img src=x onerror=alert(1)>`,
		`'><svg/onload=alert(1)>`,
		`javascript:alert(1)`,
		`</title><script>alert(1)</script>`,
		`{{.Message}}`,
		"\r\nSet-Cookie: pwned=1",
		`%3Cscript%3Ealert(1)%3C%2Fscript%3E`,
		`<a href="https://evil.example">click</a>`,
	}
	e := hostileEnv(t)
	for i, p := range payloads {
		for _, param := range []string{"error", "error_description", "error_uri", "state", "iss", "code"} {
			t.Run(fmt.Sprintf("%d/%s", i, param), func(t *testing.T) {
				a := e.begin("/x")
				q := url.Values{"state": {a.state}, "error": {"access_denied"}}
				q.Set(param, p)
				for _, accept := range []string{"text/html", "application/json"} {
					resp, hdr := e.callback(q.Encode(), a.login, "Accept", accept)
					if resp.StatusCode < 400 || resp.StatusCode >= 500 {
						t.Errorf("%s: status %d", accept, resp.StatusCode)
					}
					b := body(resp)
					for _, marker := range []string{"<script", "onerror", "onload", "<svg", "<img", "evil.example", "pwned", "{{", "alert(1)"} {
						if strings.Contains(strings.ToLower(b), strings.ToLower(marker)) {
							t.Errorf("%s body reflects %q: %s", accept, marker, b)
						}
					}
					if bad := headerInjection(hdr); bad != "" {
						t.Errorf("%s: header carries CR/LF/NUL: %q", accept, bad)
					}
					for k, vs := range hdr {
						for _, v := range vs {
							if strings.Contains(v, "pwned") || strings.Contains(v, "alert(1)") {
								t.Errorf("%s: header %s reflects the payload: %q", accept, k, v)
							}
						}
					}
					if accept == "text/html" && !strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'none'") {
						t.Errorf("error page CSP = %q", hdr.Get("Content-Security-Policy"))
					}
				}
			})
		}
	}
}

// TestCallbackRace: many callbacks for one state at once, each with the
// login cookie (a replay racing the real one). Exactly one signs in, and
// the code is redeemed once.
func TestCallbackRace(t *testing.T) {
	e := hostileEnv(t)
	a := e.begin("/x")
	e.idp.issue("c", "alice", "alice@example.com")
	const n = 64
	var wg sync.WaitGroup
	statuses := make([]int, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			r := get("https://gw.example.com/oauth2/callback?code=c&state="+url.QueryEscape(a.state), "Cookie", a.login)
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, r)
			statuses[i] = rec.Code
		}(i)
	}
	close(start)
	wg.Wait()
	won := 0
	for _, s := range statuses {
		switch s {
		case http.StatusFound:
			won++
		case http.StatusBadRequest:
		default:
			t.Errorf("a racing callback got %d", s)
		}
	}
	if won != 1 {
		t.Errorf("%d callbacks signed in, want exactly 1", won)
	}
	if r := e.redeemed(); r != 1 {
		t.Errorf("the code was redeemed %d times, want 1", r)
	}
}

// TestCallbackMethods: only the provider's GET redirect is a callback.
func TestCallbackMethods(t *testing.T) {
	e := hostileEnv(t)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"} {
		a := e.begin("/x")
		e.idp.issue("c-"+m, "alice", "alice@example.com")
		r := get("https://gw.example.com/oauth2/callback?code=c-"+m+"&state="+url.QueryEscape(a.state), "Cookie", a.login)
		r.Method = m
		resp := e.do(r)
		refused(t, e, resp, http.StatusMethodNotAllowed)
	}
	if n := e.redeemed(); n != 0 {
		t.Errorf("%d codes redeemed", n)
	}
}
