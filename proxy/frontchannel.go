package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/portcullis/portcullis/providers"
)

// frontchannel.go is OpenID Connect Front-Channel Logout 1.0: the
// provider's logout page loads /oauth2/frontchannel_logout?iss=…&sid=… in
// an iframe, and the gateway ends every session of that provider session
// (on every replica with Redis; on this one with cookie sessions).

// frontchannelLogout is GET /oauth2/frontchannel_logout. Only a request
// naming both iss and sid is honoured (§2: "if either is included, both
// MUST be"), and iss must be a configured provider's issuer (§3) that
// accepts front-channel logout. It never looks at the browser's cookies:
// anyone can make a browser send this GET, and a sid is as hard to guess
// as the provider made it (§5), so it can end the named provider session
// and nothing else. Unlike back-channel logout no token proves the
// request came from the provider, so the gateway only ends sessions here;
// it revokes no tokens at the provider.
func (h *Handler) frontchannelLogout(w http.ResponseWriter, r *http.Request, rq *request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(http.StatusMethodNotAllowed, "Identity providers load this page with GET.", errMethod(r.Method))
	}
	refuse := func(err error) error {
		return errorf(http.StatusBadRequest, "This sign-out request does not name an identity provider session of this gateway.", err)
	}
	q := r.URL.Query()
	if len(q["iss"]) != 1 || len(q["sid"]) != 1 || q.Get("iss") == "" || q.Get("sid") == "" {
		return refuse(errors.New("front-channel logout without exactly one iss and one sid"))
	}
	iss, sid := q.Get("iss"), q.Get("sid")
	if len(sid) > 1024 || hasControlChar(sid) {
		return refuse(errors.New("malformed sid"))
	}
	p := h.providers.ByIssuer(iss)
	if p == nil {
		return refuse(fmt.Errorf("front-channel logout for unknown issuer %q", truncate(iss, 128)))
	}
	if fl, ok := p.(providers.FrontchannelLogouter); !ok || !fl.FrontchannelLogout() {
		return refuse(fmt.Errorf("provider %s does not accept front-channel logout (frontchannel_logout: false)", p.ID()))
	}
	n, err := h.sessions.RevokeSID(r.Context(), iss, sid)
	if err != nil {
		return errorf(http.StatusServiceUnavailable, "Sessions cannot be ended right now.", err)
	}
	h.metrics.ended("frontchannel_logout")
	h.audit(r, rq, "frontchannel_logout", nil, slog.String("provider", p.ID()), slog.String("issuer", iss), slog.Int("sessions", n))
	// §2: the provider renders this in an iframe, so this one page may be
	// framed, by the provider's origin alone; §3: Cache-Control: no-store.
	csp := h.pages.csp
	if origin, ok := cspOrigin(iss); ok {
		csp = strings.Replace(csp, "frame-ancestors 'none'", "frame-ancestors "+origin, 1)
	}
	h.pages.render(w, http.StatusOK, "frontchannel_logout", pageData{Title: "Signed out"}, csp)
	return nil
}

func hasControlChar(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}
