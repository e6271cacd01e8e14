package platform

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects a text handler's lines from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.buf.String()), "\n")
}

// The runbook tells operators to filter dev's logs by component: every
// line names at most one, the one the runbook lists for the part that
// logged it (a library inside a part is its subsystem).
func TestDevLogLinesNameOneComponent(t *testing.T) {
	out := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := Start(ctx, Config{DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", NATSListen: "127.0.0.1:0", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())

	want := map[string]string{ // message -> component
		"intake running":              "intake",
		"router running":              "router",
		"fulfillment worker running":  "worker",
		"event hub running":           "hub",
		"order status table running":  "order-status",
		"order status view recovered": "order-status-view",
		"nats gateway serving":        "nats",
		"Starting Proto.Actor server": "node",
	}
	var seen map[string]string
	for deadline := time.Now().Add(time.Minute); ; {
		seen = map[string]string{}
		for _, l := range out.lines() {
			for msg := range want {
				if strings.Contains(l, `msg="`+msg+`"`) {
					seen[msg] = l
				}
			}
		}
		if len(seen) == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute, logged only %d of %d start lines: %v", len(seen), len(want), seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for msg, comp := range want {
		if l := seen[msg]; !strings.Contains(l, " component="+comp+" ") && !strings.HasSuffix(l, " component="+comp) {
			t.Errorf("%q logged without component=%s: %s", msg, comp, l)
		}
	}
	if l := seen["Starting Proto.Actor server"]; !strings.Contains(l, "subsystem=protoactor") {
		t.Errorf("Proto.Actor's line does not name its subsystem: %s", l)
	}
	for _, l := range out.lines() {
		if n := strings.Count(l, " component="); n > 1 {
			t.Errorf("%d components in one line: %s", n, l)
		}
	}
}
