package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/grainline/grainline/internal/platform"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev", stderr)
	dataDir := fs.String("data-dir", envOr("GRAINLINE_DATA_DIR", ".grainline"), "data folder: embedded store, broker log, dev signing key (env GRAINLINE_DATA_DIR)")
	httpAddr := fs.String("http", envOr("GRAINLINE_HTTP", "127.0.0.1:8080"), "HTTP listen address (env GRAINLINE_HTTP)")
	natsAddr := fs.String("nats", envOr("GRAINLINE_NATS", "127.0.0.1:4222"), "in-process NATS server listen address (env GRAINLINE_NATS)")
	pgDSN := fs.String("postgres", envOr("GRAINLINE_POSTGRES", ""), "PostgreSQL DSN instead of the embedded store; migrations are applied (env GRAINLINE_POSTGRES)")
	brokers := fs.String("kafka", envOr("GRAINLINE_KAFKA", ""), "comma-separated Kafka brokers instead of the in-process broker (env GRAINLINE_KAFKA)")
	natsURL := fs.String("nats-url", envOr("GRAINLINE_NATS_URL", ""), "connect to this NATS server instead of starting one (env GRAINLINE_NATS_URL)")
	maxBatch := fs.Int("max-batch", 512, "largest group-commit batch; 1 commits every command alone")
	workerLatency := fs.Duration("worker-latency", 200*time.Millisecond, "latency of the simulated fulfillment system")
	// Not for operators: tests that share one Kafka between runs namespace
	// every topic and consumer group with it (platform.Config.TopicPrefix).
	topicPrefix := fs.String("topic-prefix", "", "for tests: namespace for topics and consumer groups on a shared Kafka (lower case, ending in \"-\")")
	logLevel := fs.String("log-level", envOr("GRAINLINE_LOG_LEVEL", "info"), "debug, info, warn or error (env GRAINLINE_LOG_LEVEL)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg := platform.Config{
		DataDir:       *dataDir,
		PostgresDSN:   *pgDSN,
		Migrate:       true,
		NATSURL:       *natsURL,
		NATSListen:    *natsAddr,
		HTTPListen:    *httpAddr,
		MaxBatch:      *maxBatch,
		WorkerLatency: *workerLatency,
		Log:           log,
		TopicPrefix:   *topicPrefix,
	}
	if *brokers != "" {
		cfg.KafkaBrokers = strings.Split(*brokers, ",")
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	p, err := platform.Start(startCtx, cfg)
	cancel()
	if err != nil {
		return err
	}
	store := "embedded store in " + *dataDir
	if *pgDSN != "" {
		store = "PostgreSQL"
	}
	fmt.Fprintf(stdout, "grainline dev ready: http://%s (OpenAPI at /openapi.yaml), NATS %s, %s; token: grainline token --data-dir %s --tenant %s --roles sales,approver\n",
		p.HTTPAddr, p.NATSAddr, store, *dataDir, platform.DemoTenant)

	<-ctx.Done()
	log.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Close(stopCtx)
}
