package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/proxy"
)

// emails.go keeps policy.authenticated_emails_file current: the file is
// checked every few seconds (its modification time and size; no inotify,
// which misses the symlink swaps of Kubernetes ConfigMaps and works on no
// network file system) and re-read when either changes. A file that
// becomes unreadable or malformed keeps the last good list in force; the
// error is logged once per change and counted in
// portcullis_emails_file_reloads_total{result="error"}.

// emailsCheckEvery is how often the file is looked at.
const emailsCheckEvery = 2 * time.Second

// emailsWatcher re-reads one emails file.
type emailsWatcher struct {
	file    *proxy.EmailsFile
	log     *slog.Logger
	reloads *prometheus.CounterVec // nil without metrics
	stat    func(string) (os.FileInfo, error)
	read    func(string) ([]byte, error)

	stamp   fileStamp // of the version in force
	lastErr string    // the error last reported, "" after a good load
}

// fileStamp is what says a file changed.
type fileStamp struct {
	mod  time.Time
	size int64
}

func newEmailsWatcher(f *proxy.EmailsFile, log *slog.Logger, reloads *prometheus.CounterVec) *emailsWatcher {
	w := &emailsWatcher{file: f, log: log, reloads: reloads, stat: os.Stat, read: os.ReadFile}
	if reloads != nil {
		reloads.WithLabelValues("ok")
		reloads.WithLabelValues("error")
	}
	return w
}

// start takes the file's stamp and, to close the gap since main read it,
// its contents again, quietly unless that fails.
func (w *emailsWatcher) start() {
	st, err := w.stat(w.file.Path())
	if err == nil {
		w.stamp = fileStamp{st.ModTime(), st.Size()}
		var data []byte
		if data, err = w.read(w.file.Path()); err == nil {
			_, err = w.file.Load(data)
		}
	}
	if err != nil {
		w.failed(err)
		return
	}
	w.log.Info("policy.authenticated_emails_file loaded; re-read when it changes",
		"file", w.file.Path(), "addresses", w.file.Len(), "every", emailsCheckEvery)
}

// check re-reads the file when its stamp changed, or while the last
// attempt failed (a chmod changes neither stamp). The stamp is taken
// before the read: a write between the two shows as another change.
func (w *emailsWatcher) check() {
	st, err := w.stat(w.file.Path())
	if err != nil {
		w.failed(err)
		return
	}
	stamp := fileStamp{st.ModTime(), st.Size()}
	if stamp == w.stamp && w.lastErr == "" {
		return
	}
	data, err := w.read(w.file.Path())
	if err == nil {
		_, err = w.file.Load(data)
	}
	if err != nil {
		w.stamp = stamp
		w.failed(err)
		return
	}
	w.stamp, w.lastErr = stamp, ""
	w.count("ok")
	w.log.Info("policy.authenticated_emails_file reloaded", "file", w.file.Path(), "addresses", w.file.Len())
}

// failed reports err once per distinct error.
func (w *emailsWatcher) failed(err error) {
	if err.Error() == w.lastErr {
		return
	}
	w.lastErr = err.Error()
	w.count("error")
	w.log.Error("policy.authenticated_emails_file could not be loaded; keeping the previous list",
		"file", w.file.Path(), "addresses", w.file.Len(), "err", err)
}

func (w *emailsWatcher) count(result string) {
	if w.reloads != nil {
		w.reloads.WithLabelValues(result).Inc()
	}
}

// run checks the file until ctx ends.
func (w *emailsWatcher) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.check()
		}
	}
}

// watchEmails keeps the emails file current while the gateway serves.
func (gw *gateway) watchEmails(ctx context.Context) {
	f := gw.parts.settings.EmailsFile()
	if f == nil {
		return
	}
	var reloads *prometheus.CounterVec
	if gw.telemetry != nil {
		reloads = gw.telemetry.emailsReloads
	}
	w := newEmailsWatcher(f, gw.log, reloads)
	w.start()
	go w.run(ctx, emailsCheckEvery)
}
