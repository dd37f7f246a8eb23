package main

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"
)

// fakeSource serves environment variables and files from maps.
func fakeSource(env map[string]string, files map[string]string) source {
	return source{
		lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		readFile: func(p string) ([]byte, error) {
			if v, ok := files[p]; ok {
				return []byte(v), nil
			}
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		},
	}
}

func TestParseConfig(t *testing.T) {
	src := fakeSource(
		map[string]string{"SECRET": "s3cr3t", "PORT": "4181", "DOMAIN": "example.com", "TRICKY": "a: b\n- c"},
		map[string]string{"/run/client": "from-file\n", "/run/k1": "key-one\n", "/run/k2": "key-two"},
	)
	cfg, err := parseConfig("t.yaml", []byte(`
server:
  listen: 127.0.0.1:${PORT}
  public_url: https://gw.${DOMAIN}
  max_header_bytes: ${PORT}
providers:
  - id: corp
    client_secret_file: /run/client
    client_id: "${SECRET}"
    name: ${TRICKY}
session:
  lifetime: 2h
  cookie:
    secrets_file: [/run/k1, /run/k2]
    secure: false
upstreams:
  - path: /
    url: http://127.0.0.1:8080
policy:
  email_domains: ["*", "${UNSET:-fallback.com}"]
  emails: [costs-$$5@example.com]
`), src)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"env in a string", cfg.Server.Listen, "127.0.0.1:4181"},
		{"env inside a value", cfg.Server.PublicURL, "https://gw.example.com"},
		{"env as an int", cfg.Server.MaxHeaderBytes, 4181},
		{"secret from file, newline trimmed", cfg.Providers[0].ClientSecret, "from-file"},
		{"env in quotes", cfg.Providers[0].ClientID, "s3cr3t"},
		{"env value is not parsed as YAML", cfg.Providers[0].Name, "a: b\n- c"},
		{"list of secret files", strings.Join(cfg.Session.Cookie.Secrets, ","), "key-one,key-two"},
		{"duration", cfg.Session.Lifetime, 2 * time.Hour},
		{"bool", *cfg.Session.Cookie.Secure, false},
		{"default for unset", cfg.Policy.EmailDomains[1], "fallback.com"},
		{"$$ is a dollar", cfg.Policy.Emails[0], "costs-$5@example.com"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	src := fakeSource(map[string]string{"EMPTY": ""}, map[string]string{"/run/s": "x"})
	for _, tt := range []struct {
		name string
		yaml string
		want []string // every substring must appear
	}{
		{"unknown top-level key", "sever:\n  listen: x\n", []string{`t.yaml:1: unknown key "sever" in the top level (did you mean "server"?)`}},
		{"unknown nested key", "server:\n  listen: x\n  lisen: y\n", []string{`t.yaml:3: unknown key "lisen" in server (did you mean "listen"?)`}},
		{"unknown key in a list item", "providers:\n  - id: a\n    client_secert: x\n", []string{`t.yaml:3: unknown key "client_secert" in providers[0]`}},
		{"unknown key deep", "session:\n  cookie:\n    nmae: x\n", []string{`t.yaml:3: unknown key "nmae" in session.cookie`}},
		{"unknown key without a near match", "server:\n  zzzzzzzz: 1\n", []string{`known keys: `}},
		{"unset env", "server:\n  public_url: ${NOPE}\n", []string{`t.yaml:2: server.public_url: environment variable NOPE is not set`}},
		{"empty env", "server:\n  public_url: ${EMPTY}\n", []string{`environment variable EMPTY is not set`}},
		{"missing secret file", "providers:\n  - client_secret_file: /run/missing\n", []string{`t.yaml:2: providers[0].client_secret_file: open /run/missing`}},
		{"secret and secret_file", "providers:\n  - client_secret: a\n    client_secret_file: /run/s\n", []string{`set client_secret or client_secret_file, not both`}},
		{"_file on a non-secret", "server:\n  listen_file: /run/s\n", []string{`unknown key "listen_file"`}},
		{"wrong type", "server:\n  max_header_bytes: lots\n", []string{`t.yaml:2: cannot unmarshal !!str ` + "`lots`" + ` into int`}},
		{"bad duration", "session:\n  lifetime: forever\n", []string{`t.yaml:2: cannot unmarshal`}},
		{"several problems at once", "sever: 1\nserver:\n  lisen: 2\n", []string{`t.yaml:1: unknown key "sever"`, `t.yaml:3: unknown key "lisen"`}},
		{"bad yaml", "server: [\n", []string{`t.yaml: `}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("t.yaml", []byte(tt.yaml), src)
			if err == nil {
				t.Fatal("parsed without error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseEmptyConfig(t *testing.T) {
	cfg, err := parseConfig("t.yaml", nil, fakeSource(nil, nil))
	if err != nil || cfg == nil {
		t.Errorf("empty file: %v, %v", cfg, err)
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := loadConfig("/nonexistent.yaml", fakeSource(nil, nil))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want not-exist", err)
	}
}

func TestSecretKeys(t *testing.T) {
	keys := secretKeys(typeOfConfig())
	for _, k := range []string{"client_secret", "secrets", "client_private_key"} {
		if !keys[k] {
			t.Errorf("%s is not a secret key; its _file variant would be refused", k)
		}
	}
	if keys["listen"] || keys["issuer_url"] {
		t.Error("non-secrets marked secret")
	}
}
