package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/streams/hub"
)

// runServe runs production roles against real services. Every mandatory
// value must be given; nothing falls back to an embedded default.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	var problems []string
	roles := fs.String("roles", envOr("GRAINLINE_ROLES", "node,gateway,relay,processors,worker,hub"), "comma-separated roles: node, gateway, relay, processors, worker, hub (env GRAINLINE_ROLES)")
	pgDSN := fs.String("postgres", envOr("GRAINLINE_POSTGRES", ""), "PostgreSQL DSN; required by node, gateway, relay, hub (env GRAINLINE_POSTGRES)")
	brokers := fs.String("kafka", envOr("GRAINLINE_KAFKA", ""), "comma-separated Kafka brokers; required by every role but node (env GRAINLINE_KAFKA)")
	natsURL := fs.String("nats-url", envOr("GRAINLINE_NATS_URL", ""), "NATS server URL; required by gateway (env GRAINLINE_NATS_URL)")
	natsPrefix := fs.String("nats-prefix", envOr("GRAINLINE_NATS_PREFIX", "grainline"), "first token of command subjects (env GRAINLINE_NATS_PREFIX)")
	httpAddr := fs.String("http", envOr("GRAINLINE_HTTP", "127.0.0.1:8080"), "HTTP address: the API with the gateway role, else /livez /readyz /metrics (env GRAINLINE_HTTP)")
	jwtKeys := fs.String("jwt-public-keys", envOr("GRAINLINE_JWT_PUBLIC_KEYS", ""), "comma-separated PEM files of Ed25519 public keys that sign tokens; required by gateway (env GRAINLINE_JWT_PUBLIC_KEYS)")
	billingKeys := fs.String("jwt-billing-keys", envOr("GRAINLINE_JWT_BILLING_KEYS", ""), "comma-separated PEM files of Ed25519 public keys trusted for tokens of role billing only: a billing system's callback keys (env GRAINLINE_JWT_BILLING_KEYS)")
	clusterHost := fs.String("cluster-host", envOr("GRAINLINE_CLUSTER_HOST", "127.0.0.1"), "address of this process's cluster endpoint (env GRAINLINE_CLUSTER_HOST)")
	clusterPort := fs.Int("cluster-port", envInt("GRAINLINE_CLUSTER_PORT", 0, &problems), "port of this process's cluster endpoint; 0 picks one (env GRAINLINE_CLUSTER_PORT)")
	adminPort := fs.Int("cluster-admin-port", envInt("GRAINLINE_CLUSTER_ADMIN_PORT", 0, &problems), "port of this process's membership health endpoint (env GRAINLINE_CLUSTER_ADMIN_PORT)")
	peers := fs.String("cluster-peers", envOr("GRAINLINE_CLUSTER_PEERS", ""), "comma-separated host:admin-port of every node process; empty: this process is the whole cluster (env GRAINLINE_CLUSTER_PEERS)")
	redisAddr := fs.String("redis", envOr("GRAINLINE_REDIS", ""), "Redis host:port caching published catalog versions; empty: no Redis (env GRAINLINE_REDIS)")
	environment := fs.String("environment", envOr("GRAINLINE_ENVIRONMENT", "dev"), "deployment environment name, the prefix of Redis keys (env GRAINLINE_ENVIRONMENT)")
	maxBatch := fs.Int("max-batch", 512, "largest group-commit batch; 1 commits every command alone")
	topicPrefix := fs.String("topic-prefix", "", "for tests: namespace for topics and consumer groups on a shared Kafka")
	seedDemo := fs.Bool("seed-demo-catalog", false, "store the demo catalog for tenant \"demo\" if it has none")
	applyTopology := fs.Bool("apply-topology", false, "create missing topics from topology.yaml at start (production runs 'grainline topology apply')")
	workerLatency := fs.Duration("worker-latency", 200*time.Millisecond, "latency of the simulated fulfillment system (worker role)")
	hubConfig := hubFlags(fs, false)
	billing := billingFlags(fs, false)
	callbackURL := fs.String("billing-callback-url", envOr("GRAINLINE_BILLING_CALLBACK_URL", ""), "URL of the gateway's POST /v1/callbacks/billing that asynchronous simulated billing posts to; required with -billing-async by the worker role without the gateway role, which defaults to its own (env GRAINLINE_BILLING_CALLBACK_URL)")
	callbackKey := fs.String("billing-callback-key", envOr("GRAINLINE_BILLING_CALLBACK_KEY", ""), "PEM file (PKCS#8, mode 0600) of the Ed25519 private key that signs asynchronous simulated billing's callback tokens; its public key must be in the gateway's -jwt-billing-keys (or -jwt-public-keys); required with -billing-async by the worker role (env GRAINLINE_BILLING_CALLBACK_KEY)")
	logLevel := logLevelFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(*logLevel, stderr)
	if err != nil {
		return err
	}
	rs, err := platform.ParseRoles(*roles)
	if err != nil {
		return err
	}
	has := func(r platform.Role) bool {
		for _, x := range rs {
			if x == r {
				return true
			}
		}
		return false
	}
	need := func(ok bool, msg string) {
		if !ok {
			problems = append(problems, msg)
		}
	}
	need(*pgDSN != "" || !(has(platform.RoleNode) || has(platform.RoleGateway) || has(platform.RoleRelay) || has(platform.RoleHub) || has(platform.RoleWorker)),
		"-postgres (GRAINLINE_POSTGRES) is required by the node, gateway, relay, worker and hub roles")
	need(*brokers != "" || (len(rs) == 1 && has(platform.RoleNode)), "-kafka (GRAINLINE_KAFKA) is required by every role but node")
	need(*natsURL != "" || !has(platform.RoleGateway), "-nats-url (GRAINLINE_NATS_URL) is required by the gateway role")
	need(*jwtKeys != "" || !has(platform.RoleGateway), "-jwt-public-keys (GRAINLINE_JWT_PUBLIC_KEYS) is required by the gateway role")
	need(*peers == "" || *adminPort > 0, "-cluster-admin-port is required with -cluster-peers")
	need(*peers != "" || has(platform.RoleNode) || !(has(platform.RoleGateway) || has(platform.RoleProcessors)), "-cluster-peers is required when the gateway or processors run without the node role")
	bcfg := platform.Config{}
	billing(&bcfg)
	if bcfg.BillingAsync && has(platform.RoleWorker) {
		need(*callbackURL != "" || has(platform.RoleGateway), "-billing-callback-url (GRAINLINE_BILLING_CALLBACK_URL) is required with -billing-async by the worker role without the gateway role: the gateway that receives the callbacks")
		need(*callbackKey != "", "-billing-callback-key (GRAINLINE_BILLING_CALLBACK_KEY) is required with -billing-async by the worker role: the private key that signs the callback tokens, whose public key the gateway's -jwt-billing-keys trusts")
	}
	if *callbackURL != "" {
		if err := platform.ValidCallbackURL(*callbackURL); err != nil {
			problems = append(problems, "-billing-callback-url: "+err.Error())
		}
	}
	need(bcfg.BillingCallbackDelay >= 0, "-billing-callback-delay must not be negative")
	need(bcfg.BillingCallbackDropRate >= 0 && bcfg.BillingCallbackDropRate <= 1, "-billing-callback-drop must be in [0,1]")
	var callbackSigner ed25519.PrivateKey
	if *callbackKey != "" && bcfg.BillingAsync && has(platform.RoleWorker) {
		if callbackSigner, err = auth.LoadPrivateKey(*callbackKey); err != nil {
			problems = append(problems, "-billing-callback-key: "+err.Error())
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid configuration:\n  %s", strings.Join(problems, "\n  "))
	}
	cfg := platform.Config{
		PostgresDSN:     *pgDSN,
		NATSURL:         *natsURL,
		NATSPrefix:      *natsPrefix,
		HTTPListen:      *httpAddr,
		MaxBatch:        *maxBatch,
		TopicPrefix:     *topicPrefix,
		WorkerLatency:   *workerLatency,
		Hub:             hubConfig(),
		Roles:           rs,
		NoSeed:          !*seedDemo,
		NoTopologyApply: !*applyTopology,
		RedisAddr:       *redisAddr,
		Environment:     *environment,
		Cluster: platform.ClusterConfig{
			Host: *clusterHost, Port: *clusterPort, AdminPort: *adminPort, Peers: splitList(*peers),
		},
		BillingCallbackURL: *callbackURL,
		BillingCallbackKey: callbackSigner,
		Log:                log,
	}
	billing(&cfg)
	if *brokers != "" {
		cfg.KafkaBrokers = splitList(*brokers)
	} else {
		cfg.NoStreams = true
	}
	if *jwtKeys != "" {
		if cfg.VerifyKeys, err = auth.LoadPublicKeys(splitList(*jwtKeys)...); err != nil {
			return err
		}
	}
	if *billingKeys != "" {
		if cfg.BillingVerifyKeys, err = auth.LoadPublicKeys(splitList(*billingKeys)...); err != nil {
			return err
		}
	}
	if callbackSigner != nil && has(platform.RoleGateway) && *callbackURL == "" {
		// The callbacks come to this process's gateway: it must trust them.
		pub := callbackSigner.Public().(ed25519.PublicKey)
		trusted := func(k ed25519.PublicKey) bool { return pub.Equal(k) }
		if !slices.ContainsFunc(cfg.BillingVerifyKeys, trusted) && !slices.ContainsFunc(cfg.VerifyKeys, trusted) {
			return errors.New("invalid configuration:\n  the public key of -billing-callback-key is in neither -jwt-billing-keys nor -jwt-public-keys: this process's gateway would refuse the billing callbacks")
		}
	}
	return runPlatform(ctx, cfg, stdout, func(p *platform.Platform) string {
		return fmt.Sprintf("grainline serve ready: roles=%s http=%s", *roles, p.HTTPAddr)
	})
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// envInt reads an integer environment variable; a malformed value is
// reported, never replaced by the default.
func envInt(name string, def int, problems *[]string) int {
	v := envOr(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		*problems = append(*problems, fmt.Sprintf("%s=%q is not a whole number", name, v))
		return def
	}
	return n
}

// hubFlags defines the event hub's flags (hub and gateway roles).
// allowPrivate is the default of -hub-allow-private: on for dev, where the
// subscriber is on the same machine, off for serve.
func hubFlags(fs *flag.FlagSet, allowPrivate bool) func() hub.Config {
	attempts := fs.Int("hub-attempts", 10, "event hub: delivery attempts per event and subscriber before it is given up")
	timeout := fs.Duration("hub-timeout", 10*time.Second, "event hub: timeout of one webhook POST")
	private := fs.Bool("hub-allow-private", allowPrivate, "event hub: accept and deliver to callbacks at localhost, loopback, private and link-local addresses")
	return func() hub.Config { return hub.Config{Attempts: *attempts, Timeout: *timeout, AllowPrivate: *private} }
}

// billingFlags defines the simulated billing system's flags (worker role).
// async is the default of -billing-async: on for dev, off for serve.
func billingFlags(fs *flag.FlagSet, async bool) func(*platform.Config) {
	on := fs.Bool("billing-async", async, "the simulated billing system accepts activations and reports their result later to POST /v1/callbacks/billing")
	delay := fs.Duration("billing-callback-delay", time.Second, "how long the asynchronous simulated billing system takes to decide an activation")
	drop := fs.Float64("billing-callback-drop", 0, "probability in [0,1] that the asynchronous simulated billing system loses a callback (1: all; the order's callback timer reconciles)")
	return func(c *platform.Config) {
		c.BillingAsync, c.BillingCallbackDelay, c.BillingCallbackDropRate = *on, *delay, *drop
	}
}
