package validate

// configcheck_test.go validates a shipped Portcullis configuration with the
// real binary: `portcullis -config FILE -check`, with every secret file the
// configuration names replaced by a placeholder file of the right shape.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// expectedWarnings may appear in -check's output of a shipped
// configuration; any other warning fails the test.
var expectedWarnings = []string{
	"no upstreams: serving forward-auth only (/oauth2/auth); other requests get 404",
}

// isFileKey reports whether a configuration key names a file: every secret's
// <key>_file twin, and admin.token_file.
func isFileKey(key string) bool { return strings.HasSuffix(key, "_file") }

// gatewayConfig is a Portcullis configuration as shipped in a ConfigMap.
type gatewayConfig struct {
	source string // where it came from, for messages
	text   string
	root   *yaml.Node
}

func parseGatewayConfig(source, text string) (*gatewayConfig, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: the configuration is not a YAML mapping", source)
	}
	return &gatewayConfig{source: source, text: text, root: &doc}, nil
}

// lookup returns the scalar at a dotted path, or "".
func (c *gatewayConfig) lookup(path string) string {
	n := c.root.Content[0]
	for _, key := range strings.Split(path, ".") {
		n = mappingValue(n, key)
		if n == nil {
			return ""
		}
	}
	if n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// fileRef is one file path named in the configuration.
type fileRef struct {
	key  string // e.g. session.cookie.secrets_file[0]
	base string // the key's last element without an index, e.g. secrets_file
	node *yaml.Node
}

// files lists every file path the configuration names.
func (c *gatewayConfig) files() []fileRef {
	var out []fileRef
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, k := range n.Content {
				walk(k, path)
			}
		case yaml.SequenceNode:
			for i, k := range n.Content {
				walk(k, fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key, val := n.Content[i].Value, n.Content[i+1]
				p := strings.TrimPrefix(path+"."+key, ".")
				if !isFileKey(key) {
					walk(val, p)
					continue
				}
				switch val.Kind {
				case yaml.ScalarNode:
					if val.Value != "" {
						out = append(out, fileRef{key: p, base: key, node: val})
					}
				case yaml.SequenceNode:
					for j, item := range val.Content {
						out = append(out, fileRef{key: fmt.Sprintf("%s[%d]", p, j), base: key, node: item})
					}
				}
			}
		}
	}
	walk(c.root, "")
	return out
}

// placeholderSecret is what a file named by key holds in the check: the
// shape the gateway demands of it.
func placeholderSecret(key string) string {
	b := make([]byte, 32)
	rand.Read(b)
	switch key {
	case "secrets_file": // cookie secrets: base64 of 32 random bytes
		return base64.StdEncoding.EncodeToString(b) + "\n"
	case "token_file": // admin token: at least 32 characters
		return hex.EncodeToString(b) + "\n"
	}
	return "placeholder-" + hex.EncodeToString(b[:8]) + "\n"
}

// envRef matches ${NAME} and ${NAME:-default}, as the gateway does.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// checkResult is what -check printed.
type checkResult struct {
	stdout   string
	warnings []string
}

// runCheck writes the configuration with its files moved into a temporary
// directory and runs `portcullis -config FILE -check` on it. env holds the
// container's environment; only variables the configuration references
// are passed on.
func runCheck(t *testing.T, c *gatewayConfig, env map[string]string) checkResult {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()

	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(c.text), &doc); err != nil {
		t.Fatalf("%s: %v", c.source, err)
	}
	copyCfg := &gatewayConfig{source: c.source, text: c.text, root: &doc}
	for _, f := range copyCfg.files() {
		if !filepath.IsAbs(f.node.Value) {
			t.Errorf("%s: %s: %q is not an absolute path", c.source, f.key, f.node.Value)
			continue
		}
		local := filepath.Join(dir, "files", filepath.FromSlash(f.node.Value))
		if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(local); err != nil { // the same path twice gets the same file
			if err := os.WriteFile(local, []byte(placeholderSecret(f.base)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		f.node.Value = local
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, out, 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-config", cfgPath, "-check")
	cmd.Env = []string{}
	for _, m := range envRef.FindAllStringSubmatch(c.text, -1) {
		if v, ok := env[m[1]]; ok {
			cmd.Env = append(cmd.Env, m[1]+"="+v)
		}
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: portcullis -check: %v\n%s%s\nconfiguration as checked:\n%s", c.source, err, stdout.String(), stderr.String(), out)
	}
	res := checkResult{stdout: stdout.String()}
	t.Logf("%s: portcullis -check:\n%s", c.source, res.stdout)
	for line := range strings.SplitSeq(res.stdout, "\n") {
		if w, ok := strings.CutPrefix(line, "warning: "); ok {
			res.warnings = append(res.warnings, w)
			if !slices.Contains(expectedWarnings, w) {
				t.Errorf("%s: portcullis -check warns: %s", c.source, w)
			}
		}
	}
	if !strings.Contains(res.stdout, " is valid.") {
		t.Errorf("%s: portcullis -check printed no verdict:\n%s", c.source, res.stdout)
	}
	return res
}
