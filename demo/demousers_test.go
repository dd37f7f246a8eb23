package demo

import (
	"regexp"
	"slices"
	"testing"
)

func TestDemoUsers(t *testing.T) {
	users := DemoUsers()
	again := DemoUsers()
	for i, tt := range []struct {
		username, email string
		groups          []string
	}{
		{"alice", "alice@example.com", []string{"admins", "developers"}},
		{"bob", "bob@example.com", []string{"developers"}},
	} {
		t.Run(tt.username, func(t *testing.T) {
			u := users[i]
			if u.Username != tt.username || u.Email != tt.email || !u.EmailVerified || !slices.Equal(u.Groups, tt.groups) {
				t.Errorf("user = %+v, want %s <%s> verified in %v", u, tt.username, tt.email, tt.groups)
			}
			if u.Password == again[i].Password {
				t.Errorf("password %q repeats across calls", u.Password)
			}
		})
	}
	if len(users) != 2 {
		t.Errorf("DemoUsers returned %d users, want 2", len(users))
	}
	if _, err := New(Config{Issuer: "http://127.0.0.1:1", SigningKey: sharedKey(t), Users: users}); err != nil {
		t.Errorf("New with DemoUsers: %v", err)
	}
}

func TestNewPassword(t *testing.T) {
	format := regexp.MustCompile(`^[a-hjkmnp-z2-9]{4}(-[a-hjkmnp-z2-9]{4}){3}$`)
	seen := map[string]bool{}
	for range 200 {
		pw := NewPassword()
		if !format.MatchString(pw) {
			t.Fatalf("password %q does not match %s", pw, format)
		}
		if seen[pw] {
			t.Fatalf("password %q repeated", pw)
		}
		seen[pw] = true
	}
}
