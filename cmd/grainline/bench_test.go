package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/internal/testenv"
)

// checkBenchTable asserts a baseline row, a group-commit row and the ratio
// line for store and the nats transport, with commands and no errors.
func checkBenchTable(t *testing.T, out, store string) {
	t.Helper()
	for _, config := range []string{"baseline max-batch=1", "group-commit"} {
		row := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(config) + `\s+` + store + `\s+nats\s+4\s+(\d+)\s+(\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s+0$`)
		m := row.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no %s row for %s nats with zero errors in:\n%s", config, store, out)
		}
		if m[1] == "0" || m[2] == "0" {
			t.Fatalf("%s row measured nothing: %q", config, m[0])
		}
		if config == "baseline max-batch=1" && m[3] != "1.0" {
			t.Fatalf("baseline batches of %s commits, want 1.0", m[3])
		}
	}
	if !regexp.MustCompile(`group-commit / baseline throughput, ` + store + ` nats: \d+\.\d\dx`).MatchString(out) {
		t.Fatalf("no ratio line in:\n%s", out)
	}
}

func TestBenchEmbedded(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"bench", "-duration", "1s", "-warmup", "200ms", "-clients", "4", "-transport", "nats"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	checkBenchTable(t, out.String(), "embedded")
	if !strings.Contains(errOut.String(), "[nats] measure") {
		t.Fatalf("no progress on stderr:\n%s", errOut.String())
	}
}

func TestBenchPostgres(t *testing.T) {
	dsn := testenv.PostgresDB(t)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"bench", "-duration", "1s", "-warmup", "200ms", "-clients", "4", "-transport", "nats",
		"-store", "postgres", "-postgres", dsn}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	checkBenchTable(t, out.String(), "postgres")
}

func TestBenchRemoteNode(t *testing.T) {
	// A node started by the test stands in for a running deployment.
	p, tok := startBenchPlatform(t)
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"bench", "-duration", "500ms", "-warmup", "100ms", "-clients", "4",
		"-nats", p.NATSAddr, "-http", "http://" + p.HTTPAddr, "-token", tok}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	s := out.String()
	if !strings.Contains(s, "no baseline") || strings.Contains(s, "group-commit /") {
		t.Fatalf("remote run output:\n%s", s)
	}
	for _, tr := range []string{"nats", "http"} {
		if !regexp.MustCompile(`(?m)^\s*remote\s+-\s+` + tr + `\s+4\s+[1-9]\d*\s`).MatchString(s) {
			t.Fatalf("no remote %s row in:\n%s", tr, s)
		}
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "-transport", "smoke"},
		{"bench", "-store", "postgres", "-postgres", ""},
		{"bench", "-store", "mysql"},
		{"bench", "-nats", "nats://127.0.0.1:1", "-token", ""},
		{"bench", "extra"},
	} {
		t.Setenv("GRAINLINE_POSTGRES", "")
		t.Setenv("GRAINLINE_TOKEN", "")
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Fatalf("%v: exit %d, want 2\n%s", args, code, errOut.String())
		}
	}
}

// A node that cannot be reached fails the invocation, naming the cause.
func TestBenchUnreachableNodeFails(t *testing.T) {
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, []string{"bench", "-duration", "200ms", "-nats", "nats://127.0.0.1:1", "-token", "x"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "connect NATS") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
}

func startBenchPlatform(t *testing.T) (*platform.Platform, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, platform.Config{DataDir: t.TempDir(), NoStreams: true, HTTPListen: "127.0.0.1:0", NATSListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	tok, err := p.Token(platform.DemoTenant, "bench", []string{"sales"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return p, tok
}
