package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/proxy"
)

// reload.go re-reads the configuration without a restart: on SIGHUP, and
// with server.watch_config when the file or a secret file it names
// changes. The new file is validated completely and built into a new
// generation beside the running one; only then is it swapped in, in one
// atomic store. A request in flight finishes on the generation it started
// on; the next one gets the new. What did not change is taken over rather
// than rebuilt: the session store (Redis connections, the local cache,
// cookie sessions kept on this replica), the providers (their discovery
// and keys), the audit log, the used-state cache. A file that is refused
// leaves the running configuration in force, says why in the log and
// counts in portcullis_config_reload_total{result="failure"}.
//
// What a reload cannot change is what the process bound at start: the
// listeners and their TLS settings, the server timeouts, metrics, the
// admin listener, the log settings and tracing. A changed one is named in the log
// as needing a restart; the rest of the file still applies.

// live is the generation the listeners serve.
type live struct{ cur atomic.Pointer[gateway] }

func newLive(gw *gateway) *live {
	l := &live{}
	l.cur.Store(gw)
	return l
}

func (l *live) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.cur.Load().handler.ServeHTTP(w, r)
}

// adminHandler serves the current generation's admin API.
func (l *live) adminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := l.cur.Load().admin; a != nil {
			a.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}

func (l *live) authz() *proxy.ExtAuthz { return l.cur.Load().authz }

// current is the generation in force: gw, or the one a reload put in
// its place.
func (gw *gateway) current() *gateway {
	if gw.reload == nil {
		return gw
	}
	gw.reload.mu.Lock()
	defer gw.reload.mu.Unlock()
	if gw.reload.live == nil {
		return gw
	}
	return gw.reload.live.cur.Load()
}

// reloader rebuilds the gateway from its file. One reload at a time.
type reloader struct {
	path string
	mu   sync.Mutex
	live *live
	ctx  context.Context // serve's: each generation's background work derives from it
	// files are the hashes of every file the last attempt read (the
	// configuration and its *_file secrets): what watch_config watches.
	files map[string][sha256.Size]byte
}

// attach starts reloads into l, for as long as ctx lasts.
func (rl *reloader) attach(l *live, ctx context.Context) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.live, rl.ctx = l, ctx
}

// reload builds a new generation from the file and swaps it in; false
// when the file was refused (the running generation stays).
func (rl *reloader) reload(trigger string) bool {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if rl.live == nil || rl.ctx.Err() != nil {
		return false // not serving yet, or shutting down
	}
	cur := rl.live.cur.Load()
	next, files, err := rl.build(cur)
	rl.files = files
	if err != nil {
		cur.log.Error("configuration reload refused; the running configuration stays in force",
			"trigger", trigger, "file", rl.path, "err", strings.ReplaceAll(err.Error(), "\n", "; "))
		cur.countReload("failure")
		return false
	}
	for _, setting := range fixedChanges(cur.cfg, next.cfg) {
		cur.log.Warn("configuration reload: this setting needs a restart; the running value stays", "setting", setting)
	}
	kept := next.takeOver(cur)
	next.reload = rl
	rl.live.cur.Store(next)
	next.start(rl.ctx)
	for _, w := range next.warnings {
		next.log.Warn(w)
	}
	go cur.retire(max(cur.parts.settings.Server().ShutdownTimeout, 30*time.Second))
	next.log.Info("configuration reloaded", "trigger", trigger, "file", rl.path, "kept", kept)
	next.countReload("success")
	return true
}

// build reads and validates the file and builds a generation from it,
// taking over from cur what did not change.
func (rl *reloader) build(cur *gateway) (*gateway, map[string][sha256.Size]byte, error) {
	src, files := recordingSource()
	cfg, err := loadConfig(rl.path, src)
	if cfg == nil {
		return nil, files, err
	}
	err = errors.Join(err, cfg.readFiles(src.readFile))
	if err != nil {
		return nil, files, err
	}
	next, err := build(cfg, cur.log, buildOptions{prev: cur})
	return next, files, err
}

// recordingSource is osSource, also noting the hash of every file read:
// the configuration and its *_file secrets, what watch_config watches.
func recordingSource() (source, map[string][sha256.Size]byte) {
	files := map[string][sha256.Size]byte{}
	return source{lookupEnv: os.LookupEnv, readFile: func(name string) ([]byte, error) {
		b, err := os.ReadFile(name)
		files[name] = fileSum(b, err)
		return b, err
	}}, files
}

