package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// profile.go takes CPU profiles of Portcullis and of its floor under the
// same load and sets them side by side, in microseconds of CPU per request
// for a few landmark frames, so the report can say where Portcullis'
// extra time goes. The profiled gateway is a separate process in cookie
// mode with metrics.pprof on (the measured gateways keep the default
// configuration, without a metrics listener); the floors serve the
// profiler on a side listener (roles.go -pprof).

// profileSeconds is how long each profile samples.
const profileSeconds = 5

// profileSide is one process to profile while wrk drives a target.
type profileSide struct {
	t     *target
	pprof string // the profiler's host:port
	bin   string // the binary, for symbols
}

// profilePair is a gateway and its floor, profiled one after the other.
type profilePair struct {
	title     string
	floor, gw profileSide
}

// profiled is what one pair's profiles say.
type profiled struct {
	title           string
	floorRPS, gwRPS float64
	rows            []profRow  // landmarks, µs of CPU per request
	flat            []profLine // the gateway's top functions by own CPU
	ours            []profLine // Portcullis' own functions, callees included
}

type profRow struct {
	label     string
	floor, gw float64 // µs per request; -1: not in that profile
}

// profLine is one row of `go tool pprof -top`.
type profLine struct {
	flat, cum       float64 // seconds
	flatPct, cumPct string
	fn              string
}

// landmarks split a request's CPU into parts a reader can act on.
var landmarks = []struct{ fn, label string }{
	{"", "the whole process"},
	{"net/http.(*conn).serve", "HTTP server: one connection's requests"},
	{"net/http.(*conn).readRequest", "  reading and parsing requests"},
	{"proxy.(*Handler).ServeHTTP", "  Portcullis' handler"},
	{"proxy.(*Handler).authorize", "    session and policy (the decision)"},
	{"proxy.(*Metrics).request", "    metrics (profiled gateway only)"},
	{"net/http/httputil.(*ReverseProxy).ServeHTTP", "    ReverseProxy"},
	{"proxy.(*Handler).newUpstream.func1", "      Portcullis' Rewrite (identity headers)"},
	{"net/http.(*response).finishRequest", "  finishing and flushing responses"},
	{"net/http.(*persistConn).readLoop", "upstream connections, reading"},
	{"net/http.(*persistConn).writeLoop", "upstream connections, writing"},
	{"runtime.gcBgMarkWorker", "garbage collection (background)"},
	{"runtime.mallocgc", "allocation (everywhere)"},
	{"internal/runtime/syscall/linux.Syscall6", "system calls (everywhere)"},
}

// profiles runs every pair in l.profiles.
func (h *harness) profiles(ctx context.Context, l *lineup) error {
	for _, pair := range l.profiles {
		h.logf("profiling %s …", pair.title)
		p, err := h.profilePair(ctx, pair)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			h.rep.fail("profiling %s: %v", pair.title, err)
			continue
		}
		h.rep.profiles = append(h.rep.profiles, p)
	}
	return nil
}

func (h *harness) profilePair(ctx context.Context, pair profilePair) (profiled, error) {
	p := profiled{title: pair.title}
	floor, floorTotal, floorRPS, err := h.profileOne(ctx, pair.floor)
	if err != nil {
		return p, err
	}
	gw, gwTotal, gwRPS, err := h.profileOne(ctx, pair.gw)
	if err != nil {
		return p, err
	}
	p.floorRPS, p.gwRPS = floorRPS, gwRPS
	perRequest := func(lines []profLine, total, rps float64, fn string) float64 {
		reqs := rps * profileSeconds
		if reqs == 0 {
			return -1
		}
		if fn == "" {
			return total / reqs * 1e6
		}
		for _, l := range lines {
			if strings.TrimPrefix(l.fn, "github.com/portcullis/portcullis/") == fn {
				return l.cum / reqs * 1e6
			}
		}
		return -1
	}
	for _, m := range landmarks {
		row := profRow{label: m.label, floor: perRequest(floor, floorTotal, floorRPS, m.fn), gw: perRequest(gw, gwTotal, gwRPS, m.fn)}
		if row.floor >= 0 || row.gw >= 0 {
			p.rows = append(p.rows, row)
		}
	}
	p.flat = topBy(gw, func(l profLine) float64 { return l.flat }, "", 10)
	p.ours = topBy(gw, func(l profLine) float64 { return l.cum }, "github.com/portcullis/", 10)
	return p, nil
}

