package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// What the browser tests drive: Debian's chromium, and axe-core from npm
// for the accessibility check. .ci/run installs both; keep axeVersion in
// step with it.
const (
	defaultChromium = "/usr/bin/chromium"
	axeVersion      = "4.14.1"
)

// Viewports: a desktop window, and a phone (390×844 CSS pixels, an
// iPhone 12–15). Screenshots are of the whole page at these widths.
var (
	desktop = viewport{"desktop", 1024, 700, false}
	phone   = viewport{"phone", 390, 844, true}
)

type viewport struct {
	name          string
	width, height int64
	mobile        bool
}

// requireChromium returns the Chromium to drive: $PORTCULLIS_CHROMIUM,
// else /usr/bin/chromium, else chromium on PATH.
func requireChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PORTCULLIS_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			missingTool(t, "PORTCULLIS_CHROMIUM="+p+": "+err.Error())
		}
		return p
	}
	if _, err := os.Stat(defaultChromium); err == nil {
		return defaultChromium
	}
	return requireTool(t, "chromium", "chromium")
}

// requireAxe returns axe-core's axe.min.js: $PORTCULLIS_AXE, else where
// .ci/run installs it.
func requireAxe(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PORTCULLIS_AXE")
	if p == "" {
		home, _ := os.UserHomeDir()
		p = filepath.Join(home, ".cache", "portcullis-ci", "axe", "node_modules", "axe-core", "axe.min.js")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		missingTool(t, fmt.Sprintf("axe-core not found (%v); install it: npm install --prefix \"$HOME/.cache/portcullis-ci/axe\" axe-core@%s, or set PORTCULLIS_AXE to its axe.min.js", err, axeVersion))
	}
	return string(b)
}

// screenshotDir is where screenshots go: $PORTCULLIS_SCREENSHOTS (make
// screenshots sets it to docs/screenshots), else a temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("PORTCULLIS_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// chrome is one headless Chromium shared by the browser tests. It records
// every request any of its tabs makes, and what was learnt about each
// gateway page checked.
type chrome struct {
	t     *testing.T
	ctx   context.Context // the browser; tabs are opened from it
	axe   string          // axe.min.js
	shots string

	mu      sync.Mutex
	offsite []string                     // requests to anything but loopback or data:
	docs    map[cdp.LoaderID]*docRequest // documents loaded, by loader
	pages   []pageStat                   // gateway pages checked, in order
}

// docRequest is a document the browser loaded and what it loaded with it.
type docRequest struct {
	url          string
	status       int64
	length       string // Content-Length
	subresources int
	offsite      int
}

// pageStat is one line of the page-size table.
type pageStat struct {
	name, url    string
	bytes        int
	subresources int
	offsite      int
}

func startChrome(t *testing.T) *chrome {
	t.Helper()
	exe := requireChromium(t)
	axe := requireAxe(t)
	// Not the package defaults (enable-automation and other things we do
	// not need): only what a quiet, root-run, headless browser needs, and
	// nothing that phones home.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(int(desktop.width), int(desktop.height)),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	c := &chrome{t: t, axe: axe, shots: screenshotDir(t), docs: map[cdp.LoaderID]*docRequest{}}
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithListener(c.listen))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first Do starts the browser and binds it to its context: a
	// timeout there would end the browser with it. The allocator bounds
	// the start itself (it waits for the DevTools pipe).
	if err := chromedp.Do(bctx); err != nil {
		if _, lookErr := exec.LookPath(exe); lookErr != nil {
			missingTool(t, "chromium at "+exe+" does not run: "+lookErr.Error())
		}
		t.Fatalf("starting %s: %v", exe, err)
	}
	c.ctx = bctx
	return c
}

// listen runs in a tab's event loop: it must be quick and call nothing.
func (c *chrome) listen(ev any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		d := c.docs[ev.LoaderID]
		if d == nil {
			d = &docRequest{}
			c.docs[ev.LoaderID] = d
		}
		if ev.Type != network.ResourceTypeDocument {
			d.subresources++
		}
		if !onLoopback(ev.Request.URL) {
			d.offsite++
			c.offsite = append(c.offsite, ev.Request.URL+" (from "+ev.DocumentURL+")")
		}
	case *network.EventResponseReceived:
		if ev.Type == network.ResourceTypeDocument {
			d := c.docs[ev.LoaderID]
			if d == nil {
				d = &docRequest{}
				c.docs[ev.LoaderID] = d
			}
			d.url, d.status = ev.Response.URL, ev.Response.Status
			for k, v := range ev.Response.Headers {
				if strings.EqualFold(k, "Content-Length") {
					d.length = fmt.Sprint(v)
				}
			}
		}
	}
}

// onLoopback reports whether a request stays on this machine.
func onLoopback(raw string) bool {
	if strings.HasPrefix(raw, "data:") || raw == "about:blank" {
		return true
	}
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}

// tab opens a new tab in the shared browser (and so with its cookies) at
// the viewport given. Every action run with the returned context fails
// after 45s rather than hang.
func (c *chrome) tab(t *testing.T, vp viewport) context.Context {
	t.Helper()
	tctx, closeTab := chromedp.NewContext(c.ctx, chromedp.WithListener(c.listen))
	t.Cleanup(closeTab)
	ctx, cancel := context.WithTimeout(tctx, 45*time.Second)
	t.Cleanup(cancel)
	c.do(t, ctx, "opening a tab", setViewport(vp))
	return ctx
}

func setViewport(vp viewport) chromedp.Action[chromedp.Void] {
	if vp.mobile {
		return chromedp.EmulateViewport(vp.width, vp.height, chromedp.EmulateScale(2), chromedp.EmulateMobile)
	}
	return chromedp.EmulateViewport(vp.width, vp.height, chromedp.EmulateScale(1))
}

// clearCookies forgets every cookie: each test's world starts with a
// browser that has never seen it (cookies ignore the port, and every
// world is on 127.0.0.1).
func (c *chrome) clearCookies(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatalf("clearing cookies: %v", err)
	}
}

// do runs steps, failing the test with what was being done.
func (c *chrome) do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v (at %s)", what, err, c.location(ctx))
	}
}

// location is where the tab is, for failure messages.
func (c *chrome) location(ctx context.Context) string {
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	loc, err := chromedp.Run(lctx, chromedp.Evaluate[string](`location.href + " — h1: " + ((document.querySelector("h1")||{}).textContent||"none")`))
	if err != nil {
		return "unknown: " + err.Error()
	}
	return loc
}

// waitFor polls a JavaScript condition every 50ms until it is true, across
// navigations (chromedp.Poll does not survive one), for up to limit.
func (c *chrome) waitFor(t *testing.T, ctx context.Context, limit time.Duration, what, cond string) {
	t.Helper()
	if !c.eventually(ctx, limit, cond) {
		t.Fatalf("waiting %v for %s (%s): now at %s", limit, what, cond, c.location(ctx))
	}
}

// eventually reports whether cond became true within limit.
func (c *chrome) eventually(ctx context.Context, limit time.Duration, cond string) bool {
	deadline := time.Now().Add(limit)
	for {
		ectx, cancel := context.WithTimeout(ctx, time.Second)
		ok, err := chromedp.Run(ectx, chromedp.Evaluate[bool](`document.readyState !== "loading" && !!(`+cond+`)`))
		cancel()
		if err == nil && ok {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitHeading waits until the page's h1 reads heading.
func (c *chrome) waitHeading(t *testing.T, ctx context.Context, heading string) {
	t.Helper()
	h, _ := json.Marshal(heading)
	c.waitFor(t, ctx, 15*time.Second, "the heading "+string(h),
		`(document.querySelector("h1")||{}).textContent === `+string(h))
}

// shot saves a screenshot of the whole page as name.png.
func (c *chrome) shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	c.savePNG(t, ctx, name, chromedp.FullScreenshot(100))
}

// viewShot saves a screenshot of what the viewport shows: for the
// upstream's long JSON pages.
func (c *chrome) viewShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	c.savePNG(t, ctx, name, chromedp.CaptureScreenshot())
}

func (c *chrome) savePNG(t *testing.T, ctx context.Context, name string, capture chromedp.Action[[]byte]) {
	t.Helper()
	png, err := chromedp.Run(ctx, capture)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(c.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", p, len(png))
}

// axeViolation is what axe-core reports for one rule.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []string `json:"target"`
		HTML    string   `json:"html"`
		Summary string   `json:"failureSummary"`
	} `json:"nodes"`
}