// takeOver moves to gw what it shares with prev, so that retiring prev
// does not close it, and names what was kept.
func (gw *gateway) takeOver(prev *gateway) []string {
	var kept []string
	if gw.store == prev.store {
		gw.storeCloser, prev.storeCloser = prev.storeCloser, nil
		kept = append(kept, "sessions")
	}
	if gw.audit.log == prev.audit.log {
		gw.audit.closer, prev.audit.closer = prev.audit.closer, nil
		kept = append(kept, "audit log")
	}
	if gw.parts.providers == prev.parts.providers {
		kept = append(kept, "providers")
	}
	return kept
}

// keepProviders reuses prev's providers (their discovery, keys and
// clients) when nothing they are built from changed.
func keepProviders(p *parts, prev *gateway, cfg *config) {
	if reflect.DeepEqual(prev.cfg.Providers, cfg.Providers) && reflect.DeepEqual(prev.cfg.Bearer, cfg.Bearer) &&
		slices.Equal(prev.cfg.Policy.ClaimNames(), cfg.Policy.ClaimNames()) {
		p.providers, p.bearer = prev.parts.providers, prev.parts.bearer
	}
}

// start begins a generation's background work: provider discovery (an
// immediate answer for providers already discovered) and the emails file
// watcher. retire ends it.
func (gw *gateway) start(ctx context.Context) {
	ctx, gw.stopBackground = context.WithCancel(ctx)
	go gw.discover(ctx)
	gw.watchEmails(ctx)
}

// retire ends a replaced generation once requests that started on it have
// had their grace: its background work, and what it still owns.
func (gw *gateway) retire(grace time.Duration) {
	time.Sleep(grace)
	if gw.stopBackground != nil {
		gw.stopBackground()
	}
	gw.close()
}

func (gw *gateway) countReload(result string) {
	if gw.telemetry != nil {
		gw.telemetry.configReloads.WithLabelValues(result).Inc()
	}
}

// fixedChanges names the settings that differ between old and new but
// only apply at start.
func fixedChanges(old, new *config) []string {
	o, n := old.Server, new.Server
	checks := []struct {
		name    string
		changed bool
	}{
		{"server.listen", o.Listen != n.Listen},
		{"server.tls", !reflect.DeepEqual(o.TLS, n.TLS)},
		{"server.grpc_listen", o.GRPCListen != n.GRPCListen},
		{"server.grpc_tls", !reflect.DeepEqual(o.GRPCTLS, n.GRPCTLS)},
		{"server.read_header_timeout", o.ReadHeaderTimeout != n.ReadHeaderTimeout},
		{"server.read_timeout", o.ReadTimeout != n.ReadTimeout},
		{"server.idle_timeout", o.IdleTimeout != n.IdleTimeout},
		{"server.max_header_bytes", o.MaxHeaderBytes != n.MaxHeaderBytes},
		{"server.watch_config", o.WatchConfig != n.WatchConfig},
		{"metrics", old.Metrics != new.Metrics},
		{"admin.listen", old.Admin.Listen != new.Admin.Listen},
		{"log.level", old.Log.Level != new.Log.Level},
		{"log.format", old.Log.Format != new.Log.Format},
		{"tracing", !reflect.DeepEqual(old.Tracing, new.Tracing)},
	}
	var out []string
	for _, c := range checks {
		if c.changed {
			out = append(out, c.name)
		}
	}
	return out
}

// fileSum is a file's content hash; all zeros for one that cannot be read,
// so a missing file is watched until it is back.
func fileSum(b []byte, err error) [sha256.Size]byte {
	if err != nil {
		return [sha256.Size]byte{}
	}
	return sha256.Sum256(b)
}

// hangups reloads on every SIGHUP until stop is called.
func (rl *reloader) hangups() (stop func()) {
	return onHangup(func() { rl.reload("SIGHUP") })
}

// watch reloads when a file the last attempt read changes
// (server.watch_config): polled, as mounted Secrets and ConfigMaps change
// by a symlink swap that file events report unreliably.
func (rl *reloader) watch(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rl.mu.Lock()
		changed := ""
		for name, sum := range rl.files {
			if fileSum(os.ReadFile(name)) != sum {
				changed = name
				break
			}
		}
		rl.mu.Unlock()
		if changed != "" {
			log.Info("configuration file changed", "file", changed)
			rl.reload("watch_config")
		}
	}
}
