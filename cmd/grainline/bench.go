package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/internal/bench"
	"github.com/grainline/grainline/internal/platform"
)

// benchRow is one line of the results table.
type benchRow struct {
	config string // "group-commit", "baseline" or "remote"
	store  string
	res    bench.Result
}

const (
	configGroup    = "group-commit"
	configBaseline = "baseline"
	configRemote   = "remote"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	clients := fs.Int("clients", 64, "concurrent clients, each owning its own quote")
	quotes := fs.Int("quotes", 0, "quotes to spread the load over (default: one per client)")
	duration := fs.Duration("duration", 10*time.Second, "measured window per run")
	commands := fs.Int("commands", 0, "end each run after this many commands instead of -duration")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured load before each window")
	transport := fs.String("transport", "both", "front door: nats, http or both")
	store := fs.String("store", "embedded", "truth store of the in-process platform: embedded or postgres")
	pgDSN := fs.String("postgres", envOr("GRAINLINE_POSTGRES", ""), "PostgreSQL DSN for -store postgres; migrations are applied (env GRAINLINE_POSTGRES)")
	maxBatch := fs.Int("max-batch", 512, "group-commit batch limit of the group-commit runs (the baseline uses 1)")
	natsURL := fs.String("nats", "", "drive the NATS gateway of a running node at this URL instead of starting a platform")
	httpURL := fs.String("http", "", "drive the HTTP API of a running node at this base URL instead of starting a platform")
	token := fs.String("token", envOr("GRAINLINE_TOKEN", ""), "bearer token with the sales role, for -nats/-http (env GRAINLINE_TOKEN)")
	tenant := fs.String("tenant", string(platform.DemoTenant), "the token's tenant, for -nats/-http")
	configs := fs.String("configs", "baseline,group-commit", "in-process configurations to run, comma-separated (profiling one alone)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole invocation to this file")
	flow := fs.String("flow", string(bench.FlowLines), "what each client does: lines (add and remove a line) or accept (whole sales: create to accept, rendering the document)")
	if err := parse(fs, args); err != nil {
		return err
	}

	var transports []bench.Transport
	switch *transport {
	case "both":
		transports = []bench.Transport{bench.TransportNATS, bench.TransportHTTP}
	case "nats", "http":
		transports = []bench.Transport{bench.Transport(*transport)}
	default:
		fmt.Fprintf(stderr, "-transport %q: want nats, http or both\n", *transport)
		return errUsage
	}
	remote := *natsURL != "" || *httpURL != ""
	if !remote {
		switch *store {
		case "embedded":
		case "postgres":
			if *pgDSN == "" {
				fmt.Fprintln(stderr, "-store postgres needs -postgres DSN (or GRAINLINE_POSTGRES)")
				return errUsage
			}
		default:
			fmt.Fprintf(stderr, "-store %q: want embedded or postgres\n", *store)
			return errUsage
		}
	}
	var runConfigs []string
	for _, c := range strings.Split(*configs, ",") {
		if c != configBaseline && c != configGroup {
			fmt.Fprintf(stderr, "-configs: unknown configuration %q: want baseline and/or group-commit\n", c)
			return errUsage
		}
		runConfigs = append(runConfigs, c)
	}
	if *flow != string(bench.FlowLines) && *flow != string(bench.FlowAccept) {
		fmt.Fprintf(stderr, "-flow %q: want lines or accept\n", *flow)
		return errUsage
	}
	if *maxBatch < 1 {
		fmt.Fprintln(stderr, "-max-batch must be at least 1")
		return errUsage
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	base := bench.Config{
		Clients: *clients, Quotes: *quotes, Duration: *duration, Commands: *commands, Warmup: *warmup,
		Tenant: grains.TenantID(*tenant), Flow: bench.Flow(*flow),
	}
	if *warmup == 0 {
		base.Warmup = -1 // none, rather than the default
	}

	var rows []benchRow
	var err error
	if remote {
		rows, err = benchRemote(ctx, base, transports, *natsURL, *httpURL, *token, stdout, stderr)
	} else {
		rows, err = benchInProcess(ctx, base, transports, runConfigs, *store, *pgDSN, *maxBatch, stdout, stderr)
	}
	if len(rows) > 0 {
		printBench(stdout, rows)
	}
	if err != nil {
		return err
	}
	var failed uint64
	for _, r := range rows {
		failed += r.res.ErrorCount()
	}
	if failed > 0 {
		return fmt.Errorf("%d commands failed during the measured windows (see the errors column)", failed)
	}
	return nil
}

// benchRemote drives a running node: one configuration per transport, no
// baseline (its committer cannot be reconfigured from here).
func benchRemote(ctx context.Context, base bench.Config, transports []bench.Transport, natsURL, httpURL, token string, stdout, stderr io.Writer) ([]benchRow, error) {
	if token == "" {
		fmt.Fprintln(stderr, "-nats/-http need -token (or GRAINLINE_TOKEN): `grainline token` prints one")
		return nil, errUsage
	}
	var rows []benchRow
	fmt.Fprintf(stdout, "driving a running node (one configuration, no baseline; the committer's batch sizes are not visible from here)\n")
	for _, tr := range transports {
		cfg := base
		cfg.Transport, cfg.Token, cfg.NATSURL, cfg.HTTPURL = tr, token, natsURL, httpURL
		if (tr == bench.TransportNATS && natsURL == "") || (tr == bench.TransportHTTP && httpURL == "") {
			fmt.Fprintf(stdout, "skipping %s: no -%s URL given\n", tr, tr)
			continue
		}
		res, err := bench.Run(ctx, cfg, stderr)
		rows = append(rows, benchRow{config: configRemote, store: "-", res: res})
		if err != nil {
			return rows, fmt.Errorf("%s: %w", tr, err)
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no transport to drive: -transport asks for %v", transports)
	}
	return rows, nil
}

// benchInProcess starts a fresh platform (the command path alone) for
// every configuration and transport. A priming run, not reported, comes
// first: the first platform of a process (and on PostgreSQL a fresh
// database) is markedly slower, which would flatter the ratio. Then, per
// transport, the baseline that commits every command alone (max-batch 1)
// and group commit run back to back, so that drift of a shared machine
// weighs on both alike.
func benchInProcess(ctx context.Context, base bench.Config, transports []bench.Transport, configs []string, store, dsn string, maxBatch int, stdout, stderr io.Writer) ([]benchRow, error) {
	fmt.Fprintf(stdout, "in-process platform, command path only (no relay or streams), %s store, GOMAXPROCS=%d, %d clients\n",
		store, runtime.GOMAXPROCS(0), base.Clients)
	prime := base
	prime.Duration, prime.Commands, prime.Warmup = base.Warmup, 0, 0
	if prime.Duration > 0 {
		if _, err := benchOnce(ctx, "priming run (not reported)", prime, transports[0], store, dsn, maxBatch, stderr); err != nil {
			return nil, fmt.Errorf("priming run: %w", err)
		}
	}
	var rows []benchRow
	for _, tr := range transports {
		for _, c := range []struct {
			name     string
			maxBatch int
		}{{configBaseline, 1}, {configGroup, maxBatch}} {
			if !slices.Contains(configs, c.name) {
				continue
			}
			res, err := benchOnce(ctx, c.name, base, tr, store, dsn, c.maxBatch, stderr)
			rows = append(rows, benchRow{config: c.name, store: store, res: res})
			if err != nil {
				return rows, fmt.Errorf("%s %s %s: %w", c.name, store, tr, err)
			}
		}
	}
	return rows, nil
}

func benchOnce(ctx context.Context, name string, base bench.Config, tr bench.Transport, store, dsn string, maxBatch int, stderr io.Writer) (res bench.Result, err error) {
	dir, err := os.MkdirTemp("", "grainline-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	pcfg := platform.Config{
		DataDir: dir, NoStreams: true, MaxBatch: maxBatch,
		HTTPListen: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
	}
	if store == "postgres" {
		pcfg.PostgresDSN, pcfg.Migrate = dsn, true
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	p, err := platform.Start(startCtx, pcfg)
	cancel()
	if err != nil {
		return res, err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if cerr := p.Close(closeCtx); cerr != nil && err == nil {
			err = fmt.Errorf("close platform: %w", cerr)
		}
	}()
	tok, err := p.Token(platform.DemoTenant, "bench", []string{"sales", "approver"}, 24*time.Hour)
	if err != nil {
		return res, err
	}
	cfg := base
	cfg.Transport, cfg.Token, cfg.Tenant = tr, tok, platform.DemoTenant
	cfg.NATSURL, cfg.HTTPURL = p.NATSAddr, "http://"+p.HTTPAddr
	cfg.CommitStats = p.Node.CommitStats
	fmt.Fprintf(stderr, "%s, %s store, %s transport:\n", name, store, tr)
	return bench.Run(ctx, cfg, stderr)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func printBench(w io.Writer, rows []benchRow) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\tstore\ttransport\tclients\tcommands\tcmd/s\tp50 ms\tp95 ms\tp99 ms\tp99.9 ms\tmax ms\tbatch\terrors\t")
	for _, r := range rows {
		config := r.config
		if config == configBaseline {
			config = "baseline max-batch=1"
		}
		batch := "-"
		if r.res.Batches > 0 {
			batch = fmt.Sprintf("%.1f", r.res.BatchMean())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			config, r.store, r.res.Transport, r.res.Clients, r.res.Commands, r.res.Throughput,
			ms(r.res.P50), ms(r.res.P95), ms(r.res.P99), ms(r.res.P999), ms(r.res.Max), batch, r.res.ErrorSummary())
	}
	tw.Flush()

	var ratios []string
	for _, g := range rows {
		if g.config != configGroup {
			continue
		}
		for _, b := range rows {
			if b.config == configBaseline && b.store == g.store && b.res.Transport == g.res.Transport && b.res.Throughput > 0 {
				ratios = append(ratios, fmt.Sprintf("group-commit / baseline throughput, %s %s: %.2fx", g.store, g.res.Transport, g.res.Throughput/b.res.Throughput))
			}
		}
	}
	if len(ratios) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, strings.Join(ratios, "\n"))
	}
	for _, r := range rows {
		if r.res.Flow != bench.FlowAccept {
			continue
		}
		fmt.Fprintf(w, "\n%s %s %s: %d quotes accepted (%.1f/s), each rendering its document first\n",
			r.config, r.store, r.res.Transport, r.res.Journeys, float64(r.res.Journeys)/r.res.Duration.Seconds())
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "command	count	p50 ms	p99 ms	max ms	")
		for _, c := range []string{"create", "addLine", "price", "submit", "approve", "renderDocument", "accept"} {
			if l, ok := r.res.PerCommand[c]; ok {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t\n", c, l.Count, ms(l.P50), ms(l.P99), ms(l.Max))
			}
		}
		tw.Flush()
	}
	for _, r := range rows {
		if len(r.res.WarmupErrors) > 0 {
			fmt.Fprintf(w, "note: %s %s %s had errors during the warm-up: %v\n", r.config, r.store, r.res.Transport, r.res.WarmupErrors)
		}
	}
}
