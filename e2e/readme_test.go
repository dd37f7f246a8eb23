package e2e

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/demo"
)

// readmeSection is the README's text from heading to the next "## ".
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no %q section", heading)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// fencedBlocks returns the section's code blocks of one language, with
// their indentation (a block inside a list item) removed.
func fencedBlocks(section, lang string) []string {
	var out []string
	re := regexp.MustCompile("(?ms)^( *)```" + lang + "\n(.*?)^ *```")
	for _, m := range re.FindAllStringSubmatch(section, -1) {
		var b strings.Builder
		for _, line := range strings.SplitAfter(m[2], "\n") {
			b.WriteString(strings.TrimPrefix(line, m[1]))
		}
		out = append(out, b.String())
	}
	return out
}

// commands are the shell lines of blocks, comments dropped.
func commands(blocks []string) []string {
	var out []string
	for _, b := range blocks {
		sc := bufio.NewScanner(strings.NewReader(b))
		for sc.Scan() {
			line := sc.Text()
			if i := strings.Index(line, "  #"); i >= 0 {
				line = line[:i]
			}
			if line = strings.TrimSpace(line); line != "" {
				out = append(out, line)
			}
		}
	}
	return out
}

// TestReadmeGetABinary runs "Get a binary": the build and the install
// (into a temporary GOBIN); the image's build stage is deploy/validate's
// (dockerfile_test.go runs its go build), as this machine has no registry.
func TestReadmeGetABinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, cmd := range commands(fencedBlocks(readmeSection(t, "## Get a binary"), "sh")) {
		var c *exec.Cmd
		switch cmd {
		case "go build -o portcullis .":
			c = exec.Command("go", "build", "-o", filepath.Join(dir, "portcullis"), ".")
		case "go install .":
			c = exec.Command("go", "install", ".")
			c.Env = append(os.Environ(), "GOBIN="+filepath.Join(dir, "bin"))
		case "docker build -f deploy/Dockerfile -t portcullis:dev .":
			df, err := os.ReadFile("../deploy/Dockerfile")
			if err != nil || !bytes.Contains(df, []byte(cmd)) {
				t.Errorf("deploy/Dockerfile does not document %q", cmd)
			}
			continue
		default:
			t.Errorf("README command not run by this test: %q", cmd)
			continue
		}
		c.Dir = ".."
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
	}
	for _, bin := range []string{"portcullis", "bin/portcullis"} {
		out, err := exec.Command(filepath.Join(dir, bin), "version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "portcullis") {
			t.Errorf("%s version: %v %s", bin, err, out)
		}
	}
}

// TestReadmeFirstApp follows "Protect your first app" as written, with
// the world's parts in place of the example's: the provider's issuer and
// the app's address become loopback ones, public_url the gateway's
// loopback address (plain http, so the cookie is not Secure), and the
// client secret the one registered at the provider. Every shell command
// of the section is run; one this test does not know fails it.
func TestReadmeFirstApp(t *testing.T) {
	t.Parallel()
	section := readmeSection(t, "## Protect your first app")
	yamls := fencedBlocks(section, "yaml")
	if len(yamls) != 1 {
		t.Fatalf("want one portcullis.yaml in the section, found %d", len(yamls))
	}
	addr := freeAddr(t)
	public := "http://" + addr
	secret := randomSecret()
	idp, err := demo.Start("127.0.0.1:0", demo.Config{Users: defaultUsers(), Clients: []demo.Client{{
		ID: "portcullis", Secret: secret, RedirectURIs: []string{public + "/oauth2/callback"},
		PostLogoutRedirectURIs: []string{public + "/oauth2/signed_out"}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	app := newRecorder(t)
	cfg := strings.NewReplacer(
		"https://app.example.com", public,
		"https://login.example.com", idp.URL,
		"http://127.0.0.1:8080", app.URL,
	).Replace(yamls[0])
	cfg = strings.Replace(cfg, "session:\n  cookie:\n", "session:\n  cookie:\n    secure: false\n", 1)
	cfg = strings.Replace(cfg, "server:\n", "server:\n  listen: "+addr+"\n", 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "portcullis.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range commands(fencedBlocks(section, "sh")) {
		switch {
		case strings.HasPrefix(cmd, "openssl rand"), strings.HasPrefix(cmd, "printf "):
			run(t, dir, "bash", "-c", cmd)
			if strings.HasSuffix(cmd, "> client-secret") {
				os.WriteFile(filepath.Join(dir, "client-secret"), []byte(secret), 0o600)
			}
		case cmd == "./portcullis -config portcullis.yaml -check":
			out := run(t, dir, binary, "-config", "portcullis.yaml", "-check")
			if !strings.Contains(out, public+"/oauth2/callback") {
				t.Errorf("-check does not name the redirect URI:\n%s", out)
			}
		case cmd == "./portcullis demo -config portcullis.yaml":
			demoAddr := freeAddr(t)
			runListening(t, "demo", demoAddr, 20*time.Second, nil, os.Environ(), binary, "demo", "-config", filepath.Join(dir, "portcullis.yaml"), "-listen", demoAddr)
		case cmd == "./portcullis -config portcullis.yaml":
			startIn(t, dir, addr, binary, "-config", "portcullis.yaml")
			checkFirstApp(t, idp, public, app)
		default:
			t.Errorf("README command not run by this test: %q", cmd)
		}
	}
}

// checkFirstApp signs alice in through the gateway the README started and
// checks the app saw her.
func checkFirstApp(t *testing.T, idp *demo.Server, public string, app *recorder) {
	t.Helper()
	c := browser(t)
	resp, err := c.Get(public + "/reports")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), idp.URL) {
		t.Fatalf("the gateway sent the browser to %s, want the provider", resp.Request.URL)
	}
	alice := defaultUsers()[0]
	final, err := demoSignIn(c, resp.Request.URL.String(), alice.Username, alice.Password)
	if err != nil {
		t.Fatal(err)
	}
	seen := decodeSeen(t, final)
	if seen.Path != "/reports" || seen.Header.Get("X-Forwarded-Email") != alice.Email {
		t.Errorf("the app saw %s with email %q, want /reports for %s", seen.Path, seen.Header.Get("X-Forwarded-Email"), alice.Email)
	}
}

// run runs a command in dir and returns its output; failing fails t.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	c := exec.Command(name, args...)
	c.Dir = dir
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startIn starts a long-running command in dir and waits until addr
// answers /ping.
func startIn(t *testing.T, dir, addr, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := exec.CommandContext(ctx, name, args...)
	c.Dir = dir
	out := &syncBuffer{}
	c.Stdout, c.Stderr = out, out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		c.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/ping"); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start:\n%s", name, out.String())
		}
	}
}
