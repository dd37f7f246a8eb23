package session

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
)

// LoginState is what one sign-in attempt must remember between /start and
// /callback. It lives in its own encrypted cookie, bound to the browser that
// started the attempt (RFC 9700 §4.5.3, §4.7.1).
type LoginState struct {
	State      string    `json:"s"`  // the state parameter sent to the provider
	Nonce      string    `json:"n"`  // the nonce sent to the provider
	Verifier   string    `json:"v"`  // the PKCE code_verifier (RFC 7636 §4.1)
	RedirectTo string    `json:"rd"` // where to go after sign-in, already validated
	Provider   string    `json:"p"`  // configured provider id the attempt went to
	Issuer     string    `json:"i"`  // that provider's issuer (RFC 9700 §4.4.2 mix-up defence)
	CreatedAt  time.Time `json:"t"`

	// Post redeems the form post this attempt keeps (Posts.Keep), "" for
	// none. Only this browser's login cookie carries it, so only the
	// browser that sent the post can have it re-submitted.
	Post string `json:"pp,omitempty"`
}

// Login-attempt limits: an attempt lasts 10 minutes, and a browser keeps at
// most MaxLoginCookies at once so pages that fire many unauthenticated
// requests cannot fill the cookie jar (RFC 6265bis §6.1 asks for few cookies).
const (
	LoginTTL        = 10 * time.Minute
	MaxLoginCookies = 5
	maxLoginValue   = 3800 // sealed; with the name, within a browser's 4096 bytes per cookie
)

var (
	// ErrNoLogin means no login cookie matches the callback's state: the
	// attempt expired, finished already, or started in another browser.
	ErrNoLogin = errors.New("session: no sign-in in progress for this state")
	// ErrLoginMismatch means a login cookie was found but does not belong to
	// this state.
	ErrLoginMismatch = errors.New("session: sign-in state does not match")
)

// LoginCookies keeps one cookie per sign-in attempt, so several tabs can sign
// in at once. The cookie name carries a hash of the state, so the callback
// finds its attempt directly.
type LoginCookies struct {
	jar    cookieJar // jar.name is the prefix of every login cookie
	codecs []*securecookie.SecureCookie
	now    func() time.Time
}

// NewLoginCookies returns the login-cookie keeper for the session cookie
// configured in cfg (its name, secure and domain settings).
func NewLoginCookies(cfg CookieConfig, keys *KeyRing, now func() time.Time) (*LoginCookies, error) {
	if keys == nil {
		return nil, errors.New("session: login cookies need a key ring")
	}
	jar, err := newCookieJar(cfg)
	if err != nil {
		return nil, err
	}
	// SameSite=Lax suits the query response mode: the provider sends the
	// browser back with a top-level GET, which carries Lax cookies.
	jar.sameSite = http.SameSiteLaxMode
	jar.name += "_login_"
	// They must reach /oauth2/callback whatever session.cookie.path says,
	// and belong to the host that started the sign-in, which the callback
	// returns to (session.cookie.domains is for the session cookie).
	jar.path, jar.domains = "/", nil
	if now == nil {
		now = time.Now
	}
	return &LoginCookies{
		jar:    jar,
		codecs: keys.codecs(PurposeLogin, int(LoginTTL/time.Second), maxLoginValue, securecookie.JSONEncoder{}),
		now:    now,
	}, nil
}

// Prefix returns the name prefix shared by all login cookies.
func (l *LoginCookies) Prefix() string { return l.jar.name }

func (l *LoginCookies) nameFor(state string) string {
	sum := sha256.Sum256([]byte(state))
	return l.jar.name + hex.EncodeToString(sum[:8])
}

// Begin sets the login cookie for st, first expiring the oldest attempts the
// browser still carries so that at most MaxLoginCookies remain.
func (l *LoginCookies) Begin(w http.ResponseWriter, r *http.Request, st *LoginState) error {
	if st.State == "" || st.Nonce == "" || st.Verifier == "" {
		return errors.New("session: login state needs state, nonce and verifier")
	}
	st.CreatedAt = l.now()
	name := l.nameFor(st.State)
	value, err := l.codecs[0].Encode(name, st)
	if err != nil {
		return fmt.Errorf("sealing login cookie: %w", err)
	}
	type attempt struct {
		name    string
		created time.Time
	}
	var old []attempt
	eachCookie(r, func(n, v string) bool {
		if !strings.HasPrefix(n, l.jar.name) {
			return true
		}
		var prev LoginState
		if l.open(n, v, &prev) != nil {
			old = append(old, attempt{n, time.Time{}}) // unreadable: oldest of all
		} else {
			old = append(old, attempt{n, prev.CreatedAt})
		}
		return len(old) < 64
	})
	sort.Slice(old, func(i, j int) bool { return old[i].created.Before(old[j].created) })
	for len(old) >= MaxLoginCookies {
		w.Header().Add("Set-Cookie", l.jar.cookie(old[0].name, "", -1).String())
		old = old[1:]
	}
	w.Header().Add("Set-Cookie", l.jar.cookie(name, value, LoginTTL).String())
	return nil
}

// Take finds, checks and expires the login cookie for state. The cookie is
// expired whether or not it checks out: a state is good for one callback
// (RFC 9700 §4.2.4).
func (l *LoginCookies) Take(w http.ResponseWriter, r *http.Request, state string) (*LoginState, error) {
	if state == "" || len(state) > 512 {
		return nil, ErrNoLogin
	}
	name := l.nameFor(state)
	var value string
	found, ambiguous := false, false
	eachCookie(r, func(n, v string) bool {
		if n != name {
			return true
		}
		// Two different values under the attempt's name: refuse rather
		// than pick one (cookie tossing, RFC 6265bis §8.6; see
		// ErrAmbiguousCookie). Identical copies count as one.
		ambiguous = found && v != value
		value, found = v, true
		return !ambiguous
	})
	if !found {
		return nil, ErrNoLogin
	}
	w.Header().Add("Set-Cookie", l.jar.cookie(name, "", -1).String())
	if ambiguous {
		return nil, fmt.Errorf("%w: %w", ErrNoLogin, ErrAmbiguousCookie)
	}
	st := new(LoginState)
	if err := l.open(name, value, st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoLogin, err)
	}
	if subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) != 1 {
		return nil, ErrLoginMismatch
	}
	if age := l.now().Sub(st.CreatedAt); age > LoginTTL || age < -clockSkew {
		return nil, fmt.Errorf("%w: attempt is %v old", ErrNoLogin, age.Round(time.Second))
	}
	return st, nil
}

// ClearAll expires every login cookie the request carries.
func (l *LoginCookies) ClearAll(w http.ResponseWriter, r *http.Request) {
	cleared := 0
	eachCookie(r, func(n, _ string) bool {
		if strings.HasPrefix(n, l.jar.name) {
			w.Header().Add("Set-Cookie", l.jar.cookie(n, "", -1).String())
			cleared++
		}
		return cleared < 64
	})
}

func (l *LoginCookies) open(name, value string, st *LoginState) error {
	var err error
	for _, c := range l.codecs {
		if err = c.Decode(name, value, st); err == nil {
			return nil
		}
	}
	return err
}
