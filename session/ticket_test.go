package session

import (
	"bytes"
	"testing"
	"time"
)

func TestTicketSerializer(t *testing.T) {
	tk, err := newTicket(userTag("https://idp", "alice"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ticketSerializer{}.Serialize(tk)
	if err != nil || len(b) != ticketLen {
		t.Fatalf("Serialize = %d bytes, %v", len(b), err)
	}
	var back ticket
	if err := (ticketSerializer{}).Deserialize(b, &back); err != nil || back != *tk {
		t.Errorf("round trip = %+v, %v", back, err)
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(b, 0), append([]byte{9}, b[1:]...)} {
		if err := (ticketSerializer{}).Deserialize(bad, &back); err == nil {
			t.Errorf("Deserialize(%x) succeeded", bad)
		}
	}
	other, _ := newTicket(tk.tag)
	if other.id == tk.id || other.key == tk.key {
		t.Error("two tickets share an id or key")
	}
}

func TestRecordSealing(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	aead := newGCM(key)
	sealed, err := seal(aead, []byte("session bytes"), "portcullis:s:{a}:b")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := seal(aead, []byte("session bytes"), "portcullis:s:{a}:b")
	if bytes.Equal(sealed, again) {
		t.Error("two seals of the same record are equal: nonce reused")
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	for _, tt := range []struct {
		name   string
		sealed []byte
		aad    string
		ok     bool
	}{
		{"as sealed", sealed, "portcullis:s:{a}:b", true},
		{"moved to another key", sealed, "portcullis:s:{a}:c", false},
		{"tampered", flipped, "portcullis:s:{a}:b", false},
		{"truncated", sealed[:20], "portcullis:s:{a}:b", false},
		{"other version", append([]byte{2}, sealed[1:]...), "portcullis:s:{a}:b", false},
		{"empty", nil, "portcullis:s:{a}:b", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			plain, err := open(aead, tt.sealed, tt.aad)
			if (err == nil) != tt.ok || (tt.ok && string(plain) != "session bytes") {
				t.Errorf("open = %q, %v; want ok=%v", plain, err, tt.ok)
			}
		})
	}
}

func TestSessionMeta(t *testing.T) {
	m := sessionMeta{CreatedAt: time.Unix(1_800_000_000, 0), LastSeen: time.Unix(1_800_000_060, 0),
		ExpiresAt: time.Unix(1_800_003_600, 0), UserAgent: "Mozilla/5.0"}
	var back sessionMeta
	if err := back.unmarshal(m.marshal()); err != nil || back != m {
		t.Errorf("round trip = %+v, %v", back, err)
	}
	if err := back.unmarshal(append(m.marshal(), 0)); err == nil {
		t.Error("trailing bytes accepted")
	}
	for _, tt := range []struct{ in, want string }{
		{"curl/8", "curl/8"},
		{"bad \xff utf8", "bad  utf8"},
		{string(bytes.Repeat([]byte("é"), 200)), string(bytes.Repeat([]byte("é"), 128))},
	} {
		if got := truncateUA(tt.in); got != tt.want {
			t.Errorf("truncateUA(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
