package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMetricsMuxPProf: the profiler is served only when metrics.pprof asks
// for it, and only next to /metrics.
func TestMetricsMuxPProf(t *testing.T) {
	tel := newTelemetry()
	for _, tt := range []struct {
		pprof bool
		path  string
		want  int
	}{
		{false, "/metrics", http.StatusOK},
		{false, "/debug/pprof/", http.StatusNotFound},
		{false, "/debug/pprof/cmdline", http.StatusNotFound},
		{true, "/metrics", http.StatusOK},
		{true, "/debug/pprof/", http.StatusOK},
		{true, "/debug/pprof/cmdline", http.StatusOK},
		{true, "/debug/pprof/heap?debug=1", http.StatusOK},
	} {
		rec := httptest.NewRecorder()
		metricsMux(tel, tt.pprof).ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
		if rec.Code != tt.want {
			t.Errorf("pprof %v: GET %s = %d, want %d", tt.pprof, tt.path, rec.Code, tt.want)
		}
	}
}

func TestCheckPProfNeedsMetricsListener(t *testing.T) {
	example, err := os.ReadFile("config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(example), "  pprof: false ", "  pprof: true ", 1)
	if cfg == string(example) {
		t.Fatal("config.example.yaml has no metrics.pprof line to turn on")
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OIDC_CLIENT_SECRET", "client-secret")
	t.Setenv("COOKIE_SECRET", "3kS1JsuaZLXS/H3jQHWtpBJKPM8iU5rz3XgTLwImVig=")
	var out, errOut bytes.Buffer
	if code := run([]string{"-config", file, "-check"}, &out, &errOut); code != 1 {
		t.Fatalf("-check exited %d, want 1: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "metrics.pprof needs metrics.listen") {
		t.Errorf("-check output: %s", errOut.String())
	}
}
