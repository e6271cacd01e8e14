package bench_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/grainline/grainline/internal/bench"
	"github.com/grainline/grainline/internal/platform"
)

// startPlatform starts the command path alone (no streams) on the embedded
// store, listening on free ports.
func startPlatform(t *testing.T, maxBatch int) (*platform.Platform, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, platform.Config{
		DataDir: t.TempDir(), NoStreams: true, MaxBatch: maxBatch,
		HTTPListen: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
	})
	if err != nil {
		t.Fatalf("start platform: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("close platform: %v", err)
		}
	})
	tok, err := p.Token(platform.DemoTenant, "bench", []string{"sales", "approver"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return p, tok
}

func baseConfig(p *platform.Platform, tok string, tr bench.Transport) bench.Config {
	return bench.Config{
		Clients: 4, Duration: time.Second, Warmup: 200 * time.Millisecond,
		Transport: tr, NATSURL: p.NATSAddr, HTTPURL: "http://" + p.HTTPAddr, Token: tok,
		ProgressInterval: 100 * time.Millisecond,
		CommitStats:      p.Node.CommitStats,
	}
}

func checkResult(t *testing.T, res bench.Result) {
	t.Helper()
	if res.Commands == 0 || res.Throughput <= 0 {
		t.Fatalf("no commands measured: %+v", res)
	}
	if res.ErrorCount() != 0 || len(res.WarmupErrors) != 0 {
		t.Fatalf("errors: %v, during warm-up: %v", res.Errors, res.WarmupErrors)
	}
	if !(res.P50 > 0 && res.P50 <= res.P95 && res.P95 <= res.P99 && res.P99 <= res.P999 && res.P999 <= res.Max) {
		t.Fatalf("percentiles out of order: p50 %v p95 %v p99 %v p99.9 %v max %v", res.P50, res.P95, res.P99, res.P999, res.Max)
	}
	if res.Batches == 0 || res.BatchMean() < 1 {
		t.Fatalf("committer: %d commits in %d batches", res.Commits, res.Batches)
	}
	// Every measured command committed; commands just outside the window
	// may add a few more commits.
	if res.Commits < res.Commands {
		t.Fatalf("%d commands measured but only %d commits", res.Commands, res.Commits)
	}
}

func TestRunBothTransports(t *testing.T) {
	p, tok := startPlatform(t, 0)
	for _, tr := range []bench.Transport{bench.TransportNATS, bench.TransportHTTP} {
		t.Run(string(tr), func(t *testing.T) {
			var out bytes.Buffer
			res, err := bench.Run(context.Background(), baseConfig(p, tok, tr), &out)
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, res)
			if res.Duration < time.Second || res.Duration > 2*time.Second {
				t.Fatalf("window %v, want about 1s", res.Duration)
			}
			// Progress: plain lines (not a terminal), both phases.
			if !strings.Contains(out.String(), "["+string(tr)+"] warmup") || !strings.Contains(out.String(), "["+string(tr)+"] measure") || strings.Contains(out.String(), "\r") {
				t.Fatalf("progress output:\n%s", out.String())
			}
		})
	}
}

