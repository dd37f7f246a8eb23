package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// runLogout is `portcullis logout URL`: revoke the stored token at the
// gateway (RFC 7009), best effort, then forget it here. It exits 0 when the
// token is gone from this machine, whatever the gateway said.
func runLogout(args []string, stdout, stderr io.Writer) int {
	_, origin, ok := cliTarget("logout", args, stderr)
	if !ok {
		return 2
	}
	store, err := openTokenStore()
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	tokens, err := store.load(true) // an exposed file is exactly when to revoke
	if errors.Is(err, errExposed) {
		fmt.Fprintln(stderr, "portcullis: warning:", err)
	} else if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	entry := tokens[origin]
	if entry == nil {
		fmt.Fprintf(stderr, "Not signed in to %s; nothing to do.\n", origin)
		return 0
	}
	if time.Now().Before(entry.ExpiresAt) {
		fmt.Fprintln(stderr, revokeOutcome(origin, entry, revoke(origin, entry.AccessToken)))
	}
	if err := store.put(origin, nil); err != nil {
		fmt.Fprintln(stderr, "portcullis: the token could not be removed here:", err)
		return 1
	}
	fmt.Fprintf(stderr, "Signed out of %s: the token is removed from %s.\n", origin, store.path)
	return 0
}

// revoke asks the gateway to revoke token (RFC 7009 §2.1). It answers 200
// for a token it does not know too (§2.2), so 200 is success.
func revoke(origin, token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}, "client_id": {cliClientID}}
	resp, err := postForm(ctx, cliHTTPClient(), origin+deviceRevoke, form)
	if err != nil {
		return fmt.Errorf("could not reach the gateway: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the gateway answered %s", resp.Status)
	}
	return nil
}

func revokeOutcome(origin string, entry *storedToken, err error) string {
	if err == nil {
		return fmt.Sprintf("Revoked the token at %s.", origin)
	}
	return fmt.Sprintf("The token was not revoked at %s (%s): it stays valid there until %s.",
		origin, printable(err.Error()), entry.ExpiresAt.Local().Format("2006-01-02 15:04:05 MST"))
}
