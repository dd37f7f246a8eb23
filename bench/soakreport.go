package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// soakreport.go prints what the soak saw: a table over time per mode, the
// totals by kind of request, a summary of start, end and maximum, and the
// verdict.

// soakResult is one soak: its options and each mode's series.
type soakResult struct {
	opts  soakOptions
	modes []soakMode
}

// soakMode is one gateway's series.
type soakMode struct {
	load     *soakLoad
	samples  []soakSample
	others   []float64 // cores the machine's other work used in each interval; -1 unknown
	last     gatewayState
	quiesced *soakSample // once the traffic stopped
	log      gatewayLog
}

// print writes the report and says whether the soak passed.
func (r *soakResult) print(w io.Writer) bool {
	p := printer(func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) })
	o := r.opts
	p("")
	p("Portcullis soak: %v of mixed traffic against cookie and Redis mode at once, a sample every %v (loopback)", o.duration, o.interval)
	p("  per gateway: %d signed-in sessions making %d proxied GETs/s; %.3g sign-ins/s through the demo provider's login page,", o.workers, o.rate, o.signIns)
	p("  every other one signed out (and its old cookie replayed); %d long websocket streams (a message a second) and", o.streams)
	p("  a short stream a second (5 messages); tokens live %v, session.refresh_before %v", soakTokenTTL, soakRefreshBefore)
	var judged []soakJudgement
	for i := range r.modes {
		judged = append(judged, r.modes[i].printSeries(p))
	}
	p("")
	p("Summary (start: the first sample after the %v warm-up; max: from the start on)", time.Duration(soakWarmup)*o.interval)
	p("  %-7s %-12s %10s %10s %10s %12s", "mode", "", "start", "end", "max", "quiesced")
	passed := true
	for i, j := range judged {
		m := &r.modes[i]
		q := soakSample{}
		if m.quiesced != nil {
			q = *m.quiesced
		}
		label := m.load.gw.label
		p("  %-7s %-12s %10.1f %10.1f %10.1f %12.1f", label, "RSS MB", mb(j.start.rssKB), mb(j.end.rssKB), mb(j.max.rssKB), mb(q.rssKB))
		p("  %-7s %-12s %10d %10d %10d %12d", "", "goroutines", j.start.goroutines, j.end.goroutines, j.max.goroutines, q.goroutines)
		p("  %-7s %-12s %10d %10d %10d %12d", "", "open FDs", j.start.fds, j.end.fds, j.max.fds, q.fds)
		p("  %-7s %-12s %10.2f %10.2f %10.2f %12s", "", "p99 ms", ms(j.start.p99), ms(j.end.p99), ms(j.max.p99), "-")
		p("  %-7s %-12s %10d %10d %10s %12d", "", "ws streams", j.start.streams, j.end.streams, "", q.streams)
	}
	p("")
	for i, j := range judged {
		label := r.modes[i].load.gw.label
		if len(j.problems) == 0 {
			p("%s mode: PASS", label)
			continue
		}
		passed = false
		for _, pr := range j.problems {
			p("%s mode: FAIL: %s", label, pr)
		}
	}
	return passed
}

// printSeries writes the mode's table and totals, and judges it.
func (m *soakMode) printSeries(p printer) soakJudgement {
	l := m.load
	p("")
	p("%s mode", l.gw.label)
	p("  %6s %7s %7s %10s %5s %7s %8s %7s %7s %8s %9s %9s %7s %6s %6s", "time", "RSS MB", "heap MB", "goroutines", "FDs", "streams",
		"proxied", "p50 ms", "p99 ms", "sign-ins", "sign-outs", "refreshes", "ws msgs", "failed", "others")
	for i, s := range m.samples {
		others := "-"
		if i < len(m.others) && m.others[i] >= 0 {
			others = fmt.Sprintf("%.2f", m.others[i])
		}
		p("  %6s %7.1f %7.1f %10d %5d %7d %8d %7.2f %7.2f %8d %9d %9d %7d %6d %6s", clock(s.at), mb(s.rssKB), mb(s.heapKB), s.goroutines, s.fds, s.streams,
			s.proxied, ms(s.p50), ms(s.p99), s.signIns, s.signOuts, s.refreshes, s.wsMessages, s.failures, others)
	}
	if q := m.quiesced; q != nil {
		p("  %6s %7.1f %7.1f %10d %5d %7d   (5 s after the traffic stopped and the clients closed their connections)", "after", mb(q.rssKB), mb(q.heapKB), q.goroutines, q.fds, q.streams)
	}
	p("  heap: go_memstats_heap_inuse_bytes. others: cores the machine's other work kept busy in the interval")
	p("  (not the harness, its servers or the gateways). Heap profiles and goroutine dumps of the start and the end:")
	p("  portcullis-%s-{start,end}.{heap,goroutines} in the temp dir (-keep, or kept on failure)", l.gw.name)
	t := l.total
	gwSignIns, _ := metricSum(m.last.metrics, "portcullis_sign_ins_total", `result="success"`)
	gwSignOuts, _ := metricSum(m.last.metrics, "portcullis_sessions_ended_total", `how="sign_out"`)
	refreshed, _ := metricSum(m.last.metrics, "portcullis_session_refreshes_total", `result="success"`)
	allRefreshes, _ := metricSum(m.last.metrics, "portcullis_session_refreshes_total")
	p("  totals: %d proxied GETs, %d sign-ins (the gateway counted %.0f), %.0f refreshes (%.0f others: rejected, unavailable, bad_response, busy),",
		t.proxied, t.signIns, gwSignIns, refreshed, allRefreshes-refreshed)
	p("          %d sign-outs (the gateway counted %.0f), %d websocket streams with %d messages; %d failed requests",
		t.signOuts, gwSignOuts, t.wsStreams, t.wsMessages, t.failures)
	m.printFailures(p)
	var refreshSum int64
	for _, s := range m.samples {
		refreshSum += s.refreshes
	}
	j := judgeSoak(m.samples, t.failures, m.quiesced)
	for _, kind := range []struct {
		n    int64
		what string
	}{{t.signIns, "sign-ins"}, {t.signOuts, "sign-outs"}, {refreshSum, "refreshes"}, {t.wsMessages, "websocket messages"}} {
		if kind.n == 0 {
			j.problems = append(j.problems, "no "+kind.what+": the soak did not exercise them")
		}
	}
	return j
}

