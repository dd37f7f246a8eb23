package main

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportDirection holds the dependency direction of DESIGN.md:
// main → proxy → providers → session, and session imports neither of the
// others. A package may skip a level (proxy uses session directly) but
// never point back up. proxy/ui (the pages' look, shared with the demo)
// is a leaf below them all.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/portcullis/portcullis/"
	level := map[string]int{"proxy/ui": -1, "session": 0, "providers": 1, "proxy": 2}
	for pkg, lvl := range level {
		files, err := filepath.Glob(filepath.Join(pkg, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s: %v", pkg, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				path := strings.Trim(imp.Path.Value, `"`)
				dep, ours := strings.CutPrefix(path, mod)
				if !ours {
					continue
				}
				if l, known := level[dep]; !known || l >= lvl {
					t.Errorf("%s imports %s: the direction is main → proxy → providers → session", f, path)
				}
			}
		}
	}
}
