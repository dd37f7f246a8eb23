package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis/portcullis/proxy"
	"github.com/portcullis/portcullis/session"
)

// policyCase is one entry of a `portcullis policy test` file.
type policyCase struct {
	Name     string        `yaml:"name"`
	Identity *caseIdentity `yaml:"identity"` // absent: not signed in
	Request  caseRequest   `yaml:"request"`
	Expect   string        `yaml:"expect"` // allow, deny, or empty to only print
}

type caseIdentity struct {
	Subject       string              `yaml:"subject"`
	Email         string              `yaml:"email"`
	EmailVerified *bool               `yaml:"email_verified"` // default true when an email is given
	Groups        []string            `yaml:"groups"`
	Claims        map[string][]string `yaml:"claims"`
}

type caseRequest struct {
	Method string `yaml:"method"` // default GET
	Host   string `yaml:"host"`
	Path   string `yaml:"path"`
}

// runPolicyTest is `portcullis policy test -config FILE CASES`: it decides
// every case with the configuration's policy, prints allow/deny and the
// deciding rule, and exits 1 when a case's expect is not met.
func runPolicyTest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis policy test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (YAML)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: portcullis policy test -config FILE CASES.yaml")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" || fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	// Only the policy matters here: secrets need not be present, so unset
	// variables and secret files read as placeholders.
	cfg, err := loadConfig(*configPath, policySource(*configPath))
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	pol, err := proxy.NewPolicy(cfg.Policy)
	if err != nil {
		fmt.Fprintln(stderr, "portcullis: policy:", err)
		return 1
	}
	cases, err := readPolicyCases(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "portcullis:", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	failed := 0
	for i, c := range cases {
		name := c.Name
		if name == "" {
			name = fmt.Sprintf("case %d", i+1)
		}
		allow, rule, err := pol.Decide(c.Request.Method, c.Request.Host, c.Request.Path, c.Identity.toSession())
		verdict := "deny"
		if allow {
			verdict = "allow"
		}
		if err != nil {
			verdict, rule = "deny", "400: "+err.Error()
		}
		mark := ""
		if c.Expect != "" && c.Expect != verdict {
			mark = "  FAIL: expected " + c.Expect
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s\n", strings.ToUpper(verdict), name, rule, mark)
	}
	tw.Flush()
	if failed > 0 {
		fmt.Fprintf(stdout, "%d of %d cases failed\n", failed, len(cases))
		return 1
	}
	fmt.Fprintf(stdout, "%d cases, all as expected\n", len(cases))
	return 0
}

func (c *caseIdentity) toSession() *session.Identity {
	if c == nil {
		return nil
	}
	id := &session.Identity{Issuer: "policy-test", Subject: c.Subject, Email: c.Email, Groups: c.Groups, Claims: c.Claims}
	if id.Subject == "" {
		id.Subject = "policy-test-user"
	}
	id.EmailVerified = c.Email != "" && (c.EmailVerified == nil || *c.EmailVerified)
	return id
}

// readPolicyCases reads a YAML (or JSON) list of cases, strictly.
func readPolicyCases(path string) ([]policyCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var cases []policyCase
	if err := dec.Decode(&cases); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	for i, c := range cases {
		if c.Expect != "" && c.Expect != "allow" && c.Expect != "deny" {
			return nil, fmt.Errorf("%s: case %d: expect %q: want allow or deny", path, i+1, c.Expect)
		}
		if c.Request.Path == "" {
			return nil, fmt.Errorf("%s: case %d: request.path is required", path, i+1)
		}
	}
	return cases, nil
}

// policySource reads the configuration file itself and nothing else:
// environment variables and secret files become placeholders.
func policySource(configPath string) source {
	return source{
		lookupEnv: func(name string) (string, bool) {
			if v, ok := os.LookupEnv(name); ok && v != "" {
				return v, true
			}
			return "policy-test-placeholder", true
		},
		readFile: func(p string) ([]byte, error) {
			if p == configPath {
				return os.ReadFile(p)
			}
			return []byte("policy-test-placeholder"), nil
		},
	}
}
