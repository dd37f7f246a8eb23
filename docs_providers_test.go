package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// docsProviders is the page TestDocsProviders checks.
const docsProviders = "docs/providers.md"

// yamlBlocks returns the fenced ```yaml blocks of a Markdown page, each
// with the line it starts on.
func yamlBlocks(page string) (blocks []string, lines []int) {
	var cur []string
	in, start := false, 0
	for i, line := range strings.Split(page, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```yaml":
			in, start, cur = true, i+2, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks, lines = append(blocks, strings.Join(cur, "\n")), append(lines, start)
		case in:
			cur = append(cur, line)
		}
	}
	return blocks, lines
}

// fullConfig makes a documented block a whole configuration: a list is
// the providers section; a mapping keeps its sections and gets the
// sections it lacks from a minimal gateway.
func fullConfig(t *testing.T, block string) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(block), &doc); err != nil || len(doc.Content) != 1 {
		t.Fatalf("not YAML: %v", err)
	}
	cfg := map[string]any{
		"server":    map[string]any{"public_url": "https://gw.example.com"},
		"session":   map[string]any{"cookie": map[string]any{"secrets": []string{randomBase64(32)}}},
		"upstreams": []any{map[string]any{"path": "/", "url": "http://127.0.0.1:8080"}},
		"policy":    map[string]any{"email_domains": []string{"example.com"}},
	}
	switch root := doc.Content[0]; root.Kind {
	case yaml.SequenceNode:
		cfg["providers"] = root
	case yaml.MappingNode:
		for i := 0; i+1 < len(root.Content); i += 2 {
			cfg[root.Content[i].Value] = root.Content[i+1]
		}
	default:
		t.Fatalf("a YAML block must be a providers entry or a configuration")
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// docsKeyMaterial is a self-signed CA certificate and an EC P-256 private
// key, PEM-encoded, standing in for the files the page names.
func docsKeyMaterial(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "docs CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
}

// TestDocsProviders loads every YAML block of docs/providers.md with the
// real loader and validates it as -check does, so that a documented key
// that does not exist, or a value the gateway refuses, fails here; and it
// checks that every test a "Tested by:" line names is a test function of
// this repository.
func TestDocsProviders(t *testing.T) {
	page, err := os.ReadFile(docsProviders)
	if err != nil {
		t.Fatal(err)
	}
	// Every secret file and variable the page mentions reads as a secret;
	// a documented CA file as a certificate, a key file as a key.
	certPEM, keyPEM := docsKeyMaterial(t)
	src := source{
		lookupEnv: func(string) (string, bool) { return "documented-secret", true },
		readFile: func(path string) ([]byte, error) {
			switch {
			case strings.HasSuffix(path, ".key"):
				return keyPEM, nil
			case strings.HasSuffix(path, "ca.pem"):
				return certPEM, nil
			}
			return []byte("documented-secret\n"), nil
		},
	}
	blocks, lines := yamlBlocks(string(page))
	if len(blocks) < 10 {
		t.Fatalf("%s has %d YAML blocks, want one per provider at least", docsProviders, len(blocks))
	}
	for i, block := range blocks {
		name := docsProviders + ":" + strconv.Itoa(lines[i])
		t.Run(name, func(t *testing.T) {
			cfg, err := parseConfig("the block wrapped into a configuration", fullConfig(t, block), src)
			if err == nil {
				err = cfg.readFiles(src.readFile)
			}
			if err == nil {
				_, err = build(cfg, slog.New(slog.DiscardHandler), buildOptions{validateOnly: true})
			}
			if err != nil {
				t.Errorf("the block at %s is not a valid configuration:\n%v\n%s", name, err, block)
			}
		})
	}

	tests := repoTests(t)
	named := regexp.MustCompile(`\bTest[A-Za-z0-9_]+`)
	lineRE := regexp.MustCompile(`(?s)Tested by:(.*?)(\n\n|$)`)
	sections := lineRE.FindAllStringSubmatch(string(page), -1)
	if len(sections) < 10 {
		t.Errorf("%s has %d \"Tested by:\" lines, want one per provider", docsProviders, len(sections))
	}
	for _, m := range sections {
		names := named.FindAllString(m[1], -1)
		if len(names) == 0 {
			t.Errorf("a \"Tested by:\" line names no test: %q", m[0])
		}
		for _, n := range names {
			if !tests[n] {
				t.Errorf("%s names %s, which is no test function in the repository", docsProviders, n)
			}
		}
	}
}

// repoTests is the set of Test functions declared in the repository's
// _test.go files.
func repoTests(t *testing.T) map[string]bool {
	t.Helper()
	tests := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Test") {
				tests[fn.Name.Name] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tests
}
