package validate

// inputs_test.go names the files the tests read, and makes `go test`'s
// result cache see them.
//
// go test caches a passing result and replays it while the test binary and
// the files the test opened are unchanged, but it only looks at files
// inside this module: edits to ../Dockerfile, the chart, the manifests or
// the gateway's own sources would otherwise replay a stale "ok". So every
// path goes through testdata/repo, a symlink to the repository root that
// lies inside this module, and the gateway's sources, which `go build`
// reads in another process, are opened here once so that they count too.

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	repoRoot     = "testdata/repo" // -> ../../..
	dockerfile   = repoRoot + "/deploy/Dockerfile"
	manifestsDir = repoRoot + "/deploy/kubernetes"
	chartDir     = repoRoot + "/deploy/helm/portcullis"
)

// display shortens a path under repoRoot for messages.
func display(path string) string {
	return strings.TrimPrefix(filepath.ToSlash(path), repoRoot+"/")
}

// touchGatewaySources opens every file `go build` reads from the main
// module (Go files, embedded assets, go.mod, go.sum), so that the result
// cache is invalidated when any of them changes.
func touchGatewaySources() error {
	return filepath.WalkDir(repoRoot+"/", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(filepath.ToSlash(path), repoRoot+"/")
		if d.IsDir() {
			if rel == "deploy" || strings.HasPrefix(d.Name(), ".") && rel != "" {
				return filepath.SkipDir // read by the tests directly; .git
			}
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 || d.Name() == "portcullis" {
			return nil // a built binary at the root is not a source
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		return f.Close()
	})
}
