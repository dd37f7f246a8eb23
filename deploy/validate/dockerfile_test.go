package validate

// dockerfile_test.go reads deploy/Dockerfile, checks its two stages, and
// runs its `go build` command here with the same environment and flags. No
// container engine is needed, and the binary it builds is the one every
// configuration check below runs.

import (
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// What the image runs: the manifests' args must agree.
const (
	imageEntrypoint = "/portcullis"
	imageConfigPath = "/etc/portcullis/config.yaml"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case
	args string
}

// stage is one FROM and what follows it.
type stage struct {
	from, name string
	body       []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// parseDockerfile splits a Dockerfile into stages. It understands what
// deploy/Dockerfile uses: comments, parser directives, backslash
// continuations (with comment lines inside them).
func parseDockerfile(text string) ([]stage, error) {
	var stages []stage
	var cur *instruction
	finish := func() error {
		if cur == nil {
			return nil
		}
		in := *cur
		cur = nil
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			for len(f) > 1 && strings.HasPrefix(f[0], "--platform=") {
				f = f[1:]
			}
			s := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			} else if len(f) != 1 {
				return fmt.Errorf("line %d: FROM %s: want IMAGE [AS NAME]", in.line, in.args)
			}
			stages = append(stages, s)
			return nil
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				return nil
			}
			return fmt.Errorf("line %d: %s before the first FROM", in.line, in.cmd)
		}
		last := &stages[len(stages)-1]
		last.body = append(last.body, in)
		return nil
	}
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") || (line == "" && cur == nil) {
			continue
		}
		cont := strings.HasSuffix(line, "\\")
		line = strings.TrimSpace(strings.TrimSuffix(line, "\\"))
		if cur == nil {
			cmd, args, _ := strings.Cut(line, " ")
			cur = &instruction{line: i + 1, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		} else if line != "" {
			cur.args += " " + line
		}
		if !cont {
			if err := finish(); err != nil {
				return nil, err
			}
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: %s ends with a continuation", cur.line, cur.cmd)
	}
	return stages, finish()
}

// buildArgs are the values BuildKit gives the automatic platform arguments
// when it builds for this machine.
var buildArgs = map[string]string{
	"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH,
	"BUILDOS": runtime.GOOS, "BUILDARCH": runtime.GOARCH,
}

// expandArgs replaces $NAME and ${NAME} of the known build arguments.
func expandArgs(s string) (string, error) {
	var unknown []string
	out := os.Expand(s, func(name string) string {
		v, ok := buildArgs[name]
		if !ok {
			unknown = append(unknown, name)
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("%q: unknown build arguments %v", s, unknown)
	}
	return out, nil
}

// shellWords splits a command line the way sh would for the simple words
// the Dockerfile uses: blanks separate, quotes group, no expansions (run
// expandArgs first).
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case r == '$' || r == '`' || r == '\\' || r == ';' || r == '|':
			return nil, fmt.Errorf("%q: shell syntax %q is not understood here", s, r)
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q: unterminated quote", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// goBuild is the Dockerfile's build command.
type goBuild struct {
	env    []string // NAME=VALUE before the command
	args   []string // after "go build"
	output string   // the -o argument
}

// findGoBuild returns the RUN instruction of st that runs `go build`.
func findGoBuild(st stage) (goBuild, error) {
	for _, in := range st.all("RUN") {
		expanded, err := expandArgs(in.args)
		if err != nil {
			return goBuild{}, fmt.Errorf("line %d: %w", in.line, err)
		}
		words, err := shellWords(expanded)
		if err != nil {
			return goBuild{}, fmt.Errorf("line %d: %w", in.line, err)
		}
		for len(words) > 0 && strings.HasPrefix(words[0], "--mount=") {
			words = words[1:]
		}
		var b goBuild
		for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
			b.env = append(b.env, words[0])
			words = words[1:]
		}
		if len(words) < 2 || words[0] != "go" || words[1] != "build" {
			continue
		}
		b.args = words[2:]
		if i := slices.Index(b.args, "-o"); i >= 0 && i+1 < len(b.args) {
			b.output = b.args[i+1]
		}
		return b, nil
	}
	return goBuild{}, fmt.Errorf("stage %s: no RUN with go build", st.name)
}

func readDockerfile(t *testing.T) []stage {
	t.Helper()
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	stages, err := parseDockerfile(string(data))
	if err != nil {
		t.Fatalf("%s: %v", dockerfile, err)
	}
	return stages
}

// builtBinary builds Portcullis once per test run, exactly as the
// Dockerfile's build stage does, into a temporary directory.
var builtBinary = sync.OnceValues(func() (string, error) {
	if err := touchGatewaySources(); err != nil {
		return "", err
	}
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		return "", err
	}
	stages, err := parseDockerfile(string(data))
	if err != nil {
		return "", err
	}
	if len(stages) == 0 {
		return "", fmt.Errorf("%s has no stages", dockerfile)
	}
	b, err := findGoBuild(stages[0])
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "portcullis-validate-")
	if err != nil {
		return "", err
	}
	tempDirs = append(tempDirs, dir)
	out := filepath.Join(dir, "portcullis")
	args := slices.Clone(b.args)
	i := slices.Index(args, "-o")
	if i < 0 || i+1 >= len(args) {
		return "", fmt.Errorf("%s: go build has no -o", dockerfile)
	}
	args[i+1] = out
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir = repoRoot // the Dockerfile's build context and WORKDIR
	cmd.Env = append(os.Environ(), b.env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s in %s: %v\n%s", strings.Join(cmd.Args, " "), repoRoot, err, msg)
	}
	return out, nil
})