type axeResult struct {
	Violations []axeViolation `json:"violations"`
	Passes     int            `json:"passes"`
	Version    string         `json:"version"`
}

// axeRun runs the rule sets: WCAG 2.0, 2.1 and 2.2, levels A and AA.
const axeRun = `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}}).then(r => ({violations: r.violations, passes: r.passes.length, version: axe.version}))`

// checkAxe runs axe-core on the page and fails the test for each
// violation. The gateway's pages forbid scripts (CSP default-src 'none'),
// but Runtime.evaluate is the debugger's, not the page's, and CSP does not
// apply to it: axe is injected and run as the page stands, no bypass.
func (c *chrome) checkAxe(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](c.axe+"\n;void 0")); err != nil {
		t.Fatalf("%s: injecting axe-core: %v", name, err)
	}
	res, err := chromedp.Run(ctx, chromedp.Evaluate[axeResult](axeRun, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: running axe-core: %v", name, err)
	}
	if res.Passes == 0 {
		t.Errorf("%s: axe-core passed no rule at all; did it run on the page?", name)
	}
	t.Logf("%s: axe-core %s: %d rules passed, %d violated", name, res.Version, res.Passes, len(res.Violations))
	for _, v := range res.Violations {
		var nodes []string
		for _, n := range v.Nodes {
			nodes = append(nodes, fmt.Sprintf("      %s %s\n        %s", strings.Join(n.Target, " "), n.HTML, strings.ReplaceAll(n.Summary, "\n", "\n        ")))
		}
		t.Errorf("%s: axe %s (%s): %s\n%s", name, v.ID, v.Impact, v.Help, strings.Join(nodes, "\n"))
	}
}

// checkPage checks the gateway page the tab shows: its heading, axe-core,
// and its size and what it loaded for the table; then screenshots it as
// shot (no screenshot when shot is "").
func (c *chrome) checkPage(t *testing.T, ctx context.Context, name, heading, shot string) {
	t.Helper()
	c.waitHeading(t, ctx, heading)
	c.checkAxe(t, ctx, name)
	c.recordPage(t, ctx, name)
	if shot != "" {
		c.shot(t, ctx, shot)
	}
}

// recordPage notes the size of the document the tab shows, and how many
// requests it made besides itself.
func (c *chrome) recordPage(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	tree, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
	if err != nil {
		t.Fatalf("%s: frame tree: %v", name, err)
	}
	loader := tree.FrameTree.Frame.LoaderID
	size := -1
	if body, err := chromedp.Call(ctx, network.GetResponseBody, network.GetResponseBodyParams{RequestID: network.RequestID(loader)}); err == nil {
		size = len(body.Body)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.docs[loader]
	if d == nil {
		t.Errorf("%s: no record of the document's request (loader %s)", name, loader)
		return
	}
	if size < 0 {
		fmt.Sscan(d.length, &size)
	}
	c.pages = append(c.pages, pageStat{name: name, url: d.url, bytes: size, subresources: d.subresources, offsite: d.offsite})
}

// report logs the page-size table and fails the test if any request left
// loopback.
func (c *chrome) report(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "gateway pages seen by the browser:\n%-34s %7s %13s %9s  %s\n", "page", "bytes", "other loads", "external", "url")
	for _, p := range c.pages {
		u := p.url
		if pu, err := url.Parse(u); err == nil {
			u = pu.RequestURI()
		}
		if len(u) > 60 {
			u = u[:57] + "..."
		}
		fmt.Fprintf(&b, "%-34s %7d %13d %9d  %s\n", p.name, p.bytes, p.subresources, p.offsite, u)
	}
	t.Log(b.String())
	if len(c.offsite) > 0 {
		sort.Strings(c.offsite)
		t.Errorf("the browser made %d requests off loopback:\n  %s", len(c.offsite), strings.Join(c.offsite, "\n  "))
	}
}
