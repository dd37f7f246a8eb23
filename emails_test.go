package main

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/portcullis/portcullis/proxy"
)

// emailsSettings validates a configuration whose policy is an emails
// file with the contents given.
func emailsSettings(t *testing.T, path string, contents string) *proxy.Settings {
	t.Helper()
	s, err := proxy.Config{
		Server:    proxy.ServerConfig{PublicURL: "https://gw.example.com"},
		Upstreams: []proxy.UpstreamConfig{{Path: "/", URL: "http://127.0.0.1:1"}},
		Policy:    proxy.PolicyConfig{AuthenticatedEmailsFile: path, AuthenticatedEmails: []byte(contents)},
	}.Validate(proxy.Known{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEmailsWatcher: a changed file is re-read; one that becomes
// unreadable or malformed keeps the last good list, is logged once and
// counted as an error; once readable again it is loaded.
func TestEmailsWatcher(t *testing.T) {
	path := filepath.Join(t.TempDir(), "emails")
	write := func(s string, mod time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Now().Add(-time.Hour)
	write("alice@example.com\n", base)
	s := emailsSettings(t, path, "alice@example.com\n")
	f := s.EmailsFile()
	var logs bytes.Buffer
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "r"}, []string{"result"})
	w := newEmailsWatcher(f, slog.New(slog.NewTextHandler(&logs, nil)), reloads)
	var readErr error
	w.read = func(p string) ([]byte, error) {
		if readErr != nil {
			return nil, readErr
		}
		return os.ReadFile(p)
	}
	counts := func() (ok, bad float64) {
		return counterValue(t, reloads.WithLabelValues("ok")), counterValue(t, reloads.WithLabelValues("error"))
	}
	w.start()
	if f.Len() != 1 {
		t.Fatalf("%d addresses at start", f.Len())
	}
	w.check()
	if ok, bad := counts(); ok != 0 || bad != 0 {
		t.Errorf("an unchanged file was reloaded: ok %v error %v", ok, bad)
	}

	write("alice@example.com\nbob@example.com\n", base.Add(time.Minute))
	w.check()
	if ok, _ := counts(); ok != 1 || f.Len() != 2 {
		t.Errorf("after a change: ok %v, %d addresses; want 1, 2", ok, f.Len())
	}

	// Malformed: the list stays, one error however often it is checked.
	write("alice@example.com\nnot an address\n", base.Add(2*time.Minute))
	for range 3 {
		w.check()
	}
	if _, bad := counts(); bad != 1 || f.Len() != 2 {
		t.Errorf("after a malformed version: error %v, %d addresses; want 1, 2", bad, f.Len())
	}
	if n := strings.Count(logs.String(), "keeping the previous list"); n != 1 {
		t.Errorf("%d error lines, want 1:\n%s", n, logs.String())
	}

	// Fixed, then unreadable (a chmod changes no stamp), then readable.
	write("carol@example.com\n", base.Add(3*time.Minute))
	w.check()
	if ok, _ := counts(); ok != 2 || f.Len() != 1 {
		t.Errorf("after the fix: ok %v, %d addresses; want 2, 1", ok, f.Len())
	}
	readErr = fs.ErrPermission
	write("dave@example.com\nerin@example.com\n", base.Add(4*time.Minute))
	w.check()
	w.check()
	if _, bad := counts(); bad != 2 || f.Len() != 1 {
		t.Errorf("unreadable: error %v, %d addresses; want 2, 1", bad, f.Len())
	}
	readErr = nil
	w.check()
	if ok, _ := counts(); ok != 3 || f.Len() != 2 {
		t.Errorf("readable again: ok %v, %d addresses; want 3, 2", ok, f.Len())
	}

	// Removed: the list stays.
	os.Remove(path)
	w.check()
	if _, bad := counts(); bad != 3 || f.Len() != 2 {
		t.Errorf("removed: error %v, %d addresses; want 3, 2", bad, f.Len())
	}
}

// TestCheckReadsEmailsFile: -check reports a missing or malformed emails
// file with the other problems.
func TestCheckReadsEmailsFile(t *testing.T) {
	dir := t.TempDir()
	secret := "3kS1JsuaZLXS/H3jQHWtpBJKPM8iU5rz3XgTLwImVig="
	cfg := func(emails string) string {
		p := filepath.Join(dir, "config.yaml")
		os.WriteFile(p, []byte(`
server: {public_url: https://gw.example.com}
providers: [{id: corp, issuer_url: https://idp.example.com, client_id: c, client_secret: s}]
session: {cookie: {secrets: [`+secret+`]}}
upstreams: [{path: /, url: http://127.0.0.1:8080}]
policy: {authenticated_emails_file: `+emails+`}
`), 0o600)
		return p
	}
	good := filepath.Join(dir, "emails")
	os.WriteFile(good, []byte("# team\nalice@example.com\n"), 0o600)
	bad := filepath.Join(dir, "bad-emails")
	os.WriteFile(bad, []byte("alice@example.com\nalice\n"), 0o600)
	for _, tt := range []struct {
		file string
		code int
		want string
	}{
		{good, 0, ""},
		{filepath.Join(dir, "missing"), 1, "policy.authenticated_emails_file: open"},
		{bad, 1, `line 2: "alice" is not an email address`},
	} {
		var out, errOut bytes.Buffer
		code := run([]string{"-config", cfg(tt.file), "-check"}, &out, &errOut)
		if code != tt.code || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", tt.file, code, tt.code, tt.want, errOut.String())
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