// profileOne drives side.t with wrk, profiles side's process meanwhile,
// and returns every function's row, the total CPU seconds sampled and
// wrk's requests per second.
func (h *harness) profileOne(ctx context.Context, side profileSide) ([]profLine, float64, float64, error) {
	type loaded struct {
		r   result
		err error
	}
	load := make(chan loaded, 1)
	go func() {
		r, err := h.measureOne(ctx, "profile", side.t, h.opts.connections, (profileSeconds+2)*time.Second)
		load <- loaded{r, err}
	}()
	// Let wrk connect and the process warm up before sampling.
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		<-load
		return nil, 0, 0, ctx.Err()
	}
	file := filepath.Join(h.dir, "cpu-"+regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(side.t.name, "-")+".pprof")
	err := fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", side.pprof, profileSeconds), file)
	l := <-load
	if err == nil {
		err = l.err
	}
	if err != nil {
		return nil, 0, 0, err
	}
	out, err := h.procs.output(ctx, "go tool pprof", exec.Command("go", "tool", "pprof", "-top", "-nodecount=100000", side.bin, file))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("go tool pprof: %v\n%s", err, out)
	}
	lines, total, err := parsePProfTop(out)
	return lines, total, l.r.RPS(), err
}

// fetch saves url's body to file.
func fetch(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, b)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var totalSamples = regexp.MustCompile(`Total samples = (\S+)`)

// parsePProfTop reads `go tool pprof -top` ("flat flat% sum% cum cum%
// name" rows) and the total CPU time sampled.
func parsePProfTop(out []byte) ([]profLine, float64, error) {
	m := totalSamples.FindSubmatch(out)
	if m == nil {
		return nil, 0, fmt.Errorf("no total in pprof's output:\n%s", out)
	}
	total, err := pprofSeconds(string(m[1]))
	if err != nil {
		return nil, 0, err
	}
	var lines []profLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	header := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if !header {
			header = len(f) >= 5 && f[0] == "flat" && f[1] == "flat%"
			continue
		}
		if len(f) < 6 || !strings.HasSuffix(f[1], "%") || !strings.HasSuffix(f[4], "%") {
			continue
		}
		flat, err1 := pprofSeconds(f[0])
		cum, err2 := pprofSeconds(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		lines = append(lines, profLine{flat: flat, cum: cum, flatPct: f[1], cumPct: f[4], fn: strings.Join(f[5:], " ")})
	}
	return lines, total, nil
}

// pprofSeconds reads pprof's durations: "0", "930ms", "1.20s", "1.5mins".
func pprofSeconds(s string) (float64, error) {
	if s == "0" {
		return 0, nil
	}
	for _, u := range []struct {
		suffix string
		scale  float64
	}{{"mins", 60}, {"hrs", 3600}, {"ns", 1e-9}, {"us", 1e-6}, {"µs", 1e-6}, {"ms", 1e-3}, {"s", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("pprof duration %q: %w", s, err)
			}
			return f * u.scale, nil
		}
	}
	return 0, fmt.Errorf("pprof duration %q: unknown unit", s)
}

// topBy is the n largest lines by key whose function starts with prefix.
func topBy(lines []profLine, key func(profLine) float64, prefix string, n int) []profLine {
	var out []profLine
	for _, l := range lines {
		if strings.HasPrefix(l.fn, prefix) {
			out = append(out, l)
		}
	}
	sortByDesc(out, key)
	if len(out) > n {
		out = out[:n]
	}
	for i := range out {
		out[i].fn = strings.TrimPrefix(out[i].fn, "github.com/portcullis/portcullis/")
	}
	return out
}

func sortByDesc(lines []profLine, key func(profLine) float64) {
	for i := 1; i < len(lines); i++ {
		for j := i; j > 0 && key(lines[j]) > key(lines[j-1]); j-- {
			lines[j], lines[j-1] = lines[j-1], lines[j]
		}
	}
}

// printProfiles sets each gateway's profile beside its floor's.
func (r *report) printProfiles(p printer) {
	if len(r.profiles) == 0 {
		return
	}
	p("")
	p("Where the CPU goes (go tool pprof, %ds each under wrk -c%d; µs of CPU per request, callees included)", profileSeconds, r.opts.connections)
	p("  The profiled gateway is cookie mode with metrics.pprof on, so it also records metrics.")
	for _, pr := range r.profiles {
		p("  %s (floor %.0f req/s, Portcullis %.0f req/s while profiled)", pr.title, pr.floorRPS, pr.gwRPS)
		p("    %-48s %8s %10s %8s", "", "floor", "Portcullis", "extra")
		for _, row := range pr.rows {
			p("    %-48s %8s %10s %8s", row.label, us(row.floor), us(row.gw), usDiff(row.floor, row.gw))
		}
		p("    Portcullis' top functions by their own CPU (flat%%):")
		for _, l := range pr.flat {
			p("      %6s  %s", l.flatPct, l.fn)
		}
		p("    Portcullis' own code, callees included (cum%%):")
		for _, l := range pr.ours {
			p("      %6s  %s", l.cumPct, l.fn)
		}
	}
}

func us(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

func usDiff(floor, gw float64) string {
	if floor < 0 || gw < 0 {
		return ""
	}
	return fmt.Sprintf("%+.1f", gw-floor)
}
