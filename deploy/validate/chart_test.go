package validate

// chart_test.go lints and renders deploy/helm/portcullis the way
// `helm lint` and `helm template` do (the Helm SDK, client-only), with the
// default values and with the variants in testdata/, and checks every
// rendering like the plain manifests.

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

const (
	releaseName = "portcullis"
	namespace   = "auth"
)

// kubeVersions are the oldest Kubernetes the chart declares (Chart.yaml
// kubeVersion) and the one whose API types (k8s.io/api) decode the output.
var kubeVersions = []string{"v1.25.0", "v1.37.0"}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading %s: %v", chartDir, err)
	}
	return ch
}

func readValues(t *testing.T, file string) map[string]any {
	t.Helper()
	if file == "" {
		return map[string]any{}
	}
	v, err := chartutil.ReadValuesFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// rendering is what `helm template` prints, decoded.
type rendering struct {
	set   assetSet
	notes string
}

// render installs the chart client-only, as `helm template` does.
func render(t *testing.T, ch *chart.Chart, vals map[string]any) rendering {
	t.Helper()
	return renderFor(t, ch, vals, kubeVersions[0])
}

func renderFor(t *testing.T, ch *chart.Chart, vals map[string]any, kubeVersion string) rendering {
	t.Helper()
	rel, err := renderReleaseFor(ch, vals, kubeVersion)
	if err != nil {
		t.Fatalf("rendering %s: %v", chartDir, err)
	}
	r := rendering{set: assetSet{name: "chart"}, notes: rel.Info.Notes}
	manifests := releaseutil.SplitManifests(rel.Manifest)
	keys := slices.Collect(maps.Keys(manifests))
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	for _, key := range keys {
		objs, err := decodeStream("rendered "+key, []byte(manifests[key]))
		if err != nil {
			t.Error(err)
		}
		for i := range objs {
			if objs[i].namespace == "" {
				objs[i].namespace = namespace // helm applies them to the release namespace
			}
		}
		r.set.objects = append(r.set.objects, objs...)
	}
	if len(rel.Hooks) > 0 {
		t.Errorf("the chart has %d hooks; it should have none", len(rel.Hooks))
	}
	return r
}

// renderRelease is `helm template`: an install that is client-only and a
// dry run, so no cluster is needed.
func renderRelease(ch *chart.Chart, vals map[string]any) (*release.Release, error) {
	return renderReleaseFor(ch, vals, kubeVersions[0])
}

func renderReleaseFor(ch *chart.Chart, vals map[string]any, kubeVersion string) (*release.Release, error) {
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		return nil, err
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.KubeVersion = kv
	install.DryRun = true
	install.ClientOnly = true
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.Replace = true
	return install.Run(ch, vals)
}

// chartVariant is a value set every chart test runs with, and what its
// rendering must show.
type chartVariant struct {
	name       string
	values     string // file in testdata/, "" for the chart's defaults
	replicas   int32
	store      string
	ingress    bool
	pdb        bool
	upstreams  bool
	adminAPI   bool
	metrics    bool
	secretKeys []string // files mounted under /run/secrets/portcullis
}

var chartVariants = []chartVariant{
	{"defaults", "", 1, "cookie", false, false, false, false, false, []string{"client-secret-corp", "cookie-secret-0"}},
	{"redis, ingress, metrics, 3 replicas", "values-redis-ingress.yaml", 3, "redis", true, true, false, true, true, []string{"admin-token", "client-secret-corp", "cookie-secret-0", "cookie-secret-1", "redis-password"}},
	{"reverse proxy, two providers", "values-reverse-proxy.yaml", 1, "cookie", true, false, true, false, false, []string{"client-secret-corp", "client-secret-github", "cookie-secret-0"}},
}

func TestChartLint(t *testing.T) {
	for _, tt := range chartVariants {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range kubeVersions {
				kv, err := chartutil.ParseKubeVersion(v)
				if err != nil {
					t.Fatal(err)
				}
				linter := lint.AllWithKubeVersion(chartDir, readValues(t, tt.values), namespace, kv)
				for _, m := range linter.Messages {
					if m.Severity >= support.WarningSev {
						t.Errorf("helm lint (Kubernetes %s): %s", v, m)
					} else {
						t.Logf("helm lint (Kubernetes %s): %s", v, m)
					}
				}
			}
		})
	}
}

func TestChartRender(t *testing.T) {
	ch := loadChart(t)
	for _, tt := range chartVariants {
		for _, kv := range kubeVersions {
			t.Run(tt.name+"/"+kv, func(t *testing.T) {
				testRendering(t, renderFor(t, ch, readValues(t, tt.values), kv), tt)
			})
		}
	}
}

func testRendering(t *testing.T, r rendering, tt chartVariant) {
	gws := checkSet(t, r.set)
	if len(gws) != 1 {
		t.Fatalf("%d Portcullis containers, want 1", len(gws))
	}
	gw := gws[0]
	dep := gw.deployment.value.(*appsv1.Deployment)
	if got := *dep.Spec.Replicas; got != tt.replicas {
		t.Errorf("replicas %d, want %d", got, tt.replicas)
	}
	if got := gw.config.lookup("session.store"); got != tt.store {
		t.Errorf("session.store %q, want %q", got, tt.store)
	}
	if got := len(r.set.ofKind("networking.k8s.io/v1/Ingress")) > 0; got != tt.ingress {
		t.Errorf("Ingress rendered: %v, want %v", got, tt.ingress)
	}
	if got := len(r.set.ofKind("policy/v1/PodDisruptionBudget")) > 0; got != tt.pdb {
		t.Errorf("PodDisruptionBudget rendered: %v, want %v", got, tt.pdb)
	}
	if got := gw.config.lookup("admin.listen") != ""; got != tt.adminAPI {
		t.Errorf("admin API configured: %v, want %v", got, tt.adminAPI)
	}
	if got := gw.config.lookup("metrics.listen") != ""; got != tt.metrics {
		t.Errorf("metrics configured: %v, want %v", got, tt.metrics)
	}
	var mounted []string
	for _, f := range sortedKeys(mountedSecretFiles(gw.container, volumesOf(dep))) {
		mounted = append(mounted, strings.TrimPrefix(f, "/run/secrets/portcullis/"))
	}
	if !slices.Equal(mounted, tt.secretKeys) {
		t.Errorf("secret files %v, want %v", mounted, tt.secretKeys)
	}
	if len(r.set.ofKind("v1/ServiceAccount")) != 1 {
		t.Error("no ServiceAccount")
	}
	checkShutdownTiming(t, gw.config, dep)

	res := runCheck(t, gw.config, gw.env)
	if forwardAuthOnly := len(res.warnings) > 0; forwardAuthOnly == tt.upstreams {
		t.Errorf("-check warnings %q with upstreams %v", res.warnings, tt.upstreams)
	}

	// NOTES.txt names the URIs -check prints.
	for line := range strings.SplitSeq(res.stdout, "\n") {
		if uri, ok := strings.CutPrefix(strings.TrimSpace(line), "redirect URI:"); ok {
			if !strings.Contains(r.notes, strings.TrimSpace(uri)) {
				t.Errorf("NOTES.txt does not name the redirect URI %s:\n%s", strings.TrimSpace(uri), r.notes)
			}
		}
	}
	if strings.Contains(r.notes, "WARNING") {
		t.Errorf("NOTES.txt warns:\n%s", r.notes)
	}
}

// checkShutdownTiming: a rolling restart fails no request only if the pod
// is given time for the whole shutdown: server.shutdown_delay (serving
// while endpoints drop it; the image has no shell for a preStop sleep, so
// the gateway waits itself), then server.shutdown_timeout, plus a margin.
func checkShutdownTiming(t *testing.T, c *gatewayConfig, dep *appsv1.Deployment) {
	t.Helper()
	dur := func(key string, def time.Duration) time.Duration {
		v := c.lookup(key)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s %q: %v", key, v, err)
		}
		return d
	}
	delay, timeout := dur("server.shutdown_delay", 0), dur("server.shutdown_timeout", 30*time.Second)
	if delay < 5*time.Second {
		t.Errorf("server.shutdown_delay %v: endpoints need a few seconds to drop a terminating pod", delay)
	}
	grace := dep.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second < delay+timeout+5*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v < shutdown_delay %v + shutdown_timeout %v + 5s", grace, delay, timeout)
	}
}

func volumesOf(d *appsv1.Deployment) map[string]corev1.Volume {
	out := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		out[v.Name] = v
	}
	return out
}

