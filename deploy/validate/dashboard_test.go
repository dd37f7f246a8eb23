package validate

// dashboard_test.go checks deploy/grafana/portcullis-dashboard.json: a
// dashboard Grafana imports (JSON model:
// https://grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model/)
// whose every panel queries the Prometheus data source the user picks
// (the ${datasource} variable) with PromQL that parses.

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// dashboard is the part of Grafana's dashboard model checked here.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    struct{ H, W int }
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// promDatasource is the reference every query must use: the data source
// variable, so the dashboard works with whatever Prometheus it is given.
var promDatasource = datasourceRef{Type: "prometheus", UID: "${datasource}"}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", display(dashboardFile), err)
	}
	return d
}

// grafanaIntervals are Grafana's built-in range variables, which PromQL
// cannot parse until Grafana substitutes them
// (https://grafana.com/docs/grafana/latest/datasources/prometheus/template-variables/).
var grafanaIntervals = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)\}?`)

// labelValues is a query variable's label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

// dashboardQueries checks the dashboard's structure and returns every
// PromQL expression in it, Grafana's interval variables replaced.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	d := readDashboard(t)
	where := display(dashboardFile)
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 36 {
		t.Errorf("%s: title %q, uid %q, schemaVersion %d: want a title, a uid and schemaVersion 36 or later", where, d.Title, d.UID, d.SchemaVersion)
	}
	var out []query
	hasDatasourceVar := false
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			var q string
			json.Unmarshal(v.Query, &q)
			hasDatasourceVar = hasDatasourceVar || v.Name == "datasource" && q == "prometheus"
		case "query":
			var q struct{ Query string }
			if err := json.Unmarshal(v.Query, &q); err != nil || v.Datasource == nil || *v.Datasource != promDatasource {
				t.Errorf("%s: variable %s: want a query object on datasource %v", where, v.Name, promDatasource)
			}
			m := labelValues.FindStringSubmatch(q.Query)
			if m == nil {
				t.Errorf("%s: variable %s: query %q is not label_values(selector, label)", where, v.Name, q.Query)
				continue
			}
			out = append(out, query{fmt.Sprintf("%s: variable %s", where, v.Name), m[1]})
		}
	}
	if !hasDatasourceVar {
		t.Errorf("%s: no variable datasource of type datasource for prometheus", where)
	}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			pw := fmt.Sprintf("%s: panel %d %q", where, p.ID, p.Title)
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("%s: the panel id is zero or used twice", pw)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, panelQueries(t, pw, p)...)
		}
	}
	walk(d.Panels)
	if len(ids) < 2 {
		t.Fatalf("%s: no panels", where)
	}
	return out
}

func panelQueries(t *testing.T, where string, p panel) []query {
	t.Helper()
	if p.Title == "" || p.GridPos.W <= 0 || p.GridPos.H <= 0 {
		t.Errorf("%s: want a title and a gridPos", where)
	}
	if p.Datasource == nil || *p.Datasource != promDatasource {
		t.Errorf("%s: datasource %v, want %v", where, p.Datasource, promDatasource)
	}
	if len(p.Targets) == 0 {
		t.Errorf("%s: no targets", where)
	}
	var out []query
	for _, tg := range p.Targets {
		tw := where + " target " + tg.RefID
		if tg.Datasource != nil && *tg.Datasource != promDatasource {
			t.Errorf("%s: datasource %v, want %v", tw, tg.Datasource, promDatasource)
		}
		if strings.TrimSpace(tg.Expr) == "" {
			t.Errorf("%s: no expr", tw)
			continue
		}
		out = append(out, query{tw, grafanaIntervals.ReplaceAllString(tg.Expr, "5m")})
	}
	return out
}

func TestDashboard(t *testing.T) {
	for _, q := range dashboardQueries(t) {
		if _, err := metricNames(q.expr); err != nil {
			t.Errorf("%s: %v\n\t%s", q.where, err, q.expr)
		}
	}
}