func TestRunCommandsAndSharedQuotes(t *testing.T) {
	p, tok := startPlatform(t, 0)
	for _, quotes := range []int{2, 9} { // fewer quotes than clients, and more
		cfg := baseConfig(p, tok, bench.TransportNATS)
		cfg.Duration, cfg.Commands, cfg.Quotes = 0, 300, quotes
		res, err := bench.Run(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkResult(t, res)
		if res.Commands != 300 || res.Quotes != quotes {
			t.Fatalf("quotes %d: %d commands over %d quotes, want 300", quotes, res.Commands, res.Quotes)
		}
	}
}

// Failed commands are counted by code, never hidden.
func TestRunCountsErrorsByCode(t *testing.T) {
	p, tok := startPlatform(t, 0)
	for _, tr := range []bench.Transport{bench.TransportNATS, bench.TransportHTTP} {
		cfg := baseConfig(p, tok, tr)
		cfg.OfferingID = "no-such-offering"
		cfg.Duration = 300 * time.Millisecond
		res, err := bench.Run(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Commands != 0 || res.Errors["validation_failed"] == 0 || len(res.Errors) != 1 {
			t.Fatalf("%s: commands %d, errors %v", tr, res.Commands, res.Errors)
		}
		if got := res.ErrorSummary(); !strings.HasPrefix(got, "validation_failed=") {
			t.Fatalf("error summary %q", got)
		}
	}
}

func TestRunFailsWhenSetUpFails(t *testing.T) {
	p, _ := startPlatform(t, 0)
	other, err := p.Token(platform.DemoTenant, "bench", []string{"approver"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []bench.Transport{bench.TransportNATS, bench.TransportHTTP} {
		// A token without the sales role cannot create quotes.
		cfg := baseConfig(p, other, tr)
		_, err := bench.Run(context.Background(), cfg, nil)
		var ce *bench.CommandError
		if !errors.As(err, &ce) || ce.Code != "forbidden" {
			t.Fatalf("%s: err = %v, want a forbidden create", tr, err)
		}
		cfg = baseConfig(p, "not-a-token", tr)
		_, err = bench.Run(context.Background(), cfg, nil)
		if !errors.As(err, &ce) || ce.Code != "unauthenticated" {
			t.Fatalf("%s: err = %v, want unauthenticated", tr, err)
		}
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	p, tok := startPlatform(t, 0)
	cfg := baseConfig(p, tok, bench.TransportHTTP)
	cfg.Duration = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := bench.Run(ctx, cfg, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("Run took %v after cancellation", time.Since(start))
	}
	if res.Commands == 0 || res.Duration <= 0 {
		t.Fatalf("partial result lost: %+v", res)
	}
}

func TestConfigValidate(t *testing.T) {
	_, err := bench.Run(context.Background(), bench.Config{Transport: "smoke", Token: "x"}, nil)
	if err == nil || !strings.Contains(err.Error(), "Transport") {
		t.Fatalf("err = %v", err)
	}
	_, err = bench.Run(context.Background(), bench.Config{Transport: bench.TransportHTTP, HTTPURL: "127.0.0.1:1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "HTTPURL") || !strings.Contains(err.Error(), "Token") {
		t.Fatalf("err = %v", err)
	}
}

// The accept flow sells whole quotes: each journey renders and attaches its
// document before the accept that names it, and every step is measured.
func TestRunAcceptFlow(t *testing.T) {
	p, tok := startPlatform(t, 0)
	for _, tr := range []bench.Transport{bench.TransportNATS, bench.TransportHTTP} {
		t.Run(string(tr), func(t *testing.T) {
			cfg := baseConfig(p, tok, tr)
			cfg.Flow = bench.FlowAccept
			res, err := bench.Run(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, res)
			if res.Flow != bench.FlowAccept || res.Journeys == 0 {
				t.Fatalf("flow %q, %d journeys", res.Flow, res.Journeys)
			}
			for _, c := range []string{"create", "addLine", "price", "submit", "approve", "renderDocument", "accept"} {
				if l := res.PerCommand[c]; l.Count == 0 || l.P50 <= 0 || l.P50 > l.Max {
					t.Fatalf("%s: %+v", c, l)
				}
			}
			// Journeys are the accepts inside the window; each followed a
			// render of its own (journeys begun in the warm-up may have
			// rendered before the window: at most one per client).
			if res.Journeys != res.PerCommand["accept"].Count || res.PerCommand["accept"].Count > res.PerCommand["renderDocument"].Count+uint64(cfg.Clients) {
				t.Fatalf("%d commands for %d journeys; per command %+v", res.Commands, res.Journeys, res.PerCommand)
			}
		})
	}
	_, err := bench.Run(context.Background(), bench.Config{Transport: bench.TransportNATS, NATSURL: "nats://x", Token: "x", Flow: "dance"}, nil)
	if err == nil || !strings.Contains(err.Error(), "Flow") {
		t.Fatalf("unknown flow: %v", err)
	}
}
