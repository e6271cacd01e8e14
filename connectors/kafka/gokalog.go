package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/lovoo/goka"
)

// gokaLogger sends goka's log lines to a slog.Logger at level Info, with
// component "goka", so that they follow the process's log level and format
// instead of going to the standard library's logger. Goka reports failures
// through the errors its Run methods return, which the caller logs at their
// own level; its own lines are progress (partitions, rebalances, shutdown).
type gokaLogger struct{ log *slog.Logger }

var _ goka.Logger = gokaLogger{}

func (g gokaLogger) Print(args ...any) { g.emit(fmt.Sprint(args...)) }

func (g gokaLogger) Println(args ...any) { g.emit(fmt.Sprintln(args...)) }

func (g gokaLogger) Printf(format string, args ...any) { g.emit(fmt.Sprintf(format, args...)) }

func (g gokaLogger) emit(msg string) {
	g.log.Log(context.Background(), slog.LevelInfo, strings.TrimRight(msg, "\n"))
}

func (c Config) gokaLog() (goka.Logger, bool) {
	if c.Log == nil {
		return nil, false
	}
	return gokaLogger{c.Log.With("component", "goka")}, true
}
