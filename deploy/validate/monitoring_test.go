package validate

// monitoring_test.go checks the chart's opt-in Prometheus Operator objects
// (monitoring.coreos.com/v1,
// https://prometheus-operator.dev/docs/api-reference/api/): the
// ServiceMonitor scrapes the metrics port of the gateway's Service, and
// the PrometheusRule carries exactly the rules of
// deploy/prometheus/portcullis-rules.yaml.

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serviceMonitor is monitoring.coreos.com/v1 ServiceMonitor, the fields
// the chart uses.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// prometheusRule is monitoring.coreos.com/v1 PrometheusRule: its spec is
// a rule file's groups.
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// checkServiceMonitor: it selects a Service of the set, in the release's
// namespace, by its labels, and scrapes a port that Service names, at
// /metrics.
func checkServiceMonitor(t *testing.T, a assetSet, o object) {
	sm := o.value.(*serviceMonitor)
	if got := sm.Spec.NamespaceSelector.MatchNames; !slices.Equal(got, []string{o.namespace}) {
		t.Errorf("%s: namespaceSelector %v, want [%s]", o, got, o.namespace)
	}
	var svcs []*corev1.Service
	for _, s := range a.ofKind("v1/Service") {
		if ok, err := selects(&sm.Spec.Selector, s.value.GetLabels()); err != nil {
			t.Errorf("%s: %v", o, err)
		} else if ok && s.namespace == o.namespace {
			svcs = append(svcs, s.value.(*corev1.Service))
		}
	}
	if len(svcs) != 1 {
		t.Fatalf("%s: selects %d Services, want 1", o, len(svcs))
	}
	if len(sm.Spec.Endpoints) == 0 {
		t.Errorf("%s: no endpoints", o)
	}
	for _, ep := range sm.Spec.Endpoints {
		if !slices.ContainsFunc(svcs[0].Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
			t.Errorf("%s: endpoint port %q is not a port of Service %s", o, ep.Port, svcs[0].Name)
		}
		if ep.Path != "/metrics" {
			t.Errorf("%s: endpoint path %q, want /metrics", o, ep.Path)
		}
		if _, err := time.ParseDuration(ep.Interval); err != nil {
			t.Errorf("%s: interval %q: %v", o, ep.Interval, err)
		}
	}
}

// checkPrometheusRule: the rendered groups are the rule file's.
func checkPrometheusRule(t *testing.T, o object, want *rulefmt.RuleGroups) {
	pr := o.value.(*prometheusRule)
	if len(pr.Spec.Groups) != len(want.Groups) {
		t.Fatalf("%s: %d groups, the rule file has %d", o, len(pr.Spec.Groups), len(want.Groups))
	}
	for i, g := range pr.Spec.Groups {
		wg := want.Groups[i]
		if g.Name != wg.Name || len(g.Rules) != len(wg.Rules) {
			t.Errorf("%s: group %s with %d rules, the rule file has %s with %d", o, g.Name, len(g.Rules), wg.Name, len(wg.Rules))
			continue
		}
		for j, r := range g.Rules {
			w := wg.Rules[j]
			wantFor := ""
			if w.For != 0 {
				wantFor = w.For.String()
			}
			if r.Alert != w.Alert || strings.TrimSpace(r.Expr) != strings.TrimSpace(w.Expr) || r.For != wantFor ||
				!reflect.DeepEqual(r.Labels, w.Labels) || !reflect.DeepEqual(r.Annotations, w.Annotations) {
				t.Errorf("%s: rule %d of group %s differs from the rule file's %s", o, j, g.Name, w.Alert)
			}
		}
	}
}

// TestChartMonitoring: with both options on, the chart renders one
// ServiceMonitor and one PrometheusRule, carrying their labels; off (the
// default), neither; a ServiceMonitor without the metrics port is refused.
func TestChartMonitoring(t *testing.T) {
	ch := loadChart(t)
	rules := loadRules(t, rulesFile)
	r := render(t, ch, readValues(t, "values-redis-ingress.yaml"))
	sms, prs := r.set.ofKind("monitoring.coreos.com/v1/ServiceMonitor"), r.set.ofKind("monitoring.coreos.com/v1/PrometheusRule")
	if len(sms) != 1 || len(prs) != 1 {
		t.Fatalf("%d ServiceMonitors and %d PrometheusRules, want 1 and 1", len(sms), len(prs))
	}
	for _, o := range append(sms, prs...) {
		if o.value.GetLabels()["release"] != "kube-prometheus-stack" {
			t.Errorf("%s: labels %v: the variant's labels did not reach it", o, o.value.GetLabels())
		}
	}
	checkPrometheusRule(t, prs[0], rules)

	def := render(t, ch, map[string]any{})
	if n := len(def.set.ofKind("monitoring.coreos.com/v1/ServiceMonitor")) + len(def.set.ofKind("monitoring.coreos.com/v1/PrometheusRule")); n != 0 {
		t.Errorf("the defaults render %d Prometheus Operator objects; they are opt-in", n)
	}
	_, err := renderRelease(ch, map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}})
	if err == nil || !strings.Contains(err.Error(), "metrics.enabled") {
		t.Errorf("a ServiceMonitor without metrics.enabled: error %v, want one naming metrics.enabled", err)
	}
}
