package demo

import "testing"

// TestIDTokenSessionID: every ID token names its sign-in's provider
// session (sid), a new one per sign-in, kept across refreshes, as the
// front- and back-channel logout tests need.
func TestIDTokenSessionID(t *testing.T) {
	p := startRP(t, nil)
	p.oauth.Scopes = []string{"openid", "email", "offline_access"}
	tok, idt, _ := p.signIn(t, "alice", alicePass)
	sid, _ := claimsOf(t, idt)["sid"].(string)
	if sid == "" {
		t.Fatalf("ID token has no sid: %v", claimsOf(t, idt))
	}
	refreshed, err := p.refresh(tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := claimsOf(t, p.verify(t, refreshed))["sid"].(string); got != sid {
		t.Errorf("sid after refresh = %q, want %q", got, sid)
	}
	_, again, _ := p.signIn(t, "alice", alicePass)
	if other, _ := claimsOf(t, again)["sid"].(string); other == "" || other == sid {
		t.Errorf("second sign-in's sid = %q, want a new one (first %q)", other, sid)
	}
}
