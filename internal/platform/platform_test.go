package platform

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// A start that fails part-way returns the cause and releases what it had
// started: the data folder can be opened again at once.
func TestStartFailureReturnsCauseAndReleasesResources(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	_, err = Start(ctx, Config{DataDir: dir, NoStreams: true, HTTPListen: busy.Addr().String(), NATSListen: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "HTTP listen") {
		t.Fatalf("start on a busy port: %v, want an HTTP listen error", err)
	}
	p, err := Start(ctx, Config{DataDir: dir, NoStreams: true, HTTPListen: "127.0.0.1:0", NATSListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("restart on the same data folder: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestParseRoles(t *testing.T) {
	if rs, err := ParseRoles(" node, gateway,node "); err != nil || len(rs) != 2 {
		t.Fatalf("ParseRoles = %v, %v", rs, err)
	}
	for _, bad := range []string{"", "node,brain", " , "} {
		if _, err := ParseRoles(bad); err == nil {
			t.Errorf("ParseRoles(%q) accepted", bad)
		}
	}
}

func TestNamespacedTopologyStaysValid(t *testing.T) {
	topo, err := loadTopology()
	if err != nil {
		t.Fatal(err)
	}
	ns := withNamespace(topo, "t1-")
	if err := ns.Validate(); err != nil {
		t.Fatalf("namespaced topology invalid: %v", err)
	}
	for _, tp := range ns.Topics {
		if !strings.HasPrefix(tp.Name, "t1-") {
			t.Errorf("topic %s not namespaced", tp.Name)
		}
	}
}
