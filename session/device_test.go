package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func newDevices(t *testing.T, where string, c *postClock, keys *KeyRing) *Devices {
	t.Helper()
	var store Backend
	if where == "redis" {
		_, cfg := standalone(t)
		store = newRedisStore(t, cfg, c.now, randomSecret(t))
	}
	d, err := NewDevices(keys, store, c.now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Shared() != (where == "redis") {
		t.Errorf("%s: Shared() = %v", where, d.Shared())
	}
	return d
}

// TestDeviceGrantFlow: pending, slow_down when polled too fast (and the
// interval grows by 5 s), the user code found and decided once, the
// approved session redeemed once.
func TestDeviceGrantFlow(t *testing.T) {
	ctx := context.Background()
	for _, where := range []string{"memory", "redis"} {
		t.Run(where, func(t *testing.T) {
			c := &postClock{t: time.Now()}
			d := newDevices(t, where, c, mustKeys(t, randomSecret(t)))
			g := &DeviceGrant{ClientID: "portcullis-cli", Source: "192.0.2.7", UserAgent: "curl/8"}
			dc, err := d.Start(ctx, g, 10*time.Minute, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := NormalizeUserCode(g.UserCode); !ok || len(dc) != 32 {
				t.Fatalf("user code %q, device code %q", g.UserCode, dc)
			}
			poll := func(want string, wantInterval time.Duration) Poll {
				t.Helper()
				p, err := d.Poll(ctx, dc)
				if err != nil || p.Status != want || p.Interval != wantInterval {
					t.Fatalf("poll = %+v, %v; want %s every %v", p, err, want, wantInterval)
				}
				return p
			}
			poll(GrantPending, 5*time.Second)
			c.t = c.t.Add(time.Second)
			poll(GrantSlowDown, 10*time.Second)
			c.t = c.t.Add(6 * time.Second)
			poll(GrantSlowDown, 15*time.Second) // 6s < the grown 10s
			c.t = c.t.Add(16 * time.Second)
			poll(GrantPending, 15*time.Second)

			// The user types the code in another form.
			typed := strings.ToLower(FormatUserCode(g.UserCode))
			got, err := d.ByUserCode(ctx, typed)
			if err != nil || got.Source != "192.0.2.7" || got.ClientID != "portcullis-cli" || got.Status != GrantPending {
				t.Fatalf("ByUserCode(%q) = %+v, %v", typed, got, err)
			}
			alice := demoSession(c.t)
			if err := d.Decide(ctx, typed, alice); err != nil {
				t.Fatal(err)
			}
			if err := d.Decide(ctx, g.UserCode, nil); err == nil {
				t.Error("a second decision on the same user code was accepted")
			}
			c.t = c.t.Add(16 * time.Second)
			p := poll(GrantApproved, 15*time.Second)
			if p.Session == nil || p.Session.Subject != alice.Subject || p.Session.Email != alice.Email {
				t.Errorf("approved poll carried %+v, want alice's session", p.Session)
			}
			if p.Grant == nil || p.Grant.ClientID != "portcullis-cli" || p.Grant.Source != "192.0.2.7" {
				t.Errorf("approved poll carried grant %+v, want what the device said", p.Grant)
			}
			c.t = c.t.Add(16 * time.Second)
			if _, err := d.Poll(ctx, dc); !errors.Is(err, ErrGrantGone) {
				t.Errorf("second redemption: %v, want ErrGrantGone", err)
			}
		})
	}
}

// TestDeviceGrantDenyExpireForge: a denied grant answers access_denied
// once; an expired one expired_token; a forged or mangled code nothing.
func TestDeviceGrantDenyExpireForge(t *testing.T) {
	ctx := context.Background()
	for _, where := range []string{"memory", "redis"} {
		t.Run(where, func(t *testing.T) {
			c := &postClock{t: time.Now()}
			d := newDevices(t, where, c, mustKeys(t, randomSecret(t)))
			g := &DeviceGrant{}
			dc, err := d.Start(ctx, g, time.Minute, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Decide(ctx, g.UserCode, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := d.ByUserCode(ctx, g.UserCode); !errors.Is(err, ErrGrantGone) {
				t.Errorf("a decided user code is still found: %v", err)
			}
			if p, err := d.Poll(ctx, dc); err != nil || p.Status != GrantDenied || p.Session != nil {
				t.Errorf("poll after denial = %+v, %v", p, err)
			}

			// Expired: the code's own expiry says expired_token.
			g2 := &DeviceGrant{}
			dc2, err := d.Start(ctx, g2, time.Second, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if where == "redis" {
				time.Sleep(1100 * time.Millisecond) // Redis expires the key on its own clock
			}
			c.t = c.t.Add(2 * time.Second)
			if _, err := d.Poll(ctx, dc2); !errors.Is(err, ErrGrantExpired) {
				t.Errorf("poll after expiry: %v, want ErrGrantExpired", err)
			}
			if _, err := d.ByUserCode(ctx, g2.UserCode); !errors.Is(err, ErrGrantGone) {
				t.Errorf("expired user code: %v, want ErrGrantGone", err)
			}

			for _, bad := range []string{"", "short", dc[:31] + "A", strings.Repeat("A", 32), dc + "A"} {
				if _, err := d.Poll(ctx, bad); err == nil {
					t.Errorf("Poll(%q) answered", bad)
				}
			}
			for _, bad := range []string{"", "AAAA-AAAA", "BCDF-GHJ", "BCDF-GHJK-L", "BCDF<GHJK"} {
				if _, err := d.ByUserCode(ctx, bad); !errors.Is(err, ErrGrantGone) {
					t.Errorf("ByUserCode(%q) = %v, want ErrGrantGone", bad, err)
				}
			}
		})
	}
}

func TestUserCodes(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		c, err := newUserCode()
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := NormalizeUserCode(c); !ok || n != c {
			t.Fatalf("generated %q does not normalise to itself", c)
		}
		seen[c] = true
		for _, r := range c {
			counts[r]++
		}
	}
	if len(seen) < 1999 {
		t.Errorf("%d distinct codes of 2000", len(seen))
	}
	// 16000 letters over 20: about 800 each; a biased generator (modulo
	// without rejection) would still pass this, but a broken one would not.
	for _, r := range UserCodeAlphabet {
		if counts[r] < 600 || counts[r] > 1000 {
			t.Errorf("letter %c drawn %d times of 16000, want about 800", r, counts[r])
		}
	}
	for in, want := range map[string]string{"bcdf-ghjk": "BCDFGHJK", " BCDF GHJK ": "BCDFGHJK", "bcdf.ghjk": "BCDFGHJK"} {
		if got, ok := NormalizeUserCode(in); !ok || got != want {
			t.Errorf("NormalizeUserCode(%q) = %q, %v", in, got, ok)
		}
	}
	if FormatUserCode("BCDFGHJK") != "BCDF-GHJK" {
		t.Error("FormatUserCode")
	}
}
