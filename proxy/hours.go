package proxy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// hours.go reads a rule's `hours:` windows ("Mon-Fri 09:00-18:00"), which
// now.within() in expressions reads too. A window names the days it
// starts on (all when omitted) and a time range, start included, end
// excluded, in policy.time_zone. A range whose end is before its start
// runs overnight into the next day ("Mon-Fri 22:00-06:00" covers
// Tuesday 05:59 after a Monday); "24:00" ends a day.

// window is one parsed entry.
type window struct {
	days       [7]bool // by time.Weekday
	start, end int     // minutes after midnight; end may be 1440
	spec       string
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// parseWindows reads hours: entries.
func parseWindows(specs []string) ([]window, error) {
	out := make([]window, 0, len(specs))
	for _, spec := range specs {
		w, err := parseWindow(spec)
		if err != nil {
			return nil, fmt.Errorf("hours %q: %w (want e.g. \"Mon-Fri 09:00-18:00\", \"Sat,Sun 10:00-14:00\" or \"22:00-06:00\")", spec, err)
		}
		out = append(out, w)
	}
	return out, nil
}

func parseWindow(spec string) (window, error) {
	w := window{spec: spec}
	fields := strings.Fields(spec)
	var days, span string
	switch len(fields) {
	case 1:
		span = fields[0]
		for d := range w.days {
			w.days[d] = true
		}
	case 2:
		days, span = fields[0], fields[1]
		if err := w.parseDays(days); err != nil {
			return w, err
		}
	default:
		return w, fmt.Errorf("want days and a time range")
	}
	from, to, ok := strings.Cut(span, "-")
	if !ok {
		return w, fmt.Errorf("time range %q has no \"-\"", span)
	}
	var err error
	if w.start, err = clock(from, false); err != nil {
		return w, err
	}
	if w.end, err = clock(to, true); err != nil {
		return w, err
	}
	if w.start == w.end {
		return w, fmt.Errorf("the range is empty")
	}
	return w, nil
}

// parseDays reads "Mon-Fri", "Sat,Sun", "Mon,Wed-Fri" (case-insensitive;
// a range may wrap: "Fri-Mon").
func (w *window) parseDays(s string) error {
	for _, part := range strings.Split(s, ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, ok := dayNames[strings.ToLower(from)]
		if !ok {
			return fmt.Errorf("%q is not a day (Mon, Tue, …)", from)
		}
		b := a
		if isRange {
			if b, ok = dayNames[strings.ToLower(to)]; !ok {
				return fmt.Errorf("%q is not a day (Mon, Tue, …)", to)
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			w.days[d] = true
			if d == b {
				break
			}
		}
	}
	return nil
}

// clock reads "HH:MM" as minutes after midnight; "24:00" only as an end.
func clock(s string, end bool) (int, error) {
	hh, mm, ok := strings.Cut(s, ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || len(hh) != 2 || len(mm) != 2 || m < 0 || m > 59 || h < 0 || h > 24 || (h == 24 && (m != 0 || !end)) {
		return 0, fmt.Errorf("%q is not a time of day (HH:MM, 00:00 to 24:00)", s)
	}
	return h*60 + m, nil
}

// contains reports whether t (in the policy's zone) is in the window.
func (w *window) contains(t time.Time) bool {
	mins := t.Hour()*60 + t.Minute()
	wd := t.Weekday()
	if w.start < w.end {
		return w.days[wd] && mins >= w.start && mins < w.end
	}
	// Overnight: from start on a listed day, to end on the day after.
	return (w.days[wd] && mins >= w.start) || (w.days[(wd+6)%7] && mins < w.end)
}

func inWindows(ws []window, t time.Time) bool {
	for i := range ws {
		if ws[i].contains(t) {
			return true
		}
	}
	return false
}
