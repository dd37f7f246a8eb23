package validate

// promql_test.go checks the alerting rules (deploy/prometheus) and the
// Grafana dashboard (deploy/grafana) as Prometheus and Grafana would read
// them, and collects the metric names their queries select, for
// scrape_test.go to compare with what a running gateway exports.

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

const (
	rulesFile      = repoRoot + "/deploy/prometheus/portcullis-rules.yaml"
	chartRulesFile = chartDir + "/files/portcullis-rules.yaml"
	dashboardFile  = repoRoot + "/deploy/grafana/portcullis-dashboard.json"
	// runbook is what every alert's runbook_url points into.
	runbook = "docs/operations.md#dashboards-and-alerts"
)

// promql parses PromQL as Prometheus 3 does (default options).
var promql = parser.NewParser(parser.Options{})

// query is one PromQL expression and where it was found.
type query struct {
	where string
	expr  string
}

// loadRules parses the rule file the way `promtool check rules` does:
// rulefmt.ParseFile with unknown fields refused, which decodes the groups,
// then validates every rule (names, for, labels, annotation templates) and
// parses every expr with the PromQL parser
// (https://prometheus.io/docs/prometheus/latest/configuration/recording_rules/#syntax-checking-rules).
func loadRules(t *testing.T, path string) *rulefmt.RuleGroups {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rgs, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, promql, logger)
	for _, err := range errs {
		t.Errorf("%s: %v", display(path), err)
	}
	if rgs == nil || len(errs) > 0 {
		t.FailNow()
	}
	return rgs
}

// ruleQueries returns every expr of the rule file, checked.
func ruleQueries(t *testing.T) []query {
	t.Helper()
	var out []query
	seen := map[string]bool{}
	for _, g := range loadRules(t, rulesFile).Groups {
		for _, r := range g.Rules {
			where := fmt.Sprintf("%s: group %s: alert %s", display(rulesFile), g.Name, r.Alert)
			if r.Alert == "" {
				t.Errorf("%s: a recording rule (%s); the file holds alerts", where, r.Record)
			}
			if seen[r.Alert] {
				t.Errorf("%s: the alert name is used twice", where)
			}
			seen[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", where, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", where, a)
				}
			}
			if !strings.HasSuffix(r.Annotations["runbook_url"], runbook) {
				t.Errorf("%s: runbook_url %q does not point to %s", where, r.Annotations["runbook_url"], runbook)
			}
			out = append(out, query{where, r.Expr})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no rules", display(rulesFile))
	}
	return out
}

func TestAlertingRules(t *testing.T) {
	for _, q := range ruleQueries(t) {
		if _, err := metricNames(q.expr); err != nil {
			t.Errorf("%s: %v", q.where, err)
		}
	}
}

// TestChartRulesAreTheRules: the chart's PrometheusRule is rendered from
// its own copy of the rules (Helm reads only files inside the chart); the
// copy must be the rule file, byte for byte.
func TestChartRulesAreTheRules(t *testing.T) {
	want, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(chartRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s: cp %s %s", display(chartRulesFile), display(rulesFile), display(rulesFile), display(chartRulesFile))
	}
}

// metricNames parses expr and returns the metric names its selectors
// name, sorted. A selector without a name (a {__name__=~…} matcher only)
// is an error: the names could not be checked.
func metricNames(expr string) ([]string, error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var bad error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name == "" {
			bad = fmt.Errorf("selector %s names no metric", vs)
		} else if !slices.Contains(names, vs.Name) {
			names = append(names, vs.Name)
		}
		return nil
	})
	slices.Sort(names)
	return names, bad
}

// labelUse is a label a query relies on: matched on a selector, or
// grouped by in an aggregation over the selectors metrics names.
type labelUse struct {
	label   string
	metrics []string // the label must be on at least one of them
}

// labelUses parses expr and returns the labels its matchers and its
// by (…) groupings name, with the metrics they must come from.
func labelUses(expr string) ([]labelUse, error) {
	e, err := promql.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var out []labelUse
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			for _, m := range n.LabelMatchers {
				if m.Name != model.MetricNameLabel {
					out = append(out, labelUse{m.Name, []string{n.Name}})
				}
			}
		case *parser.AggregateExpr:
			if n.Without {
				return nil
			}
			inner, err := metricNames(n.Expr.String())
			if err != nil {
				return err
			}
			for _, l := range n.Grouping {
				out = append(out, labelUse{l, inner})
			}
		}
		return nil
	})
	return out, nil
}