// printFailures lists what went wrong, most frequent first, and the
// gateway's log.
func (m *soakMode) printFailures(p printer) {
	l := m.load
	l.mu.Lock()
	msgs := make([]string, 0, len(l.failed))
	for msg := range l.failed {
		msgs = append(msgs, msg)
	}
	slices.SortFunc(msgs, func(a, b string) int { return l.failed[b] - l.failed[a] })
	for i, msg := range msgs {
		if i == 10 {
			p("    … and %d other kinds", len(msgs)-10)
			break
		}
		p("    %6d × %s", l.failed[msg], msg)
	}
	l.mu.Unlock()
	var events []string
	for _, e := range slices.Sorted(maps.Keys(m.log.audit)) {
		events = append(events, fmt.Sprintf("%s %d", e, m.log.audit[e]))
	}
	p("  gateway log: audit events %s; %d other lines (warnings, errors; the start's plain-http warnings left out)",
		strings.Join(events, ", "), m.log.other)
	for _, line := range m.log.head {
		p("    %s", line)
	}
}

// gatewayLog is what a gateway's log says: its audit events by kind, and
// the other lines, which at log.level warn are warnings and errors.
type gatewayLog struct {
	audit map[string]int // event -> count
	other int
	head  []string // the first few other lines
}

// auditEvent matches the event of an audit line (JSON or text).
var auditEvent = regexp.MustCompile(`"msg":"audit","event":"([a-z_]+)"|msg=audit event=([a-z_]+)`)

// startWarnings are what every run's gateway warns at start: the soak runs
// plain http on loopback.
var startWarnings = []string{"session.cookie.secure is false", "server.public_url is plain http"}

// readGatewayLog sorts the lines of the log at path.
func readGatewayLog(path string) gatewayLog {
	g := gatewayLog{audit: map[string]int{}}
	b, err := os.ReadFile(path)
	if err != nil {
		g.other, g.head = 1, []string{fmt.Sprintf("(unreadable: %v)", err)}
		return g
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(line) == "" || slices.ContainsFunc(startWarnings, func(w string) bool { return strings.Contains(line, w) }) {
			continue
		}
		if m := auditEvent.FindStringSubmatch(line); m != nil {
			g.audit[m[1]+m[2]]++
			continue
		}
		g.other++
		if len(g.head) < 5 {
			if len(line) > 240 {
				line = line[:240] + "…"
			}
			g.head = append(g.head, line)
		}
	}
	return g
}

func mb(kb int) float64 { return float64(kb) / 1024 }

// clock is d as m:ss.
func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// cpuWindow measures what the machine's other work used between two
// calls of next: the machine's busy time less the harness's and its
// running children's.
type cpuWindow struct {
	procs *children
	at    time.Time
	busy  int64
	own   time.Duration
}

func (h *harness) newCPUWindow() *cpuWindow {
	w := &cpuWindow{procs: &h.procs}
	w.next()
	return w
}

// next is the cores other work kept busy since the last call; -1 when
// /proc/stat cannot be read.
func (w *cpuWindow) next() float64 {
	busy, err := busyTicks()
	now, own := time.Now(), ownCPU()+w.procs.cpu()
	if err != nil {
		return -1
	}
	other := -1.0
	if !w.at.IsZero() {
		machine := time.Duration(busy-w.busy) * time.Second / userHZ
		other = max(0, (machine-(own-w.own)).Seconds()/now.Sub(w.at).Seconds())
	}
	w.at, w.busy, w.own = now, busy, own
	return other
}
