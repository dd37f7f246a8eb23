package ui

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestContrast holds the stylesheet's colours to WCAG 2.2 in both colour
// schemes: text 4.5:1 (1.4.3), the focus ring and input borders 3:1
// (1.4.11), computed with WCAG's relative luminance.
func TestContrast(t *testing.T) {
	light, dark, ok := strings.Cut(Style, "@media (prefers-color-scheme:dark)")
	if !ok {
		t.Fatal("no dark scheme in the stylesheet")
	}
	pairs := []struct {
		fg, bg string
		min    float64
	}{
		{"fg", "bg", 4.5}, {"fg", "card", 4.5}, {"muted", "card", 4.5}, {"muted", "bg", 4.5},
		{"accent", "card", 4.5}, {"on-accent", "accent", 4.5}, {"err-fg", "err-bg", 4.5},
		{"ring", "card", 3}, {"ring", "bg", 3}, {"line", "card", 3},
	}
	for name, block := range map[string]string{"light": light, "dark": dark} {
		vars := colours(t, block)
		for _, p := range pairs {
			fg, bg := vars[p.fg], vars[p.bg]
			if fg == "" || bg == "" {
				t.Fatalf("%s: --%s or --%s not set", name, p.fg, p.bg)
			}
			if r := contrast(fg, bg); r < p.min {
				t.Errorf("%s: --%s %s on --%s %s is %.2f:1, want at least %.1f:1", name, p.fg, fg, p.bg, bg, r, p.min)
			}
		}
	}
}

func colours(t *testing.T, css string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range regexp.MustCompile(`--([a-z-]+):(#[0-9a-f]{3,6})\b`).FindAllStringSubmatch(css, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// contrast is WCAG 2.2's contrast ratio of two #rgb or #rrggbb colours.
func contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	return (math.Max(la, lb) + 0.05) / (math.Min(la, lb) + 0.05)
}

func luminance(hex string) float64 {
	hex = strings.TrimPrefix(hex, "#")
	if len(hex) == 3 {
		hex = string([]byte{hex[0], hex[0], hex[1], hex[1], hex[2], hex[2]})
	}
	var l float64
	for i, w := range []float64{0.2126, 0.7152, 0.0722} {
		v, _ := strconv.ParseUint(hex[2*i:2*i+2], 16, 8)
		c := float64(v) / 255
		if c <= 0.04045 {
			c /= 12.92
		} else {
			c = math.Pow((c+0.055)/1.055, 2.4)
		}
		l += w * c
	}
	return l
}
