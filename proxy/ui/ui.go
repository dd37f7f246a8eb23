// Package ui is the look every page Portcullis shows shares: the
// gateway's own pages, the demo provider's and the demo app's. One
// stylesheet, one layout; each package fills it with its own pages.
//
// The stylesheet is inlined and admitted by its hash (CSP Level 3 §8.3),
// so no page loads anything from elsewhere. Colours follow the reader's
// prefers-color-scheme (Media Queries Level 5 §12.5); every text pair
// passes WCAG 2.2 1.4.3 (4.5:1) and the focus ring 1.4.11 (3:1) in both.
package ui

import (
	"crypto/sha256"
	"encoding/base64"
)

// Style is the stylesheet. It is written for a 320 px wide screen first
// (WCAG 1.4.10 reflow) and widens the card's padding on larger ones.
const Style = `:root{color-scheme:light dark;--bg:#f4f5f7;--card:#fff;--fg:#1d2330;--muted:#4a5366;--accent:#2456c8;--on-accent:#fff;--ring:#1d2330;--line:#767f91;--err-bg:#fde8e8;--err-fg:#8a1c1c}
@media (prefers-color-scheme:dark){:root{--bg:#0f1115;--card:#1a1d24;--fg:#e6e8ee;--muted:#aab1c0;--accent:#8cb1ff;--on-accent:#0f1115;--ring:#e6e8ee;--line:#8a93a5;--err-bg:#3a1618;--err-fg:#ffc9c9}}
body{margin:0;padding:0 .75rem;font:16px/1.5 system-ui,sans-serif;background:var(--bg);color:var(--fg);overflow-wrap:anywhere}
header,main,footer{box-sizing:border-box;max-width:32rem;margin:0 auto}
header{display:flex;align-items:center;gap:.6rem;padding:1.25rem 0 .75rem;font-weight:600}
header img{max-height:2rem;max-width:10rem}
main{background:var(--card);border-radius:.5rem;padding:1.5rem 1.25rem;box-shadow:0 1px 4px #0003}
footer{padding:.75rem 0 2rem;color:var(--muted);font-size:.85rem}
h1{font-size:1.4rem;line-height:1.3;margin:0 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
a{color:var(--accent)}
a.button,button{display:inline-block;box-sizing:border-box;min-height:2.75rem;background:var(--accent);color:var(--on-accent);border:0;border-radius:.3rem;padding:.6rem 1.2rem;font:inherit;text-decoration:none;cursor:pointer}
a:focus-visible,button:focus-visible,input:focus-visible{outline:3px solid var(--ring);outline-offset:2px}
.actions{display:flex;flex-wrap:wrap;align-items:center;gap:1rem}
.detail,.id{color:var(--muted);font-size:.9rem}
ul.choices{list-style:none;padding:0}ul.choices li{margin:.6rem 0}ul.choices a.button{display:block;text-align:center}
label{display:block;font-weight:600;margin-top:1rem}
input{box-sizing:border-box;width:100%;padding:.5rem;font:inherit;color:var(--fg);background:var(--card);border:1px solid var(--line);border-radius:.25rem}
form button{margin-top:1.25rem}
.error{background:var(--err-bg);color:var(--err-fg);border-left:4px solid currentColor;padding:.5rem .75rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
body:has(table) :is(header,main,footer){max-width:56rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0}code{font-size:.9em}
@media (min-width:40rem){main{padding:2rem 2.5rem}header{padding-top:8vh}}`

// Hash is the CSP hash-source of a stylesheet (CSP Level 3 §2.3.1).
func Hash(style string) string {
	sum := sha256.Sum256([]byte(style))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// Layout returns the "top" and "bottom" templates with style inlined.
// The Referrer-Policy is the response header's business: the page that
// re-sends a kept form needs another than the rest.
// The data given to them must have the fields Title (the page's heading,
// also its title), Product (the name in the header) and LogoURL (an image
// beside it, or ""); "bottom" also shows RequestID when there is one.
func Layout(style string) string {
	return `{{define "top"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}}{{if .Product}} · {{.Product}}{{end}}</title><style>` + style + `</style></head>
<body><header>{{if .LogoURL}}<img src="{{.LogoURL}}" alt="">{{end}}<span>{{.Product}}</span></header>
<main>{{end}}
{{define "bottom"}}</main><footer>{{if .RequestID}}<p class="id">Request id: <code>{{.RequestID}}</code></p>{{end}}</footer></body></html>{{end}}`
}