// TestChartConfigChecksum: pods roll when, and only when, the configuration
// changes.
func TestChartConfigChecksum(t *testing.T) {
	ch := loadChart(t)
	checksum := func(vals map[string]any) string {
		t.Helper()
		for _, o := range render(t, ch, vals).set.ofKind("apps/v1/Deployment") {
			return o.value.(*appsv1.Deployment).Spec.Template.Annotations["checksum/config"]
		}
		t.Fatal("no Deployment")
		return ""
	}
	base := checksum(map[string]any{})
	if len(base) != 64 {
		t.Fatalf("checksum/config %q is not a sha256", base)
	}
	if again := checksum(map[string]any{}); again != base {
		t.Errorf("checksum/config changes between identical renderings: %s, %s", base, again)
	}
	changed := checksum(map[string]any{"config": map[string]any{"log": map[string]any{"level": "debug"}}})
	if changed == base {
		t.Error("checksum/config did not change with the configuration")
	}
	if replicas := checksum(map[string]any{"replicaCount": 2}); replicas != base {
		t.Error("checksum/config changed with replicaCount, which is not configuration")
	}
}

// TestChartSchema: values.schema.json refuses typos and impossible values
// before anything is rendered.
func TestChartSchema(t *testing.T) {
	ch := loadChart(t)
	for _, tt := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"unknown top-level key", map[string]any{"replicas": 3}, "replicas"},
		{"unknown config section", map[string]any{"config": map[string]any{"sesion": map[string]any{}}}, "sesion"},
		{"listen is the chart's", map[string]any{"config": map[string]any{"server": map[string]any{"listen": ":8080"}}}, "listen"},
		{"store", map[string]any{"config": map[string]any{"session": map[string]any{"store": "memcached"}}}, "store"},
		{"provider without a client secret", map[string]any{"secrets": map[string]any{"clientSecrets": map[string]any{"corp": nil}}}, "secrets.clientSecrets.corp"},
		{"no cookie secret", map[string]any{"secrets": map[string]any{"cookieSecrets": map[string]any{"keys": []any{}}}}, "keys"},
		{"serviceMonitor typo", map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enable": true}}}, "enable"},
		{"prometheusRule interval", map[string]any{"metrics": map[string]any{"prometheusRule": map[string]any{"interval": "1m"}}}, "interval"},
		{"ingress path", map[string]any{"ingress": map[string]any{"hosts": []any{map[string]any{"host": "a.example.com", "paths": []any{map[string]any{"path": "oauth2"}}}}}}, "path"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderRelease(ch, tt.vals)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("rendering with %v: error %v, want one naming %q", tt.vals, err, tt.want)
			}
		})
	}
}

// TestChartIngressRoutesGateway: the optional Ingress sends the configured
// paths to the gateway's Service.
func TestChartIngressRoutesGateway(t *testing.T) {
	r := render(t, loadChart(t), readValues(t, "values-redis-ingress.yaml"))
	ings := r.set.ofKind("networking.k8s.io/v1/Ingress")
	if len(ings) != 1 {
		t.Fatalf("%d Ingresses, want 1", len(ings))
	}
	ing := ings[0].value.(*networkingv1.Ingress)
	if len(ing.Spec.TLS) == 0 {
		t.Error("the variant's tls did not reach the Ingress")
	}
	if got := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name; got != releaseName {
		t.Errorf("Ingress routes to %s, want %s", got, releaseName)
	}
}

// TestChartSchemaCoversConfig: values.schema.json lists exactly the
// configuration's sections (the yaml tags of main's config struct), so a
// new section is not refused at install and a typo'd one is.
func TestChartSchemaCoversConfig(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(repoRoot, "config.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var sections []string
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "config" {
			return true
		}
		for _, field := range ts.Type.(*ast.StructType).Fields.List {
			if field.Tag == nil {
				continue
			}
			tag, _ := strconv.Unquote(field.Tag.Value)
			name, _, _ := strings.Cut(reflect.StructTag(tag).Get("yaml"), ",")
			if name != "" && name != "-" {
				sections = append(sections, name)
			}
		}
		return false
	})
	if len(sections) == 0 {
		t.Fatal("config.go: no config struct with yaml tags")
	}
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties struct {
			Config struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"config"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(schema.Properties.Config.Properties))
	slices.Sort(sections)
	if !slices.Equal(got, sections) {
		t.Errorf("values.schema.json config sections %v, config.go has %v", got, sections)
	}
}
