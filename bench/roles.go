package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// roles.go is the harness binary run again as one of the small servers,
// each in its own process so that every server under test, the floor
// included, pays for its own process and scheduling alike:
//
//	bench role upstream -listen ADDR           the application: 200 and a 24-byte body; a WebSocket echo at /ws (soakws.go)
//	bench role floor -listen ADDR -to URL      an httputil.ReverseProxy to URL (-pool=false: no BufferPool)
//	bench role allow -listen ADDR              a forward-auth service that always says yes

// upstreamBody is what the application answers, the same 24 bytes as the
// in-memory upstream of proxy/bench_test.go.
var upstreamBody = []byte("hello from the upstream\n")

func runRole(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: bench role upstream|floor|allow -listen ADDR [-to URL]")
		return 2
	}
	role := args[0]
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	to := fs.String("to", "", "upstream URL (floor)")
	pool := fs.Bool("pool", true, "lend the floor's copy buffers from a pool, as Portcullis does")
	pprofAddr := fs.String("pprof", "", "also serve Go's profiler at /debug/pprof/ on this address")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var h http.Handler
	switch role {
	case "upstream":
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == wsPath {
				serveWebsocket(w, r)
				return
			}
			serveUpstream(w, r)
		})
	case "allow":
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	case "floor":
		target, err := url.Parse(*to)
		if err != nil || target.Host == "" {
			fmt.Fprintf(os.Stderr, "floor: -to %q is not a URL\n", *to)
			return 2
		}
		h = newFloor(target, *pool)
	default:
		fmt.Fprintf(os.Stderr, "unknown role %q\n", role)
		return 2
	}
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if *pprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		go http.ListenAndServe(*pprofAddr, mux)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, role+":", err)
		return 1
	}
	return 0
}

func serveUpstream(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["Content-Length"] = []string{strconv.Itoa(len(upstreamBody))}
	w.Write(upstreamBody)
}

// newFloor is the reverse-proxy floor: what any Go reverse proxy costs
// before it does anything about identity. Rewrite with SetURL and the
// default transport, with the two things proxy/upstream.go also does for
// speed and that have nothing to do with identity: idle-connection limits
// raised, so that neither side opens connections the other keeps, and the
// 32 KiB copy buffers lent from a pool. Without the pool each response
// allocates a new buffer, and on 2 cores that costs a bare ReverseProxy
// about a third of its throughput: Portcullis would then beat its own floor.
func newFloor(target *url.URL, pool bool) http.Handler {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 256
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: tr,
	}
	if pool {
		rp.BufferPool = copyBuffers
	}
	return rp
}

// copyBuffers is proxy/upstream.go's pool of ReverseProxy copy buffers.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *p.pool.Get().(*[]byte) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }
