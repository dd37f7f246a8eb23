package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// load.go drives one target with wrk and reads back what happened.

// wrkScript counts every response that is not 200 (wrk itself counts a 302
// as a success) and prints one machine-readable line at the end. Like a
// browser, each wrk thread keeps the session cookie the gateway last set:
// the gateway re-issues it now and then (the idle-timeout mark, a refresh),
// and a client that kept sending the old one would make it re-issue on
// every request, a cost no real browser causes.
const wrkScript = `
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non200 = 0
  bad_status = 0
  reissued = 0
  req = wrk.format()
end

function request()
  return req
end

-- keep replaces the cookie named in a Set-Cookie value in the Cookie header.
local function keep(set_cookie)
  local pair = set_cookie:match("^%s*([^;]*)")
  local name = pair:match("^([^=]*)=")
  if not name then return end
  local out, found = {}, false
  for c in string.gmatch(wrk.headers["Cookie"] or "", "[^;]+") do
    c = c:match("^%s*(.-)%s*$")
    if c:match("^([^=]*)=") == name then
      c, found = pair, true
    end
    out[#out + 1] = c
  end
  if not found then out[#out + 1] = pair end
  wrk.headers["Cookie"] = table.concat(out, "; ")
  req = wrk.format()
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    bad_status = status
  end
  local sc = headers["Set-Cookie"]
  if sc then
    reissued = reissued + 1
    keep(sc)
  end
end

function done(summary, latency, requests)
  local bad, status, again = 0, 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non200")
    again = again + t:get("reissued")
    if t:get("bad_status") ~= 0 then status = t:get("bad_status") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests":%d,"duration_us":%d,"non200":%d,"bad_status":%d,"reissued":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, bad, status, again,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`

// result is what one wrk run measured.
type result struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	Non200     int64 `json:"non200"`
	BadStatus  int   `json:"bad_status"` // one of the statuses that was not 200
	Reissued   int64 `json:"reissued"`   // responses that set a cookie
	Connect    int64 `json:"connect"`
	Read       int64 `json:"read"`
	Write      int64 `json:"write"`
	Timeout    int64 `json:"timeout"`
	P50US      int64 `json:"p50_us"`
	// CPUUS is the CPU time the target's servers used per request (µs),
	// measured from /proc, not by wrk.
	CPUUS float64 `json:"-"`
	P99US int64   `json:"p99_us"`
	MaxUS int64   `json:"max_us"`
}

// RPS is requests per second over the run.
func (r result) RPS() float64 {
	if r.DurationUS == 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

// problem describes what went wrong in the run, or is "" for a clean run.
func (r result) problem() string {
	var p []string
	if r.Requests == 0 {
		p = append(p, "no responses")
	}
	if r.Non200 > 0 {
		p = append(p, fmt.Sprintf("%d responses were not 200 (e.g. %d)", r.Non200, r.BadStatus))
	}
	if n := r.Connect + r.Read + r.Write + r.Timeout; n > 0 {
		p = append(p, fmt.Sprintf("%d socket errors (connect %d, read %d, write %d, timeout %d)", n, r.Connect, r.Read, r.Write, r.Timeout))
	}
	return strings.Join(p, "; ")
}

// parseWrk finds the script's result line in wrk's output.
func parseWrk(out []byte) (result, error) {
	var r result
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "BENCH-RESULT "); ok {
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				return r, fmt.Errorf("reading wrk's result line %q: %w", rest, err)
			}
			return r, nil
		}
	}
	return r, errors.New("wrk printed no result line")
}

// loader runs wrk against targets.
type loader struct {
	procs   *children
	script  string // path of the Lua script
	threads int
}

func newLoader(procs *children, dir string, threads int) (*loader, error) {
	script := filepath.Join(dir, "count-non-200.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o644); err != nil {
		return nil, err
	}
	return &loader{procs: procs, script: script, threads: threads}, nil
}

// run loads t with conns connections for d. An error means wrk itself
// failed; a run with non-200 answers is returned with its problem.
func (l *loader) run(ctx context.Context, t *target, conns int, d time.Duration) (result, error) {
	threads := min(l.threads, conns)
	secs := max(1, int(math.Round(d.Seconds())))
	// --timeout 10s: a response slower than that counts as an error and
	// fails the run; slower than wrk's default of 2s is still measured,
	// since a machine shared with other work can stall everything that long.
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", strconv.Itoa(secs) + "s",
		"--timeout", "10s", "-s", l.script}
	if t.cookie != "" {
		args = append(args, "-H", "Cookie: "+t.cookie)
	}
	args = append(args, t.url)
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	out, err := l.procs.output(ctx, "wrk", exec.Command("wrk", args...))
	if err != nil {
		return result{}, fmt.Errorf("wrk against %s: %v\n%s", t.name, err, out)
	}
	r, err := parseWrk(out)
	if err != nil {
		return r, fmt.Errorf("wrk against %s: %v\n%s", t.name, err, out)
	}
	return r, nil
}