// tempDirs are removed by TestMain.
var tempDirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// binary returns the built gateway or fails the test.
func binary(t *testing.T) string {
	t.Helper()
	bin, err := builtBinary()
	if err != nil {
		t.Fatalf("building portcullis as deploy/Dockerfile does: %v", err)
	}
	return bin
}

func TestDockerfileStages(t *testing.T) {
	stages := readDockerfile(t)
	if len(stages) != 2 {
		t.Fatalf("%d stages, want 2 (build, runtime)", len(stages))
	}
	build, final := stages[0], stages[1]

	if !strings.HasPrefix(build.from, "golang:1.26") || build.name != "build" {
		t.Errorf("first stage FROM %s AS %s, want golang:1.26… AS build", build.from, build.name)
	}
	b, err := findGoBuild(build)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "GOOS=" + runtime.GOOS, "GOARCH=" + runtime.GOARCH} {
		if !slices.Contains(b.env, want) {
			t.Errorf("go build runs with %v, want %s (no libc in the runtime image; the target platform from TARGETOS/TARGETARCH)", b.env, want)
		}
	}
	for _, want := range [][]string{{"-trimpath"}, {"-ldflags", "-s -w"}, {"-o", "/out/portcullis"}} {
		if i := slices.Index(b.args, want[0]); i < 0 || (len(want) == 2 && (i+1 >= len(b.args) || b.args[i+1] != want[1])) {
			t.Errorf("go build %v: missing %v", b.args, want)
		}
	}
	if last := b.args[len(b.args)-1]; last != "." {
		t.Errorf("go build builds %q, want . (the repository root)", last)
	}

	if final.from != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage FROM %s, want gcr.io/distroless/static-debian12:nonroot", final.from)
	}
	if runs := final.all("RUN"); len(runs) > 0 {
		t.Errorf("final stage has RUN at line %d: the distroless base has no shell", runs[0].line)
	}
	single := func(cmd string) string {
		ins := final.all(cmd)
		if len(ins) != 1 {
			t.Errorf("final stage has %d %s, want 1", len(ins), cmd)
			return ""
		}
		return ins[0].args
	}
	if got := single("COPY"); got != "--from=build "+b.output+" "+imageEntrypoint {
		t.Errorf("COPY %s, want --from=build %s %s", got, b.output, imageEntrypoint)
	}
	if got := single("USER"); got != "65532:65532" && got != "65532" {
		t.Errorf("USER %s, want 65532:65532 (numeric, so runAsNonRoot can check it)", got)
	}
	if got := single("EXPOSE"); got != "4180" {
		t.Errorf("EXPOSE %s, want 4180", got)
	}
	for cmd, want := range map[string][]string{"ENTRYPOINT": {imageEntrypoint}, "CMD": {"-config", imageConfigPath}} {
		var got []string
		if err := json.Unmarshal([]byte(single(cmd)), &got); err != nil {
			t.Errorf("%s is not in exec (JSON) form: %v", cmd, err)
		} else if !slices.Equal(got, want) {
			t.Errorf("%s %q, want %q", cmd, got, want)
		}
	}
	labels := strings.Join(argsOf(final.all("LABEL")), " ")
	for _, l := range []string{"org.opencontainers.image.title=", "org.opencontainers.image.source=", "org.opencontainers.image.version=", "org.opencontainers.image.revision="} {
		if !strings.Contains(labels, l) {
			t.Errorf("final stage LABELs lack %s…", l)
		}
	}
}

func argsOf(ins []instruction) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.args
	}
	return out
}

// TestDockerfileBuild runs the build stage's go build here and checks that
// the result can run on a base image without libc.
func TestDockerfileBuild(t *testing.T) {
	bin := binary(t)

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (%v); the distroless static base cannot run it", p.Type)
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table; -ldflags -s should strip it")
	}
	if f.Section(".debug_info") != nil || f.Section(".zdebug_info") != nil {
		t.Error("the binary has DWARF; -ldflags -w should leave it out")
	}

	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	// (-trimpath keeps -ldflags out of the build information.)
	for k, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[k] != want {
			t.Errorf("build setting %s = %q, want %q", k, settings[k], want)
		}
	}
	if bi.Path != "github.com/portcullis/portcullis" {
		t.Errorf("built %s, want the gateway (github.com/portcullis/portcullis)", bi.Path)
	}

	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "portcullis ") {
		t.Errorf("portcullis version: %v: %s", err, out)
	}
}

// TestDockerignore: deploy/Dockerfile.dockerignore keeps the repository's
// clutter out of the build context but nothing `go build .` needs.
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile(dockerfile + ".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for line := range strings.SplitSeq(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") || strings.Contains(line, "**") {
			t.Fatalf("%q: keep the patterns simple (this test matches them with path.Match)", line)
		}
		patterns = append(patterns, strings.Trim(line, "/"))
	}
	for _, must := range []string{".git", "portcullis"} {
		if !slices.Contains(patterns, must) {
			t.Errorf("the build context keeps %s", must)
		}
	}
	// What the build reads: go.mod, go.sum and every package directory
	// `go build .` compiles.
	root, err := filepath.EvalSymlinks(repoRoot)
	if err == nil {
		root, err = filepath.Abs(root)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", ".")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	for dir := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if rel, err := filepath.Rel(root, dir); err == nil && !strings.HasPrefix(rel, "..") {
			needed = append(needed, path.Join(filepath.ToSlash(rel), "x.go"))
		}
	}
	if len(needed) < 4 {
		t.Fatalf("found only %v of the gateway's packages", needed)
	}
	for _, n := range needed {
		for _, p := range patterns {
			// A pattern excludes a path when it matches it or one of its parents.
			for q := n; q != "." && q != "/"; q = path.Dir(q) {
				if ok, _ := path.Match(p, q); ok {
					t.Errorf("pattern %q excludes %s, which the build needs", p, n)
				}
			}
		}
	}
}
