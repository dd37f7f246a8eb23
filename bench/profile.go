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
	"strings"
	"time"
)

// profile.go takes a CPU profile of Portcullis while wrk drives it, so the
// report can name where the remaining time goes. The profiled gateway is
// a separate process in cookie mode with metrics.pprof on: the measured
// gateways keep the default configuration (no metrics listener).

// profiled is one profile: what was driven, and the top of `go tool pprof -top`.
type profiled struct {
	name string
	flat []profLine // by own CPU
	cum  []profLine // Portcullis' own functions by CPU including callees
	// parts is the share of a few landmark frames, including callees.
	parts []profLine
}

// landmarks are the frames that split a request's CPU into parts a reader
// can act on; a frame absent from the profile is left out.
var landmarks = []struct{ fn, label string }{
	{"net/http.(*conn).serve", "HTTP server, all of it (reading, handler, writing)"},
	{"net/http.(*conn).readRequest", "  reading and parsing requests"},
	{"proxy.(*Handler).ServeHTTP", "  Portcullis' handler"},
	{"proxy.(*Handler).authorize", "    session and policy (the decision)"},
	{"net/http/httputil.(*ReverseProxy).ServeHTTP", "    ReverseProxy (the upstream round trip)"},
	{"net/http.(*response).finishRequest", "  finishing and flushing responses"},
	{"net/http.(*persistConn).readLoop", "upstream connections, reading"},
	{"net/http.(*persistConn).writeLoop", "upstream connections, writing"},
	{"runtime.gcBgMarkWorker", "garbage collection (background)"},
	{"runtime.mallocgc", "allocation (everywhere)"},
	{"internal/runtime/syscall/linux.Syscall6", "system calls (everywhere)"},
}

type profLine struct {
	flatPct, cumPct string
	fn              string
}

// profileSeconds is how long each profile samples.
const profileSeconds = 5

// profiles drives each target of l.profiled with wrk and profiles the
// gateway in it meanwhile.
func (h *harness) profiles(ctx context.Context, l *lineup) error {
	if l.profileGW == nil {
		return nil
	}
	for _, t := range l.profiled {
		h.logf("profiling Portcullis under %s …", t.name)
		p, err := h.profileOne(ctx, l.profileGW, l.bin, t)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			h.rep.fail("profiling %s: %v", t.name, err)
			continue
		}
		h.rep.profiles = append(h.rep.profiles, p)
	}
	return nil
}

func (h *harness) profileOne(ctx context.Context, g *gateway, bin string, t *target) (profiled, error) {
	load := make(chan error, 1)
	go func() {
		_, err := h.measureOne(ctx, "profile", t, h.opts.connections, (profileSeconds+2)*time.Second)
		load <- err
	}()
	// Let wrk connect and the gateway warm up before sampling.
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return profiled{}, ctx.Err()
	}
	file := filepath.Join(h.dir, "cpu-"+strings.NewReplacer(" ", "-", "+", "", ":", "").Replace(t.name)+".pprof")
	err := fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", g.metrics, profileSeconds), file)
	if lerr := <-load; err == nil {
		err = lerr
	}
	if err != nil {
		return profiled{}, err
	}
	p := profiled{name: t.name}
	out, err := h.procs.output(ctx, "go tool pprof", exec.Command("go", "tool", "pprof", "-top", "-nodecount=12", bin, file))
	if err != nil {
		return p, fmt.Errorf("go tool pprof: %v\n%s", err, out)
	}
	p.flat = parsePProfTop(out, "")
	out, err = h.procs.output(ctx, "go tool pprof", exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=400", bin, file))
	if err != nil {
		return p, fmt.Errorf("go tool pprof: %v\n%s", err, out)
	}
	p.cum = parsePProfTop(out, "github.com/portcullis/")
	if len(p.cum) > 12 {
		p.cum = p.cum[:12]
	}
	all := parsePProfTop(out, "")
	for _, m := range landmarks {
		for _, l := range all {
			if l.fn == m.fn {
				p.parts = append(p.parts, profLine{cumPct: l.cumPct, fn: m.label})
				break
			}
		}
	}
	return p, nil
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

// parsePProfTop reads the rows of `go tool pprof -top` ("flat flat% sum%
// cum cum% name"), keeping those whose function starts with prefix.
func parsePProfTop(out []byte, prefix string) []profLine {
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
		fn := strings.Join(f[5:], " ")
		if !strings.HasPrefix(fn, prefix) {
			continue
		}
		lines = append(lines, profLine{flatPct: f[1], cumPct: f[4], fn: strings.TrimPrefix(fn, "github.com/portcullis/portcullis/")})
	}
	return lines
}

// printProfiles lists the top of each profile.
func (r *report) printProfiles(p printer) {
	if len(r.profiles) == 0 {
		return
	}
	p("")
	p("Where Portcullis spends its CPU (go tool pprof, %ds under wrk -c%d, cookie mode with metrics.pprof on)", profileSeconds, r.opts.connections)
	for _, pr := range r.profiles {
		p("  %s: where the gateway's CPU goes (share of its samples, callees included)", pr.name)
		for _, l := range pr.parts {
			p("    %6s  %s", l.cumPct, l.fn)
		}
		p("  %s: top functions by own CPU (flat%%, cum%%)", pr.name)
		for _, l := range pr.flat {
			p("    %6s %6s  %s", l.flatPct, l.cumPct, l.fn)
		}
		p("  %s: Portcullis' own functions by CPU including what they call", pr.name)
		for _, l := range pr.cum {
			p("    %6s %6s  %s", l.flatPct, l.cumPct, l.fn)
		}
	}
}
