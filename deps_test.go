package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// dependencyFloors are the lowest versions without known vulnerabilities
// that matter here (SECURITY.md §5, from the Go vulnerability database).
// govulncheck cannot reach its database from CI; this test holds the line,
// and the release checklist in the README runs govulncheck where it can.
var dependencyFloors = map[string]string{
	"golang.org/x/oauth2":             "v0.27.0", // CVE-2025-22868 (GO-2025-3488)
	"github.com/go-jose/go-jose/v4":   "v4.1.4",  // CVE-2026-34986, CVE-2025-27144, CVE-2024-28180
	"github.com/coreos/go-oidc/v3":    "v3.10.0", // the version whose behaviour SECURITY.md §2.8 describes
	"github.com/gorilla/securecookie": "v1.1.2",
	"github.com/redis/go-redis/v9":    "v9.7.3", // CVE-2025-29923 (GO-2025-3540)
	"github.com/golang-jwt/jwt/v5":    "v5.2.2", // CVE-2025-30204, only if it is ever pulled in
	"github.com/golang-jwt/jwt/v4":    "v4.5.2", // CVE-2025-30204, CVE-2024-51744
}

func TestDependencyFloors(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, line := range strings.Split(string(mod), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && strings.HasPrefix(f[1], "v") {
			seen[f[0]] = f[1]
		}
	}
	for _, must := range []string{"golang.org/x/oauth2", "github.com/go-jose/go-jose/v4", "github.com/coreos/go-oidc/v3", "github.com/gorilla/securecookie"} {
		if seen[must] == "" {
			t.Errorf("go.mod does not list %s; the floor cannot be checked", must)
		}
	}
	for m, floor := range dependencyFloors {
		if v, ok := seen[m]; ok && semverLess(v, floor) {
			t.Errorf("%s %s is below the floor %s", m, v, floor)
		}
	}
	// The toolchain: Go 1.26 or later.
	if v := runtime.Version(); strings.HasPrefix(v, "go1.") {
		minor, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(v, "go1."), ".", 2)[0])
		if minor < 26 {
			t.Errorf("built with %s; use Go 1.26 or later", v)
		}
	}
}

func TestSemverLess(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"v0.26.0", "v0.27.0", true}, {"v0.27.0", "v0.27.0", false}, {"v0.38.0", "v0.27.0", false},
		{"v4.1.3", "v4.1.4", true}, {"v4.1.10", "v4.1.4", false}, {"v9.7.2", "v9.7.3", true},
		{"v1.2.3-pre", "v1.2.3", true}, {"v0.0.0-20240101000000-abcdef", "v0.1.0", true},
	} {
		if got := semverLess(tt.a, tt.b); got != tt.want {
			t.Errorf("semverLess(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// semverLess compares vMAJOR.MINOR.PATCH[-pre] versions; a pre-release
// sorts before its release.
func semverLess(a, b string) bool {
	pa, prea := splitSemver(a)
	pb, preb := splitSemver(b)
	for i := 0; i < 3; i++ {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return prea && !preb
}

func splitSemver(v string) ([3]int, bool) {
	v = strings.TrimPrefix(v, "v")
	core, _, pre := strings.Cut(v, "-")
	var out [3]int
	for i, p := range strings.SplitN(core, ".", 3) {
		out[i], _ = strconv.Atoi(p)
	}
	return out, pre
}
