package main

// migrate.go is `portcullis migrate`: it reads oauth2-proxy's
// configuration the way oauth2-proxy does (flags over OAUTH2_PROXY_*
// variables over the TOML file, plus the alpha YAML) and writes a
// Portcullis configuration with a comment on every line it wrote and a
// list of what has no equivalent. Secrets are never copied: the output
// names ${VARIABLES} or *_file paths instead.

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// migrateInput is what migrate reads; runMigrate fills it from the
// command line and the process, tests from fixtures.
type migrateInput struct {
	ConfigPath string   // oauth2-proxy.cfg (TOML); "" for none
	AlphaPath  string   // alpha YAML; "" for none
	Args       []string // oauth2-proxy flags
	Environ    []string // KEY=VALUE
	ReadFile   func(string) ([]byte, error)
}

// optValue is one option's effective value and where it came from.
type optValue struct {
	vals []string
	src  string // "--cookie-secret", "OAUTH2_PROXY_COOKIE_SECRET", "cookie_secret in FILE"
	env  string // the variable it came from, if any
}

func (v optValue) str() string { return strings.Join(v.vals, ",") }
func (v optValue) on() bool    { return v.str() == "true" }

// runMigrate is `portcullis migrate [flags] [-- oauth2-proxy flags]`.
func runMigrate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "oauth2-proxy's config file (TOML)")
	alpha := fs.String("alpha-config", "", "oauth2-proxy's alpha configuration (YAML)")
	outPath := fs.String("o", "", "write the Portcullis configuration here (mode 0600) instead of stdout")
	strict := fs.Bool("strict", false, "exit 2 when an option has no equivalent")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: portcullis migrate [-config oauth2-proxy.cfg] [-alpha-config alpha.yaml] [-o FILE] [-strict] [-- oauth2-proxy flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	in := migrateInput{ConfigPath: *cfgPath, AlphaPath: *alpha, Args: fs.Args(), Environ: os.Environ(), ReadFile: os.ReadFile}
	m, err := migrate(in)
	if err != nil {
		fmt.Fprintln(stderr, "portcullis migrate:", err)
		return 1
	}
	out := m.render()
	if *outPath != "" {
		err = os.WriteFile(*outPath, out, 0o600)
	} else {
		_, err = stdout.Write(out)
	}
	if err != nil {
		fmt.Fprintln(stderr, "portcullis migrate:", err)
		return 1
	}
	fmt.Fprint(stderr, m.reportText(""))
	if *strict && m.count(noteNoEquivalent) > 0 {
		return 2
	}
	return 0
}

// migrate reads the input and converts it.
func migrate(in migrateInput) (*migration, error) {
	flags, cfgFromFlags, err := parseOAuth2ProxyFlags(in.Args)
	if err != nil {
		return nil, err
	}
	if in.ConfigPath == "" {
		in.ConfigPath = cfgFromFlags
	}
	m := newMigration()
	if in.ConfigPath != "" {
		if err := m.readTOML(in); err != nil {
			return nil, err
		}
	}
	m.readEnv(in.Environ)
	for name, v := range flags {
		m.opts[name] = v
	}
	if in.AlphaPath != "" {
		data, err := in.ReadFile(in.AlphaPath)
		if err != nil {
			return nil, fmt.Errorf("reading the alpha configuration: %w", err)
		}
		if err := m.applyAlpha(in.AlphaPath, data); err != nil {
			return nil, err
		}
	}
	m.apply()
	return m, nil
}

// readTOML reads oauth2-proxy's config file: keys are the flags' names
// with _ for -, plural for repeatable flags.
func (m *migration) readTOML(in migrateInput) error {
	data, err := in.ReadFile(in.ConfigPath)
	if err != nil {
		return fmt.Errorf("reading the oauth2-proxy config file: %w", err)
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return fmt.Errorf("%s is not TOML: %w", in.ConfigPath, err)
	}
	for key, val := range raw {
		o := optionByName(key)
		if o == nil || o.toml != key {
			m.note(noteNoEquivalent, key, fmt.Sprintf("%s in %s is not an oauth2-proxy option this version knows; ignored", key, in.ConfigPath))
			continue
		}
		vals, err := tomlStrings(val)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", in.ConfigPath, key, err)
		}
		m.opts[key] = optValue{vals: vals, src: key + " in " + filepath.Base(in.ConfigPath)}
	}
	return nil
}

// tomlStrings turns a TOML value into the strings a flag would carry.
func tomlStrings(v any) ([]string, error) {
	switch t := v.(type) {
	case string:
		return []string{t}, nil
	case bool, int64, float64:
		return []string{fmt.Sprint(t)}, nil
	case []any:
		var out []string
		for _, e := range t {
			s, err := tomlStrings(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected value %T", v)
}

// readEnv reads OAUTH2_PROXY_<TOML KEY> variables; lists are
// comma-separated. The singular spelling of a list is accepted too.
func (m *migration) readEnv(environ []string) {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "OAUTH2_PROXY_") {
			env[k] = v
		}
	}
	for i := range optionTable {
		o := &optionTable[i]
		for _, name := range []string{o.env(), "OAUTH2_PROXY_" + strings.ToUpper(strings.ReplaceAll(o.flag, "-", "_"))} {
			if v, ok := env[name]; ok {
				vals := []string{v}
				if o.typ == tList {
					vals = splitList(v)
				}
				m.opts[o.toml] = optValue{vals: vals, src: name, env: name}
				delete(env, name)
				break
			}
		}
	}
	for name := range env {
		if name != "OAUTH2_PROXY_CONFIG" {
			m.note(noteNoEquivalent, name, name+" is not an oauth2-proxy option this version knows; ignored")
		}
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseOAuth2ProxyFlags reads --name=value, --name value and bare
// booleans the way oauth2-proxy's pflag does; repeated list flags add up,
// and commas separate list values. It returns --config separately.
func parseOAuth2ProxyFlags(args []string) (map[string]optValue, string, error) {
	out := map[string]optValue{}
	config := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return nil, "", fmt.Errorf("oauth2-proxy flag expected, got %q", a)
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		o := optionByName(name)
		if name == "config" {
			o = &option{flag: "config", typ: tString}
		} else if o == nil || o.flag != name {
			return nil, "", fmt.Errorf("--%s is not an oauth2-proxy flag this version knows", name)
		}
		if !hasVal && o.typ == tBool {
			val, hasVal = "true", true
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, "", fmt.Errorf("--%s needs a value", name)
			}
			i++
			val = args[i]
		}
		if name == "config" {
			config = val
			continue
		}
		v := out[o.toml]
		v.src = "--" + name
		if o.typ == tList {
			v.vals = append(v.vals, splitList(val)...)
		} else {
			v.vals = []string{val}
		}
		out[o.toml] = v
	}
	return out, config, nil
}
