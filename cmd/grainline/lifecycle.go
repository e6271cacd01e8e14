package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/grainline/grainline/internal/platform"
)

// logLevelFlag declares -log-level.
func logLevelFlag(fs *flag.FlagSet) *string {
	return fs.String("log-level", envOr("GRAINLINE_LOG_LEVEL", "info"), "debug, info, warn or error (env GRAINLINE_LOG_LEVEL)")
}

// newLogger returns a text logger on w at the named level.
func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// runPlatform starts a platform, prints its ready line, runs until ctx
// ends (a signal) and then stops it within a bounded time.
func runPlatform(ctx context.Context, cfg platform.Config, stdout io.Writer, ready func(*platform.Platform) string) error {
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	p, err := platform.Start(startCtx, cfg)
	cancel()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, ready(p))
	<-ctx.Done()
	cfg.Log.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Close(stopCtx)
}
