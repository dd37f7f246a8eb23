package session

import (
	"reflect"
	"testing"
	"time"
)

func TestEncodingRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	full := demoSession(now)
	full.ExpiresAt = now.Add(time.Hour)
	full.RefreshedAt = now.Add(time.Minute)
	full.AccessToken = "at"
	full.IDToken = "idt"
	full.Claims = map[string][]string{"department": {"sre", "platform"}, "hd": {"example.com"}}
	full.User = "alice@example.com"
	full.LastSeen = now.Add(2 * time.Minute)
	full.ID = "session-id"
	// "every field" must be every field: a field added to Session and
	// forgotten in MarshalBinary would otherwise round-trip as zero here
	// unnoticed.
	for _, v := range []reflect.Value{reflect.ValueOf(full.Identity), reflect.ValueOf(*full)} {
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() && v.Field(i).IsZero() {
				t.Fatalf("the full session leaves %s unset", f.Name)
			}
		}
	}
	for _, tt := range []struct {
		name string
		s    *Session
	}{
		{"empty", &Session{}},
		{"typical", demoSession(now)},
		{"every field", full},
		{"unicode", &Session{Identity: Identity{Name: "Zoë Ünïcødé 名前", Groups: []string{""}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.s.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var got Session
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normal(&got), normal(tt.s)) {
				t.Errorf("round trip = %+v, want %+v", got, *tt.s)
			}
		})
	}
}

// normal makes times comparable with DeepEqual (second precision, UTC).
func normal(s *Session) Session {
	c := *s
	for _, p := range []*time.Time{&c.CreatedAt, &c.RefreshedAt, &c.ExpiresAt, &c.TokenExpiry} {
		if !p.IsZero() {
			*p = time.Unix(p.Unix(), 0).UTC()
		}
	}
	return c
}

func TestEncodingRejects(t *testing.T) {
	good, _ := demoSession(time.Unix(1_800_000_000, 0)).MarshalBinary()
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"wrong version", append([]byte{9}, good[1:]...)},
		{"unknown tag", []byte{1, 200, 0}},
		{"zero tag", []byte{1, 0}},
		{"truncated string", good[:len(good)-3]},
		{"length beyond data", []byte{1, tagSubject, 50, 'a'}},
		{"huge length", []byte{1, tagSubject, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"repeated field", []byte{1, tagSubject, 1, 'a', tagSubject, 1, 'b'}},
		{"huge list", []byte{1, tagGroups, 0xff, 0xff, 0x03}},
		{"bad utf8", []byte{1, tagSubject, 2, 0xff, 0xfe}},
		{"negative time", []byte{1, tagCreatedAt, 1}},
		{"bad varint", []byte{1, tagCreatedAt, 0xff}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var s Session
			if err := s.UnmarshalBinary(tt.b); err == nil {
				t.Errorf("UnmarshalBinary(%x) succeeded: %+v", tt.b, s)
			}
		})
	}
}

func FuzzSessionDecode(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	for _, s := range []*Session{{}, demoSession(now)} {
		b, _ := s.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{1, tagGroups, 3, 1, 'a'})
	f.Add([]byte{1, tagGroups, 0})        // empty groups: found by the fuzzer in CI
	f.Add([]byte{1, tagClaim, 1, 'k', 0}) // a claim with no values
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Session
		if err := s.UnmarshalBinary(b); err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same session.
		again, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var s2 Session
		if err := s2.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(normal(&s), normal(&s2)) {
			t.Fatalf("unstable: %+v vs %+v", s, s2)
		}
	})
}
