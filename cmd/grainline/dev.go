package main

import (
	"context"
	"fmt"
	"io"
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
	natsPrefix := fs.String("nats-prefix", envOr("GRAINLINE_NATS_PREFIX", "grainline"), "first token of command subjects (env GRAINLINE_NATS_PREFIX)")
	natsURL := fs.String("nats-url", envOr("GRAINLINE_NATS_URL", ""), "connect to this NATS server instead of starting one (env GRAINLINE_NATS_URL)")
	redisAddr := fs.String("redis", envOr("GRAINLINE_REDIS", ""), "Redis host:port caching published catalog versions; empty: no Redis (env GRAINLINE_REDIS)")
	environment := fs.String("environment", envOr("GRAINLINE_ENVIRONMENT", "dev"), "deployment environment name, the prefix of Redis keys (env GRAINLINE_ENVIRONMENT)")
	maxBatch := fs.Int("max-batch", 512, "largest group-commit batch; 1 commits every command alone")
	workerLatency := fs.Duration("worker-latency", 200*time.Millisecond, "latency of the simulated fulfillment system")
	billing := billingFlags(fs, true)
	hubConfig := hubFlags(fs, true)
	// Not for operators: tests that share one Kafka between runs namespace
	// every topic and consumer group with it (platform.Config.TopicPrefix).
	topicPrefix := fs.String("topic-prefix", "", "for tests: namespace for topics and consumer groups on a shared Kafka (lower case, ending in \"-\")")
	logLevel := logLevelFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(*logLevel, stderr)
	if err != nil {
		return err
	}
	cfg := platform.Config{
		DataDir:       *dataDir,
		PostgresDSN:   *pgDSN,
		Migrate:       true,
		NATSURL:       *natsURL,
		NATSListen:    *natsAddr,
		NATSPrefix:    *natsPrefix,
		HTTPListen:    *httpAddr,
		MaxBatch:      *maxBatch,
		WorkerLatency: *workerLatency,
		Hub:           hubConfig(),
		Log:           log,
		TopicPrefix:   *topicPrefix,
		RedisAddr:     *redisAddr,
		Environment:   *environment,
	}
	billing(&cfg)
	if *brokers != "" {
		cfg.KafkaBrokers = strings.Split(*brokers, ",")
	}
	store := "embedded store in " + *dataDir
	if *pgDSN != "" {
		store = "PostgreSQL"
	}
	return runPlatform(ctx, cfg, stdout, func(p *platform.Platform) string {
		return fmt.Sprintf("grainline dev ready: http://%s (OpenAPI at /openapi.yaml), NATS %s, %s; token: grainline token --data-dir %s --tenant %s --roles sales,approver",
			p.HTTPAddr, p.NATSAddr, store, *dataDir, platform.DemoTenant)
	})
}
