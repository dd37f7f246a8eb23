package validate

// manifests_test.go checks the plain manifests under deploy/kubernetes: each
// directory is a set applied on its own, decoded strictly, checked as a
// whole, its Portcullis configuration run through -check, and its
// forward-auth wiring compared with docs/forward-auth.md.

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// loadManifestDir decodes every YAML file of one directory.
func loadManifestDir(t *testing.T, dir string) assetSet {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("%s: no manifests", dir)
	}
	a := assetSet{name: display(dir)}
	for _, f := range files {
		objs, err := decodeFile(f)
		if err != nil {
			t.Error(err)
		}
		a.objects = append(a.objects, objs...)
	}
	return a
}

func TestManifests(t *testing.T) {
	for _, tt := range []struct {
		dir   string
		kinds []string // every kind the directory must contain
		store string   // session.store of its gateway
	}{
		{"sidecar", []string{"v1/ConfigMap", "apps/v1/Deployment", "v1/Service"}, "cookie"},
		{"ingress-nginx", []string{"v1/ConfigMap", "apps/v1/Deployment", "v1/Service", "policy/v1/PodDisruptionBudget", "networking.k8s.io/v1/Ingress"}, "redis"},
		{"traefik", []string{"v1/ConfigMap", "apps/v1/Deployment", "v1/Service", "policy/v1/PodDisruptionBudget", "traefik.io/v1alpha1/Middleware", "traefik.io/v1alpha1/IngressRoute"}, "redis"},
	} {
		t.Run(tt.dir, func(t *testing.T) {
			a := loadManifestDir(t, filepath.Join(manifestsDir, tt.dir))
			for _, k := range tt.kinds {
				if len(a.ofKind(k)) == 0 {
					t.Errorf("%s has no %s", a.name, k)
				}
			}
			gws := checkSet(t, a)
			if len(gws) != 1 {
				t.Fatalf("%s: %d Portcullis containers, want 1", a.name, len(gws))
			}
			if got := gws[0].config.lookup("session.store"); got != tt.store {
				t.Errorf("%s: session.store %q, want %q", a.name, got, tt.store)
			}
			runCheck(t, gws[0].config, gws[0].env)
		})
	}
}

// TestManifestDirectories makes sure no directory escapes TestManifests.
func TestManifestDirectories(t *testing.T) {
	entries, err := os.ReadDir(manifestsDir)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		} else {
			t.Errorf("%s/%s: manifests belong in a directory applied as a set", manifestsDir, e.Name())
		}
	}
	if want := []string{"ingress-nginx", "sidecar", "traefik"}; !slices.Equal(dirs, want) {
		t.Errorf("directories %v, want %v (add new ones to TestManifests)", dirs, want)
	}
}

// docsBlock returns the first ```yaml block after heading in
// docs/forward-auth.md.
func docsBlock(t *testing.T, heading string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docs", "forward-auth.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("docs/forward-auth.md has no heading %q", heading)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(rest)
	if m == nil {
		t.Fatalf("docs/forward-auth.md: no yaml block under %q", heading)
	}
	return []byte(m[1])
}

// TestIngressNginxMatchesDocs: the shipped Ingress carries exactly the
// annotations docs/forward-auth.md shows.
func TestIngressNginxMatchesDocs(t *testing.T) {
	docs, err := decodeDocument("docs/forward-auth.md ## ingress-nginx", docsBlock(t, "## ingress-nginx"))
	if err != nil {
		t.Fatal(err)
	}
	want := docs.value.(*networkingv1.Ingress).Annotations
	a := loadManifestDir(t, filepath.Join(manifestsDir, "ingress-nginx"))
	found := false
	for _, o := range a.ofKind("networking.k8s.io/v1/Ingress") {
		got := o.value.(*networkingv1.Ingress).Annotations
		if _, ok := got["nginx.ingress.kubernetes.io/auth-url"]; !ok {
			continue
		}
		found = true
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: annotation %s = %q, docs/forward-auth.md has %q", o, k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: annotation %s is not in docs/forward-auth.md", o, k)
			}
		}
	}
	if !found {
		t.Error("no Ingress with nginx.ingress.kubernetes.io/auth-url")
	}
}

// TestTraefikMatchesDocs: the shipped Middleware is the one
// docs/forward-auth.md shows (plus addAuthCookiesToResponse).
func TestTraefikMatchesDocs(t *testing.T) {
	docs, err := decodeDocument("docs/forward-auth.md ## Traefik", docsBlock(t, "## Traefik (`forwardAuth` middleware)"))
	if err != nil {
		t.Fatal(err)
	}
	want := docs.value.(*traefikMiddleware).Spec.ForwardAuth
	a := loadManifestDir(t, filepath.Join(manifestsDir, "traefik"))
	mws := a.ofKind("traefik.io/v1alpha1/Middleware")
	if len(mws) != 1 {
		t.Fatalf("%d Middlewares, want 1", len(mws))
	}
	got := mws[0].value.(*traefikMiddleware).Spec.ForwardAuth
	if got.Address != want.Address || got.TrustForwardHeader != want.TrustForwardHeader || !slices.Equal(got.AuthResponseHeaders, want.AuthResponseHeaders) {
		t.Errorf("%s: forwardAuth %+v, docs/forward-auth.md has %+v", mws[0], *got, *want)
	}
}
