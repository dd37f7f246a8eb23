package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// logConfig is the `log` section.
type logConfig struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
	// Audit is where the audit log goes (always JSON, one event per
	// line): stdout (default), stderr, or a file path (appended to).
	Audit string `yaml:"audit"`
}

func newLogger(cfg logConfig, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	var err error
	switch strings.ToLower(cfg.Level) {
	case "", "info":
		level = slog.LevelInfo
	case "debug":
		level = slog.LevelDebug
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		err = fmt.Errorf("log.level %q: want debug, info, warn or error", cfg.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(cfg.Format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), err
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), err
	}
	return slog.New(slog.NewTextHandler(w, opts)), errors.Join(err, fmt.Errorf("log.format %q: want text or json", cfg.Format))
}

// auditSink is the audit logger and what to close at shutdown.
type auditSink struct {
	log    *slog.Logger
	closer io.Closer // nil for stdout and stderr
}

// openAudit opens the audit log: JSON lines to stdout (default), stderr or
// an appended file; out, when set, replaces stdout and stderr.
func openAudit(dest string, out io.Writer) (auditSink, error) {
	var w io.Writer
	var closer io.Closer
	switch dest {
	case "", "stdout":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(dest, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
		if err != nil {
			return auditSink{}, fmt.Errorf("log.audit: %w", err)
		}
		w, closer = f, f
	}
	if out != nil {
		w = out
	}
	return auditSink{log: slog.New(slog.NewJSONHandler(w, nil)), closer: closer}, nil
}

// redisLogger sends go-redis's own messages (reconnects, failovers) to
// the gateway's log.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.Log(ctx, slog.LevelWarn, "redis: "+fmt.Sprintf(format, v...))
}
