package validate

// scrape_test.go proves that the dashboard and the alerting rules query
// metrics the gateway really exports. It builds the gateway as
// deploy/Dockerfile does, runs it with metrics on, Redis sessions and a
// real OpenID provider (zitadel/oidc's stock example provider, in this
// process), all on loopback; signs in, refreshes, trips a failing policy
// expression, reloads the configuration and signs out, so that every
// labelled counter has a child; then scrapes /metrics and checks every
// metric name a query selects against the families it lists, and every
// label a query matches or groups by against the labels of their samples.
//
// A labelled metric (a Vec) is only exposed once it has a child, so a
// name missing from the scrape is either a typo in a query or a path the
// exercise below does not take: the failure names the metric either way.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// prometheusSeries are series Prometheus makes itself, not the gateway
// (https://prometheus.io/docs/concepts/jobs_instances/#automatically-generated-labels-and-time-series).
var prometheusSeries = []string{"up"}

func TestQueriedMetricsExported(t *testing.T) {
	queries := append(ruleQueries(t), dashboardQueries(t)...)
	families := scrapeExercisedGateway(t)
	var have []string
	for name := range families {
		have = append(have, name)
	}
	slices.Sort(have)
	missing := 0
	for _, q := range queries {
		names, err := metricNames(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		for _, name := range names {
			if !exported(families, name) {
				missing++
				t.Errorf("%s: %s is not a metric the running gateway exports", q.where, name)
			}
		}
		uses, _ := labelUses(q.expr)
		for _, u := range uses {
			if !hasLabel(families, u) {
				t.Errorf("%s: label %s is on none of %v as the running gateway exports them", q.where, u.label, u.metrics)
			}
		}
	}
	if missing > 0 {
		t.Logf("the gateway exported: %s", strings.Join(have, " "))
	}
}

// exported reports whether a query's name is one of the scraped
// families: itself, or the _bucket, _count or _sum series of a histogram
// (_count and _sum also of a summary), or a series Prometheus adds.
func exported(families map[string]*dto.MetricFamily, name string) bool {
	if _, ok := families[name]; ok || slices.Contains(prometheusSeries, name) {
		return true
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch families[base].GetType() {
		case dto.MetricType_HISTOGRAM:
			return true
		case dto.MetricType_SUMMARY:
			return suffix != "_bucket"
		}
	}
	return false
}

// targetLabels are the labels Prometheus gives every series it scrapes.
var targetLabels = []string{"job", "instance"}

// hasLabel reports whether u's label is on a series of one of its
// metrics: a label of a scraped sample, a target label, or le on a
// histogram's _bucket.
func hasLabel(families map[string]*dto.MetricFamily, u labelUse) bool {
	if slices.Contains(targetLabels, u.label) {
		return true
	}
	for _, name := range u.metrics {
		if base, ok := strings.CutSuffix(name, "_bucket"); ok && u.label == "le" &&
			families[base].GetType() == dto.MetricType_HISTOGRAM {
			return true
		}
		fam := families[name]
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && fam == nil {
				fam = families[base]
			}
		}
		for _, m := range fam.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == u.label {
					return true
				}
			}
		}
	}
	return false
}

// needTool finds a program the test runs: skipped when missing, except
// under CI=true, where that fails (the project's testing standard).
func needTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found on PATH: install the Debian package %s", name, debianPackage)
	}
	t.Skipf("%s not found on PATH: install the Debian package %s to run this test", name, debianPackage)
	return ""
}

// freeAddr is a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func randomBase64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// startRedis runs redis-server on a free loopback port, without
// persistence, for the life of the test.
func startRedis(t *testing.T) string {
	t.Helper()
	bin := needTool(t, "redis-server", "redis-server")
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, "redis-server on "+addr, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	return addr
}

// waitFor retries ok for up to 30 seconds.
func waitFor(t *testing.T, what string, ok func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ok()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runningGateway is the built binary running one configuration.
type runningGateway struct {
	public, metrics string
	cmd             *exec.Cmd
	log             *strings.Builder
}

// startGatewayAt writes the configuration and runs the gateway at public
// until the test ends; it returns once /ready answers 200.
func startGatewayAt(t *testing.T, public, issuer, secret, redisAddr string) *runningGateway {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("upstream\n")) }),
		ReadHeaderTimeout: 10 * time.Second}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go upstream.Serve(upLn)
	t.Cleanup(func() { upstream.Close() })

	gw := &runningGateway{public: public, metrics: freeAddr(t), log: &strings.Builder{}}
	files := map[string]string{"client-secret": secret, "cookie-secret": randomBase64(32)}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(scrapeConfig, strings.TrimPrefix(gw.public, "http://"), gw.public, issuer,
		filepath.Join(dir, "client-secret"), redisAddr, filepath.Join(dir, "cookie-secret"), upLn.Addr(), gw.metrics)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	gw.cmd = exec.Command(bin, "-config", cfgPath)
	gw.cmd.Stdout, gw.cmd.Stderr = gw.log, gw.log
	if err := gw.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		gw.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- gw.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			gw.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", gw.log)
		}
	})
	waitFor(t, "the gateway's /ready", func() error { return expectStatus(http.DefaultClient, gw.public+"/ready", http.StatusOK) })
	return gw
}

// scrapeConfig: Redis sessions (Redis metrics, the local cache's
// counters), refresh_before longer than the example provider's 5-minute
// access tokens (every signed-in request refreshes), and a rule whose
// expression fails for the example user (no tenant claim).
const scrapeConfig = `
server:
  listen: %s
  public_url: %s
  shutdown_delay: 0s
providers:
  - id: example
    type: oidc
    issuer_url: %s
    client_id: portcullis
    client_secret_file: %s
    scopes: [openid, email, profile, offline_access]
session:
  store: redis
  refresh_before: 10m
  redis:
    addrs: [%s]
  cookie:
    secrets_file: [%s]
    secure: false
upstreams:
  - path: /
    url: http://%s
policy:
  email_domains: [zitadel.ch]
  routes:
    - path: /t/
      expr: request.path.segment(1) in identity.claims.tenant
metrics:
  listen: %s
log:
  level: debug
`

func expectStatus(c *http.Client, u string, want int) error {
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("GET %s: %s, want %d", u, resp.Status, want)
	}
	return nil
}

// scrape reads the gateway's /metrics, as Prometheus does.
func (gw *runningGateway) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+gw.metrics+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return families
}

func newBrowser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 15 * time.Second}
}
