package main

import (
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"runtime"
	"strings"
	"time"
	"unicode"

	"github.com/skip2/go-qrcode"
)

// What `portcullis login` shows the person signing in: the code, where to
// enter it, and on a terminal a QR code of the page that has the code in
// it (RFC 8628 §3.3.1).

// showOptions say what else to show besides the code.
type showOptions struct {
	qr      bool // draw the QR code (stderr is a terminal, no -no-qr)
	browser bool // open the page in the default browser (-browser)
}

// openBrowser opens u in the default browser; a test replaces it.
var openBrowser = func(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	return cmd.Start()
}

// showCode writes the sign-in instructions to w. Everything from the
// gateway is printed through printable: a hostile answer cannot move the
// cursor, rewrite earlier lines or retitle the terminal.
func showCode(w io.Writer, origin string, da *deviceAuth, show showOptions) {
	page := da.VerificationURI
	fmt.Fprintf(w, "\nTo sign in to %s, open this page in a browser:\n\n    %s\n\nand enter the code\n\n    %s\n\n",
		origin, printable(page), printable(da.UserCode))
	if da.VerificationURIComplete != "" {
		page = da.VerificationURIComplete
		fmt.Fprintf(w, "Or open %s , which fills the code in;\ncheck that the page shows the same code.\n\n", printable(page))
	}
	if u, err := url.Parse(page); err == nil && u.Scheme+"://"+u.Host != origin {
		fmt.Fprintf(w, "Note: the sign-in page is on %s, not on %s.\n\n", printable(u.Host), origin)
	}
	if show.qr {
		if err := writeQR(w, page); err == nil {
			fmt.Fprintln(w)
		}
	}
	if show.browser {
		if err := openBrowser(page); err != nil {
			fmt.Fprintf(w, "(Could not open a browser: %v)\n\n", err)
		}
	}
	fmt.Fprintf(w, "Waiting for the sign-in (the code expires in %s; Ctrl-C to cancel)...\n",
		inWords(time.Duration(da.ExpiresIn)*time.Second))
}

// inWords says d as a person would: "10 minutes", "1 minute", "90s".
func inWords(d time.Duration) string {
	switch {
	case d == time.Minute:
		return "1 minute"
	case d > time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

// printable drops every rune a terminal would act on rather than show:
// control characters (ESC, CR, BEL...), format characters such as the
// bidirectional overrides, and invalid UTF-8.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, s)
}

// writeQR draws content as a QR code with half blocks: each line of text
// holds two rows of modules. Colours are set explicitly (white on black,
// the light modules drawn), so the code reads the same on a dark or a
// light terminal; the 4-module quiet zone is kept.
func writeQR(w io.Writer, content string) error {
	q, err := qrcode.New(content, qrcode.Low)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, renderQR(q.Bitmap()))
	return err
}

// renderQR turns a module matrix (true: dark) into lines of half blocks.
func renderQR(m [][]bool) string {
	const on, off = "\x1b[97;40m", "\x1b[0m" // bright white on black; reset
	var b strings.Builder
	for y := 0; y < len(m); y += 2 {
		b.WriteString(on)
		for x := range m[y] {
			top := !m[y][x]
			bottom := y+1 < len(m) && !m[y+1][x] // below the last row: dark, like the background
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteString(off)
		b.WriteByte('\n')
	}
	return b.String()
}
