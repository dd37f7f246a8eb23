package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestMetricsAndAudit signs a user in, gets another user denied, then
// scrapes /metrics on its own listener and reads the audit log.
func TestMetricsAndAudit(t *testing.T) {
	w := newWorld(t, worldOptions{policy: adminPolicy, extraConfig: "metrics:\n  listen: {{METRICS}}\n"})
	rp := w.replicas[0]
	decodeSeen(t, w.signIn(browser(t), "/admin/", "alice"))
	resp := w.signIn(browser(t), "/admin/", "dave")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dave at /admin/: %d", resp.StatusCode)
	}
	// The main listener does not serve metrics.
	if resp, err := http.Get(w.gateway + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "portcullis_requests_total") {
			t.Error("metrics are served on the public listener")
		}
	}
	resp, err := http.Get("http://" + rp.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(b)
	for _, want := range []string{
		`portcullis_sign_ins_total{provider="corp",result="success"} 2`,
		`portcullis_auth_decisions_total{outcome="denied",rule="policy.routes[0] /admin/"} 1`,
		`portcullis_auth_decisions_total{outcome="allowed",rule="policy.routes[0] /admin/"} 1`,
		`portcullis_auth_decisions_total{outcome="unauthenticated",rule="policy.routes[0] /admin/"} 2`,
		`portcullis_requests_total{code="403",mode="proxy",route="/"} 1`,
		`portcullis_provider_request_duration_seconds_count{outcome="2xx",provider="corp"}`,
		`portcullis_build_info{go_version="go1.`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, leak := range []string{"alice", "dave", "u-alice", "example.com", "/admin/users"} {
		if strings.Contains(metrics, leak) {
			t.Errorf("a metric label carries %q", leak)
		}
	}

	// Audit events: one JSON object per line, apart from the access log.
	w.logs.waitFor(`"event":"sign_in"`, `"event":"denied"`)
	var events []map[string]any
	for _, line := range strings.Split(w.logs.String(), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev["msg"] == "audit" {
			events = append(events, ev)
		}
	}
	var signIns, denials int
	for _, ev := range events {
		switch ev["event"] {
		case "sign_in":
			signIns++
			if ev["provider"] != "corp" || ev["sub"] == "" || ev["request_id"] == "" {
				t.Errorf("sign_in event = %v", ev)
			}
		case "denied":
			denials++
			if ev["sub"] != "u-dave" || !strings.Contains(ev["rule"].(string), "policy.routes[0] /admin/") {
				t.Errorf("denied event = %v", ev)
			}
		}
	}
	if signIns != 2 || denials != 1 {
		t.Errorf("audit events: %d sign_in, %d denied; want 2 and 1\n%v", signIns, denials, events)
	}
}
