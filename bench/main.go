// Command bench is Portcullis' load harness. On loopback, each in its own
// process, it starts an upstream, an httputil.ReverseProxy to it (the
// reverse-proxy floor), Portcullis in cookie and in Redis mode, and nginx
// with the auth_request block from docs/forward-auth.md asking an
// always-yes handler (the forward-auth floor) or either Portcullis. It signs
// in through the real authorization-code flow against the demo provider,
// drives every target with wrk in alternating rounds, and prints one table
// of medians, each next to its ratio to the floor measured in the same run
// (DESIGN.md, "Performance method").
//
//	go run ./bench            # or: make bench; 3–4 minutes on 2 cores
//	go run ./bench -quick     # one short round, a smoke test
//	go run ./bench soak       # or: make soak; 10 minutes of mixed traffic, for leaks (soak.go)
//
// It needs wrk, nginx and redis-server on PATH (Debian: apt-get install -y
// wrk nginx-light redis-server) and exits 2 naming what is missing. It exits
// 1 when any run saw a response other than 200 or a socket error (a
// response slower than 10s counts as one).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis/portcullis/demo"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "role":
			os.Exit(runRole(os.Args[2:]))
		case "soak":
			os.Exit(runSoak(os.Args[2:]))
		}
	}
	os.Exit(run(os.Args[1:]))
}

// options are the command-line flags.
type options struct {
	rounds      int
	duration    time.Duration // one run in a round
	c1Run       time.Duration // one run at concurrency 1
	c1Rounds    int           // rounds at concurrency 1
	sweepRun    time.Duration // one run of the concurrency sweep
	connections int
	threads     int
	sessions    int // stored for the Redis scale test
	quick       bool
	profile     bool
	keep        bool
	skipFA      bool
	skipRedis   bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&o.rounds, "rounds", 4, "alternating rounds over all targets; the table shows medians across rounds")
	fs.DurationVar(&o.duration, "duration", 4*time.Second, "length of one wrk run in a round (whole seconds)")
	fs.IntVar(&o.connections, "connections", 64, "wrk connections (-c) in the rounds")
	fs.IntVar(&o.threads, "threads", 1, "wrk threads (-t); one is enough to saturate the floor on 2 cores and leaves the servers more CPU")
	fs.IntVar(&o.sessions, "sessions", 100_000, "sessions stored in Redis for the scale test")
	fs.BoolVar(&o.quick, "quick", false, "1 round × 3s, short side runs and 10,000 sessions: a smoke test, not a measurement")
	fs.BoolVar(&o.skipFA, "skip-forward-auth", false, "skip the nginx auth_request targets")
	fs.BoolVar(&o.skipRedis, "skip-redis", false, "skip Redis mode and the Redis measurements")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (configurations, logs, CPU profiles) and print its path")
	fs.BoolVar(&o.profile, "profile", true, "profile Portcullis (a separate cookie-mode gateway with metrics.pprof) under load and list where its CPU goes")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.c1Run, o.c1Rounds, o.sweepRun = time.Second, 3, 2*time.Second
	if o.quick {
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["duration"] {
			o.duration = 3 * time.Second
		}
		if !set["sessions"] {
			o.sessions = 10_000
		}
		o.c1Rounds, o.sweepRun = 1, time.Second
	}
	if o.rounds < 1 || o.duration < time.Second || o.connections < 1 || o.threads < 1 || o.sessions < 1 {
		return o, errors.New("-rounds, -connections, -threads and -sessions must be at least 1, -duration at least 1s")
	}
	return o, nil
}

// missingTools names the Debian packages of the programs not on PATH.
func missingTools(o options) []string {
	tools := [][2]string{{"wrk", "wrk"}}
	if !o.skipFA {
		tools = append(tools, [2]string{"nginx", "nginx-light"})
	}
	if !o.skipRedis {
		tools = append(tools, [2]string{"redis-server", "redis-server"})
	}
	var pkgs []string
	for _, t := range tools {
		if _, err := exec.LookPath(t[0]); err != nil {
			pkgs = append(pkgs, t[1])
		}
	}
	return pkgs
}

// harness is one benchmark run: its processes, its temp dir, its findings.
type harness struct {
	opts  options
	root  string // the repository
	dir   string // temp dir: binaries, configs, logs
	exe   string // this program, run again for the roles
	procs children
	idp   *demo.Server
	load  *loader
	rep   *report
	start time.Time
	// redisRequests counts the responses wrk got from the Redis-mode
	// gateway, for its cache hit ratio.
	redisRequests int64
}

func run(args []string) int {
	start := time.Now()
	opts, err := parseFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if pkgs := missingTools(opts); len(pkgs) > 0 {
		fmt.Fprintf(os.Stderr, "bench: missing %s; install with:\n  apt-get install -y %s\n(all three: apt-get install -y wrk nginx-light redis-server)\n",
			strings.Join(pkgs, ", "), strings.Join(pkgs, " "))
		return 2
	}
	h := &harness{opts: opts, rep: &report{opts: opts}, start: start}
	if code, err := h.prepare("portcullis-bench-"); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return code
	}
	ctx, stop := h.stopOnSignal()

	meter, meterErr := startCPUMeter()
	err = h.measure(ctx)
	h.procs.stopAll(3 * time.Second)
	if h.idp != nil {
		h.idp.Close()
	}
	if meterErr == nil {
		h.rep.otherCores, meterErr = meter.otherCores()
	}
	if meterErr != nil {
		h.rep.otherCores = -1
	}
	h.rep.wall = time.Since(start)
	interrupted := ctx.Err() != nil
	stop()

	h.rep.interrupted = interrupted
	if err != nil && !interrupted {
		h.rep.fail("%v", err)
	}
	h.rep.print(os.Stdout)
	switch {
	case interrupted:
		fmt.Fprintln(os.Stderr, "bench: interrupted; every child process was stopped")
		os.RemoveAll(h.dir)
		return 130
	case len(h.rep.failures) > 0:
		fmt.Fprintf(os.Stderr, "bench: logs and configurations kept in %s\n", h.dir)
		return 1
	case h.opts.keep:
		fmt.Fprintf(os.Stderr, "bench: configurations, logs and CPU profiles kept in %s\n", h.dir)
		return 0
	}
	os.RemoveAll(h.dir)
	return 0
}

// prepare finds the repository and this program and makes the temp dir;
// on error it also says which exit code fits: 2 when run outside the
// repository, 1 otherwise.
func (h *harness) prepare(tempPrefix string) (int, error) {
	var err error
	if h.root, err = repoRoot(); err != nil {
		return 2, err
	}
	if h.exe, err = os.Executable(); err != nil {
		return 1, err
	}
	if h.dir, err = os.MkdirTemp("", tempPrefix); err != nil {
		return 1, err
	}
	return 0, nil
}

// stopOnSignal is a context that ends at Ctrl-C, SIGTERM or SIGHUP, which
// also stops every child at once and so makes whatever step is running
// fail fast. A second signal kills the harness outright; the kernel then
// kills the children (proc_linux.go).
func (h *harness) stopOnSignal() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-ctx.Done()
		stop()
		h.procs.stopAll(time.Second)
	}()
	return ctx, stop
}

// logf reports progress on stderr, with the time since the start; the
// table goes to stdout.
func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: %5.1fs  "+format+"\n", append([]any{time.Since(h.start).Seconds()}, args...)...)
}

// repoRoot is the directory holding Portcullis' go.mod, at or above the
// working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(mod), "module github.com/portcullis/portcullis\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run me inside the Portcullis repository (go run ./bench)")
		}
		dir = parent
	}
}
