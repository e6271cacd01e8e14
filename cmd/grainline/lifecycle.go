package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

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

// runPlatform starts a platform, prints its ready line once it is ready
// as GET /readyz means it (the order-status view has caught up), runs
// until ctx ends (a signal) and then stops it within a bounded time.
func runPlatform(ctx context.Context, cfg platform.Config, stdout io.Writer, ready func(*platform.Platform) string) error {
	if cfg.RedisAddr != "" && cfg.Log != nil {
		// go-redis logs every failed dial; the catalog cache reports an
		// outage once itself, so the library's lines go to debug.
		redis.SetLogger(redisLogger{cfg.Log.With("component", "go-redis")})
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	p, err := platform.Start(startCtx, cfg)
	cancel()
	if err != nil {
		return err
	}
	waitCtx, cancel := context.WithCancel(ctx)
	slow := time.AfterFunc(5*time.Second, func() {
		cfg.Log.Info("waiting for the order-status view to catch up with its table before serving as ready")
	})
	err = p.WaitReady(waitCtx)
	slow.Stop()
	cancel()
	if err == nil {
		fmt.Fprintln(stdout, ready(p))
	}
	<-ctx.Done()
	cfg.Log.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Close(stopCtx)
}

// redisLogger sends go-redis's own log lines to a slog.Logger at debug
// level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...))
}
