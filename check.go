package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/portcullis/portcullis/providers"
	"github.com/portcullis/portcullis/proxy"
)

// check.go is what `-check` prints once the configuration is valid: the
// URIs to register at the providers. Offline it cannot know which of them
// a provider can use; `-check -online` asks each provider's discovery
// document and keys, and says what is wrong with them in plain words.

// gatewayURIs are the gateway's endpoints a provider may need registered.
type gatewayURIs struct {
	redirect, postLogout, backchannel, frontchannel string
}

func uris(cfg *config, callback string) gatewayURIs {
	pub, prefix := cfg.Server.PublicURL, cfg.Server.Prefix
	return gatewayURIs{
		redirect:     callback,
		postLogout:   proxy.SignedOutURL(pub, prefix),
		backchannel:  proxy.BackchannelURL(pub, prefix),
		frontchannel: proxy.FrontchannelURL(pub, prefix),
	}
}

// printOffline lists the redirect URI, which every provider needs, and
// the others with the condition under which a provider can use them.
func printOffline(out io.Writer, path string, u gatewayURIs) {
	fmt.Fprintf(out, "%s is valid. Register at each provider:\n", path)
	fmt.Fprintf(out, "  redirect URI:              %s\n    required\n", u.redirect)
	fmt.Fprintf(out, "  post-logout redirect URI:  %s\n    if the provider has an end_session endpoint (RP-Initiated Logout)\n", u.postLogout)
	fmt.Fprintf(out, "  back-channel logout URI:   %s\n    if the provider supports back-channel logout\n", u.backchannel)
	fmt.Fprintf(out, "  front-channel logout URI:  %s\n    if the provider supports front-channel logout with iss and sid\n", u.frontchannel)
	fmt.Fprintln(out, "Run `portcullis -config FILE -check -online` to know which each provider supports.")
}

// checkOnline inspects every provider and reports on each; it returns
// false when any has an error.
func checkOnline(out io.Writer, cfg *config, opts providers.Options, u gatewayURIs) bool {
	ok := true
	for _, pc := range cfg.Providers {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		rep, err := providers.Inspect(ctx, pc, opts)
		cancel()
		if err != nil { // validated already; kept for safety
			fmt.Fprintf(out, "provider %s: %v\n", pc.ID, err)
			ok = false
			continue
		}
		printReport(out, rep, u)
		ok = ok && len(rep.Errors) == 0
	}
	return ok
}

func printReport(out io.Writer, rep providers.Report, u gatewayURIs) {
	fmt.Fprintf(out, "\nprovider %s (%s):\n", rep.ID, rep.Issuer)
	if len(rep.Errors) == 0 {
		fmt.Fprintln(out, "  ok: sign-in can work")
	}
	for _, e := range rep.Errors {
		fmt.Fprintln(out, "  error:", e)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(out, "  note:", n)
	}
	if rep.Discovered {
		s := rep.Supports
		fmt.Fprintf(out, "  supports: %s\n", strings.Join([]string{
			yesNo("end_session (RP-initiated logout)", s.EndSession),
			yesNo("back-channel logout", s.Backchannel),
			yesNo("front-channel logout", s.Frontchannel),
			yesNo("token revocation", s.Revocation),
			yesNo("userinfo", s.Userinfo),
			yesNo("RFC 9207 iss", s.IssParameter),
		}, ", "))
		switch {
		case !s.EndSession:
			fmt.Fprintln(out, "  sign-out is local to the gateway: the provider has no end_session endpoint")
		case !rep.Register.PostLogout:
			fmt.Fprintln(out, "  sign-out is local to the gateway: end_session is never")
		}
	}
	fmt.Fprintln(out, "  register:")
	fmt.Fprintf(out, "    redirect URI:              %s\n", u.redirect)
	r := rep.Register
	if r.PostLogout {
		fmt.Fprintf(out, "    post-logout redirect URI:  %s\n", u.postLogout)
	}
	if r.Backchannel {
		fmt.Fprintf(out, "    back-channel logout URI:   %s\n", u.backchannel)
	}
	if r.Frontchannel {
		fmt.Fprintf(out, "    front-channel logout URI:  %s\n", u.frontchannel)
	}
}

func yesNo(what string, b bool) string {
	if b {
		return what + " yes"
	}
	return what + " no"
}
