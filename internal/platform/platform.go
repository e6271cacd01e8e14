// Package platform assembles a whole Grainline in one process: truth store,
// Kafka (in-process broker or real), the grain node and its committer, the
// outbox relay, the stream processors, the simulated fulfillment worker, the
// NATS and HTTP front doors. `grainline dev`, the end-to-end tests and the
// benchmark all start it; only cmd/ installs signal handlers.
package platform

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grainline/grainline"
	"github.com/grainline/grainline/actors"
	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/connectors/rediscache"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/connectors/truth/postgres"
	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/dispatch"
	"github.com/grainline/grainline/gateway/httpapi"
	"github.com/grainline/grainline/gateway/natsapi"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/catalogbook"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/plan"
	"github.com/grainline/grainline/grains/quote"
	"github.com/grainline/grainline/migrations"
	"github.com/grainline/grainline/streams/fulfillment"
	"github.com/grainline/grainline/streams/fulfillment/sim"
	"github.com/grainline/grainline/streams/hub"
	"github.com/grainline/grainline/streams/intake"
	"github.com/grainline/grainline/streams/router"
	"github.com/grainline/grainline/tables/orderstatus"
)

// Topic names, as declared in topology.yaml.
const (
	TopicQuoteEvents   = "cpq.quote.events.v1"
	TopicOrderEvents   = "oms.order.events.v1"
	TopicOrderCommands = "oms.order.commands.v1"
	TopicTasks         = "oms.fulfillment.tasks.v1"
)

// DemoTenant is the tenant `grainline dev` seeds.
const DemoTenant grains.TenantID = "demo"

// Config configures a platform. Zero values select the embedded default.
type Config struct {
	// DataDir holds the embedded store, the in-process broker's log, the dev
	// signing key and local tables. Required.
	DataDir string
	// PostgresDSN selects PostgreSQL as the truth store; empty selects the
	// embedded store in DataDir/truth.
	PostgresDSN string
	// Migrate applies pending migrations at start (dev only). Without it a
	// PostgreSQL schema older than this binary's is refused.
	Migrate bool
	// KafkaBrokers selects a real Kafka; empty starts the in-process broker
	// with its log in DataDir/kafka.
	KafkaBrokers []string
	// TopicPrefix namespaces every topic and consumer group, so that several
	// platforms can share one Kafka (tests): "cpq.quote.events.v1" becomes
	// "<prefix>cpq.quote.events.v1". Lower case, ending in "-". Default "".
	TopicPrefix string
	// NATSURL selects a running NATS server; empty starts an in-process one
	// listening on NATSListen.
	NATSURL string
	// NATSListen is the in-process NATS server's address. Default
	// "127.0.0.1:4222"; port 0 picks a free port.
	NATSListen string
	// NATSPrefix is the first token of command subjects. Default "grainline".
	NATSPrefix string
	// HTTPListen is the HTTP address: the API with the gateway role, else
	// /livez, /readyz and /metrics. Default "127.0.0.1:8080"; port 0 picks a
	// free port.
	HTTPListen string
	// MaxBatch is the committer's largest batch; 1 is the per-command
	// baseline. Default 512.
	MaxBatch int
	// WorkerLatency is the simulated fulfillment system's latency.
	WorkerLatency time.Duration
	// WorkerSystems, when set, are the external systems the worker calls
	// instead of simulators with WorkerLatency (failure drills).
	WorkerSystems *fulfillment.Adapters
	// BillingAsync runs the simulated billing system asynchronously (ADR
	// 0022): it accepts an activation, decides it after
	// BillingCallbackDelay and posts the result to the gateway's
	// POST /v1/callbacks/billing with a token of the order's tenant and
	// role billing, signed with the dev key. Default false (synchronous).
	BillingAsync bool
	// BillingCallbackDelay is how long asynchronous simulated billing takes
	// to decide an activation. Default 0.
	BillingCallbackDelay time.Duration
	// BillingCallbackDropRate is the probability in [0,1] that asynchronous
	// simulated billing loses a callback; 1 loses every one (the drill:
	// the order's callback timer reconciles). Default 0.
	BillingCallbackDropRate float64
	// BillingCallbackURL is where asynchronous simulated billing posts its
	// callbacks: an absolute http or https URL of a gateway's
	// POST /v1/callbacks/billing. Default: this process's gateway; required
	// when the worker runs without the gateway role.
	BillingCallbackURL string
	// BillingCallbackKey signs the tokens (role billing, the order's
	// tenant, a few minutes long) of asynchronous simulated billing's
	// callbacks; its public key must be among the verification keys of the
	// gateway at BillingCallbackURL. Default: the dev key in DataDir.
	BillingCallbackKey ed25519.PrivateKey
	// Hub tunes the event hub's deliveries (hub role): Attempts, Timeout,
	// Retry and MaxQueue; brokers, group and topics are set by the
	// platform. Zero fields take hub.Config's defaults.
	Hub hub.Config
	// PlanDefault is the decomposition plan version new orders pin when
	// they name none; 0 is the built-in default (plan.DefaultVersion).
	// Orders keep the version they pinned whatever this is later.
	PlanDefault int
	// NoStreams runs without Kafka: no relay, processors or worker (the
	// benchmark of the command path alone). Default false.
	NoStreams bool
	// Roles selects the parts this process runs. Empty: all of them.
	Roles []Role
	// Cluster places this process in a multi-process cluster; the zero
	// value is a single in-process member.
	Cluster ClusterConfig
	// VerifyKeys verify bearer tokens. Empty: the dev key in DataDir,
	// created on first use.
	VerifyKeys []ed25519.PublicKey
	// BillingVerifyKeys verify bearer tokens of role billing only (a
	// billing system's callbacks): a token one of them signs with another
	// role is refused.
	BillingVerifyKeys []ed25519.PublicKey
	// NoSeed skips storing the demo tenant's catalog and approval policy
	// (production). By default a tenant "demo" without a catalog gets the
	// demo one, and without an approval policy approval.DemoRules as
	// version 1.
	NoSeed bool
	// RedisAddr, when set, caches published catalog versions in Redis at
	// host:port, shared by every process (key
	// "<Environment>:<tenant>:catalog:v<N>"). Empty: no Redis. Redis is only
	// a cache: when it is down, catalogs come from the truth store.
	RedisAddr string
	// Environment names the deployment (e.g. "prod", "staging"); it
	// prefixes Redis keys so that environments sharing a Redis do not mix.
	// Default "dev".
	Environment string
	// CatalogMemoryTTL is how long a process keeps a catalog version in
	// memory after reading it. Default 10m; negative keeps none, so every
	// read goes to Redis or the truth store.
	CatalogMemoryTTL time.Duration
	// NoTopologyApply skips creating missing topics from topology.yaml at
	// start (production runs `grainline topology apply`).
	NoTopologyApply bool
	// Log receives structured logs. Default: discard.
	Log *slog.Logger
}

func (c *Config) setDefaults() {
	if c.NATSListen == "" {
		c.NATSListen = "127.0.0.1:4222"
	}
	if c.NATSPrefix == "" {
		c.NATSPrefix = "grainline"
	}
	if c.HTTPListen == "" {
		c.HTTPListen = "127.0.0.1:8080"
	}
	if c.Environment == "" {
		c.Environment = "dev"
	}
	if c.CatalogMemoryTTL == 0 {
		c.CatalogMemoryTTL = 10 * time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Validate reports an invalid configuration.
func (c Config) Validate() error {
	if c.DataDir == "" && (c.PostgresDSN == "" || (len(c.KafkaBrokers) == 0 && !c.NoStreams)) {
		return errors.New("platform: DataDir is required for the embedded store and the in-process broker")
	}
	if len(c.Cluster.Peers) > 0 && c.Cluster.AdminPort == 0 {
		return errors.New("platform: a multi-process cluster needs Cluster.AdminPort")
	}
	// The roles that call grains (startGrains) find the nodes by the
	// peers; the relay, worker and hub reach them only through the store
	// and Kafka.
	callsGrains := slices.Contains(c.Roles, RoleGateway) || (slices.Contains(c.Roles, RoleProcessors) && !c.NoStreams)
	if len(c.Roles) > 0 && !slices.Contains(c.Roles, RoleNode) && callsGrains && len(c.Cluster.Peers) == 0 {
		return errors.New("platform: the gateway and processors roles without the node role need Cluster.Peers to name the nodes")
	}
	if c.PostgresDSN == "" && len(c.Roles) > 0 && len(c.Cluster.Peers) > 0 {
		return errors.New("platform: a multi-process cluster needs PostgreSQL (the embedded store belongs to one process)")
	}
	if c.MaxBatch < 0 {
		return fmt.Errorf("platform: MaxBatch %d is negative", c.MaxBatch)
	}
	if c.BillingAsync && c.WorkerSystems == nil {
		worker := len(c.Roles) == 0 || slices.Contains(c.Roles, RoleWorker)
		gateway := len(c.Roles) == 0 || slices.Contains(c.Roles, RoleGateway)
		if worker && !gateway && c.BillingCallbackURL == "" {
			return errors.New("platform: asynchronous billing without the gateway role needs BillingCallbackURL")
		}
		if worker && c.DataDir == "" && c.BillingCallbackKey == nil {
			return errors.New("platform: asynchronous billing signs its callback tokens with BillingCallbackKey or the dev key: one of BillingCallbackKey and DataDir is required")
		}
	}
	if c.BillingCallbackURL != "" {
		if err := ValidCallbackURL(c.BillingCallbackURL); err != nil {
			return fmt.Errorf("platform: BillingCallbackURL: %w", err)
		}
	}
	if c.BillingCallbackKey != nil && len(c.BillingCallbackKey) != ed25519.PrivateKeySize {
		return errors.New("platform: BillingCallbackKey is not an Ed25519 private key")
	}
	if c.BillingCallbackDelay < 0 || c.BillingCallbackDropRate < 0 || c.BillingCallbackDropRate > 1 {
		return errors.New("platform: BillingCallbackDelay must not be negative and BillingCallbackDropRate must be in [0,1]")
	}
	return nil
}

// Role is one part of Grainline a process can run.
type Role string

// The roles. A dev platform runs them all in one process.
const (
	RoleNode       Role = "node"       // hosts grains and the group committer
	RoleGateway    Role = "gateway"    // HTTP and NATS front doors
	RoleRelay      Role = "relay"      // outbox relay to Kafka
	RoleProcessors Role = "processors" // intake, command router, order-status table
	RoleWorker     Role = "worker"     // simulated fulfillment worker
	RoleHub        Role = "hub"        // event hub: webhook deliveries of order events
)

// AllRoles lists every role, in start order.
var AllRoles = []Role{RoleNode, RoleRelay, RoleProcessors, RoleWorker, RoleHub, RoleGateway}

// ParseRoles parses a comma-separated role list.
func ParseRoles(s string) ([]Role, error) {
	var out []Role
	for _, part := range strings.Split(s, ",") {
		r := Role(strings.TrimSpace(part))
		if r == "" {
			continue
		}
		if !slices.Contains(AllRoles, r) {
			return nil, fmt.Errorf("platform: unknown role %q (roles: node, gateway, relay, processors, worker, hub)", r)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("platform: no role given")
	}
	return out, nil
}

// ClusterConfig places a process in a multi-process cluster. The zero value
// is a single in-process member.
type ClusterConfig struct {
	// Host and Port are the remote endpoint of this process. Defaults
	// 127.0.0.1 and 0 (a free port).
	Host string
	Port int
	// AdminPort serves the automanaged membership health endpoint.
	AdminPort int
	// Peers are every process's "host:adminPort", this one's included.
	// Empty: single-process membership.
	Peers []string
}

// Platform is a running Grainline.
type Platform struct {
	cfg      Config
	log      *slog.Logger
	Store    truth.Store
	Node     *actors.Node // nil unless the node role runs here
	HTTPAddr string       // host:port of the HTTP listener ("" if none)
	NATSAddr string       // URL of the NATS server commands are served on

	signing func(auth.Claims, time.Duration) (string, error)
	grains  grainCaller // the node, or a cluster client
	orders  *orderstatus.Reader
	hubs    *hub.Registry  // event subscriptions (gateway and hub roles)
	hubProc *hub.Processor // webhook deliveries (hub role)
	relay   *kafka.Relay
	// catalogCache is the Redis cache of catalog versions; nil without one.
	catalogCache *rediscache.Cache
	// billing is the simulated billing system when the worker runs
	// simulators; billingTarget resolves where its callbacks go.
	billing       *sim.Billing
	billingTarget *callbackTarget
	// orderMetrics counts what the node's orders commit; nil without a node.
	orderMetrics *orderMetrics
	closers      []func(ctx context.Context) error // run in reverse on Close
	cancel       context.CancelFunc
	wg           sync.WaitGroup
}

// grainCaller sends commands and reads grains: a Node or a Client.
type grainCaller interface {
	call.Sender
	call.Reader
}

func (p *Platform) has(r Role) bool { return len(p.cfg.Roles) == 0 || slices.Contains(p.cfg.Roles, r) }

// Start brings a platform up. On error everything already started is
// stopped again.
func Start(ctx context.Context, cfg Config) (*Platform, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	p := &Platform{cfg: cfg, log: cfg.Log, cancel: cancel}
	if err := p.start(ctx, runCtx); err != nil {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		if cerr := p.Close(cctx); cerr != nil {
			p.log.Warn("cleanup after failed start", "error", cerr)
		}
		return nil, err
	}
	return p, nil
}

// start starts the configured roles; on error, Close stops what started.
func (p *Platform) start(ctx, runCtx context.Context) (err error) {
	cfg := p.cfg
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("platform: data dir: %w", err)
		}
	}
	// The worker keeps its attempt records in the truth store.
	needStore := p.has(RoleNode) || p.has(RoleRelay) || p.has(RoleGateway) || (p.has(RoleWorker) && !cfg.NoStreams) || p.has(RoleHub)
	needKafka := !cfg.NoStreams && (p.has(RoleRelay) || p.has(RoleProcessors) || p.has(RoleWorker) || p.has(RoleGateway) || p.has(RoleHub))

	var relayLock func(ctx context.Context) (func(), func(context.Context) error, bool, error)
	if needStore {
		if relayLock, err = p.openStore(ctx); err != nil {
			return err
		}
	}
	var shared VersionCache
	if cfg.RedisAddr != "" {
		rc, err := rediscache.New(rediscache.Config{Addr: cfg.RedisAddr, Env: cfg.Environment, Log: p.log.With("component", "catalog-cache")})
		if err != nil {
			return err
		}
		p.onClose(func(context.Context) error { return rc.Close() })
		p.catalogCache, shared = rc, rc
	}
	cats := newCatalogs(p.Store, shared, cfg.CatalogMemoryTTL)
	if p.Store != nil && (p.has(RoleGateway) || p.has(RoleHub)) {
		// One registry for both roles in a process: a subscription made
		// through the gateway reaches this process's deliveries at once.
		if p.hubs, err = hub.NewRegistry(p.Store, hub.RegistryConfig{AllowPrivate: cfg.Hub.AllowPrivate}); err != nil {
			return err
		}
	}
	pols := newPolicies(p.Store)

	var kcfg kafka.Config
	if needKafka {
		if kcfg, err = p.startKafka(); err != nil {
			return err
		}
		if p.has(RoleRelay) {
			producer, err := sarama.NewSyncProducer(kcfg.Brokers, kcfg.Sarama())
			if err != nil {
				return fmt.Errorf("platform: kafka producer: %w", err)
			}
			p.onClose(func(context.Context) error { return producer.Close() })
			p.relay, err = kafka.NewRelay(kafka.RelayConfig{Lock: relayLock}, p.Store, producer, p.log.With("component", "relay"))
			if err != nil {
				return err
			}
		}
	}
	// Streams stop after the grains have drained (closers run in reverse).
	p.onClose(func(context.Context) error { p.cancel(); p.wg.Wait(); return nil })

	if err := p.startGrains(cats, pols); err != nil {
		return err
	}
	if p.relay != nil {
		p.supervise(runCtx, "relay", p.relay.Run)
	}
	if needKafka {
		if err := p.startStreams(runCtx, kcfg); err != nil {
			return err
		}
	}
	metrics := p.metrics()
	if p.has(RoleGateway) {
		if err := p.startGateway(runCtx, cats, pols, metrics); err != nil {
			return err
		}
	} else if cfg.HTTPListen != "" {
		if err := p.startHTTP(opsHandler(metrics, p.readiness())); err != nil {
			return err
		}
	}
	return nil
}

// metrics returns the process registry: Go and process collectors, the
// committer's, the orders' and the relay's figures.
func (p *Platform) metrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if p.catalogCache != nil {
		reg.MustRegister(p.catalogCache.Collectors()...)
	}
	if p.Node != nil {
		node := p.Node
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "grainline_committer_batches_total", Help: "Commit batches written by this node's group committer.",
			}, func() float64 { b, _ := node.CommitStats(); return float64(b) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "grainline_committer_commits_total", Help: "Grain commits made durable by this node.",
			}, func() float64 { _, c := node.CommitStats(); return float64(c) }),
		)
		reg.MustRegister(p.orderMetrics.collectors()...)
	}
	if p.hubProc != nil {
		if err := p.hubProc.Register(reg); err != nil {
			p.log.Warn("hub metrics not registered", "error", err)
		}
	}
	if p.relay != nil {
		if err := p.relay.Register(reg); err != nil {
			p.log.Warn("relay metrics not registered", "error", err)
		}
	}
	return reg
}

// opsHandler serves /livez, /readyz and /metrics for processes without the
// gateway role.
func opsHandler(reg *prometheus.Registry, ready []func(ctx context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		for _, check := range ready {
			if err := check(ctx); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// openStore opens the truth store and, in dev, seeds the demo catalog.
func (p *Platform) openStore(ctx context.Context) (relayLock func(ctx context.Context) (func(), func(context.Context) error, bool, error), err error) {
	cfg := p.cfg
	if cfg.PostgresDSN != "" {
		pg, err := postgres.Open(ctx, postgres.Config{DSN: cfg.PostgresDSN, MaxConns: 32}, p.log)
		if err != nil {
			return nil, err
		}
		p.Store = pg
		p.onClose(func(context.Context) error { return pg.Close() })
		if cfg.Migrate {
			if _, err := migrations.Up(ctx, pg.Pool()); err != nil {
				return nil, fmt.Errorf("platform: migrate: %w", err)
			}
		}
		if err := pg.CheckSchema(ctx); err != nil {
			return nil, err
		}
		relayLock = pg.TryRelayLock
	} else {
		st, err := embedded.Open(embedded.Config{Dir: filepath.Join(cfg.DataDir, "truth")}, p.log)
		if err != nil {
			return nil, err
		}
		p.Store = st
		p.onClose(func(context.Context) error { return st.Close() })
	}
	if !cfg.NoSeed {
		if err := SeedCatalog(ctx, p.Store, DemoTenant, catalog.Demo(), time.Now()); err != nil {
			return nil, err
		}
		if err := SeedPolicy(ctx, p.Store, DemoTenant, approval.DemoRules(), time.Now()); err != nil {
			return nil, err
		}
	}
	return relayLock, nil
}

// startKafka starts the in-process broker when no brokers are configured and
// applies topology.yaml.
func (p *Platform) startKafka() (kafka.Config, error) {
	brokers := p.cfg.KafkaBrokers
	if len(brokers) == 0 {
		broker, err := kafka.StartEmbedded(kafka.EmbeddedConfig{
			Addr: "127.0.0.1:0", DataDir: filepath.Join(p.cfg.DataDir, "kafka"),
		}, p.log)
		if err != nil {
			return kafka.Config{}, err
		}
		p.onClose(func(context.Context) error { broker.Close(); return nil })
		brokers = broker.Brokers()
	}
	kcfg := kafka.Config{Brokers: brokers, ClientID: "grainline", Log: p.log}.WithDefaults()
	if err := kcfg.Validate(); err != nil {
		return kafka.Config{}, err
	}
	if !p.cfg.NoTopologyApply {
		if err := p.applyTopology(kcfg); err != nil {
			return kafka.Config{}, err
		}
	}
	return kcfg, nil
}

// startGrains starts the node (node role) or, for roles that call grains
// hosted elsewhere, a cluster client.
func (p *Platform) startGrains(cats *catalogs, pols *policies) error {
	needCaller := p.has(RoleGateway) || (p.has(RoleProcessors) && !p.cfg.NoStreams)
	if !p.has(RoleNode) && !needCaller {
		return nil
	}
	acfg := actors.Config{Host: p.cfg.Cluster.Host, Port: p.cfg.Cluster.Port}
	if len(p.cfg.Cluster.Peers) > 0 {
		acfg.Provider = actors.AutomanagedMembership(p.cfg.Cluster.AdminPort, p.cfg.Cluster.Peers)
	}
	if !p.has(RoleNode) {
		client, err := actors.StartClient(acfg, p.log.With("component", "cluster-client"))
		if err != nil {
			return err
		}
		p.onClose(client.Stop)
		p.grains = client
		return nil
	}
	acfg.Committer = actors.CommitterConfig{MaxBatch: p.cfg.MaxBatch}
	if p.relay != nil {
		acfg.Committer.OnDurable = p.relay.Notify
	}
	ks, err := kindsFor(p.topic, p.cfg.PlanDefault)
	if err != nil {
		return err
	}
	p.orderMetrics = newOrderMetrics()
	node, err := actors.StartNode(acfg, actors.Deps{
		Store:     p.Store,
		Catalogs:  cats,
		Policies:  pols,
		Kinds:     ks,
		Log:       p.log.With("component", "node"),
		Committed: p.orderMetrics.committed,
	})
	if err != nil {
		return err
	}
	p.onClose(node.Stop)
	p.Node, p.grains = node, node
	return nil
}

// startGateway starts the NATS and HTTP front doors.
func (p *Platform) startGateway(ctx context.Context, cats *catalogs, pols *policies, metrics *prometheus.Registry) error {
	verifier, err := p.verifier()
	if err != nil {
		return err
	}
	orders := &orderIndex{reader: p.orders, grains: p.grains}
	// The gateway renders quote documents and keeps them as artifacts in
	// the truth store it opened (both adapters implement the port).
	artifacts, ok := p.Store.(truth.ArtifactStore)
	if !ok {
		return fmt.Errorf("platform: the truth store %T keeps no artifacts", p.Store)
	}
	// Order task views show the worker's attempt records from the same store.
	attempts, _ := p.Store.(truth.AttemptStore)
	// Quote evidence reads snapshots, audit trails and the chain.
	evid, err := p.newEvidence(cats, pols)
	if err != nil {
		return err
	}
	if p.billingTarget != nil {
		p.billingTarget.setSigner(p.signing)
	}
	if err := p.startNATS(ctx, natsapi.Deps{
		Sender: p.grains, Reader: p.grains, Verifier: verifier, Orders: orders, Catalog: cats, Hub: p.hubAPI(),
		Artifacts: artifacts, Attempts: attempts,
		Policies: pols,
		Evidence: evid,
	}); err != nil {
		return err
	}
	handler, err := httpapi.New(httpapi.Config{}, httpapi.Deps{
		Sender: p.grains, Reader: p.grains, Verifier: verifier, Catalog: cats, Orders: orders, Hub: p.hubAPI(),
		Policies:   pols,
		Evidence:   evid,
		Artifacts:  artifacts,
		Attempts:   attempts,
		Ready:      p.readiness(),
		Registerer: metrics, Gatherer: metrics,
	}, p.log.With("component", "http"))
	if err != nil {
		return err
	}
	return p.startHTTP(handler)
}

// hubAPI is the gateway's view of the hub registry: nil without one.
func (p *Platform) hubAPI() dispatch.Hub {
	if p.hubs == nil {
		return nil
	}
	return p.hubs
}

// verifier checks tokens with the configured public keys or, without any,
// with the dev key kept in the data folder (which it can also mint with).
// Keys in BillingVerifyKeys are trusted for role billing only.
func (p *Platform) verifier() (*auth.Verifier, error) {
	var billing []auth.RoleKey
	for _, k := range p.cfg.BillingVerifyKeys {
		billing = append(billing, auth.RoleKey{Key: k, Roles: []string{dispatch.RoleBilling}})
	}
	if len(p.cfg.VerifyKeys) > 0 {
		return auth.NewRoleVerifier(p.cfg.VerifyKeys, billing)
	}
	if p.cfg.DataDir == "" {
		return nil, errors.New("platform: the gateway needs verification keys or a data folder with the dev key")
	}
	key, err := auth.LoadOrCreateDevKey(p.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	p.signing = func(c auth.Claims, ttl time.Duration) (string, error) { return auth.Mint(key, c, ttl) }
	return auth.NewRoleVerifier([]ed25519.PublicKey{key.Public().(ed25519.PublicKey)}, billing)
}

// Kinds returns the grain kinds with their events mapped to topics, orders
// deciding with the built-in plan catalog.
func Kinds(topic func(string) string) []actors.Kind { return kinds(topic, order.Behavior) }

// kindsFor returns Kinds with new orders pinning plan version planDefault (0:
// the built-in default).
func kindsFor(topic func(string) string, planDefault int) ([]actors.Kind, error) {
	if planDefault == 0 {
		return Kinds(topic), nil
	}
	plans := plan.Builtin()
	plans.Default = planDefault
	b, err := order.NewBehavior(plans)
	if err != nil {
		return nil, fmt.Errorf("platform: plan default %d: %w", planDefault, err)
	}
	return kinds(topic, b), nil
}

func kinds(topic func(string) string, orders grains.Behavior[order.State]) []actors.Kind {
	return []actors.Kind{
		// submit reads the tenant's approval policy in force; later
		// commands decide with what the quote pinned at submission.
		actors.NewKind(quote.New(quote.Options{RequireDocument: true}), func(string) []string { return []string{topic(TopicQuoteEvents)} },
			actors.WithCatalog(), actors.WithPolicy(quote.CmdSubmit)),
		// Catalog versions are audited but publish no events: nothing
		// downstream consumes them yet.
		actors.NewKind(catalogbook.Behavior, func(string) []string { return nil }),
		actors.NewKind(orders, func(ev string) []string {
			if ev == "FulfillmentTaskRequested" {
				// The order's own stream keeps every fact; the task queue gets
				// a copy for the workers.
				return []string{topic(TopicOrderEvents), topic(TopicTasks)}
			}
			if ev == order.EvTaskQueryRequested {
				// A query about a task whose callback did not come: the
				// worker answers it too.
				return []string{topic(TopicOrderEvents), topic(TopicTasks)}
			}
			return []string{topic(TopicOrderEvents)}
		}),
	}
}

func (p *Platform) topic(name string) string { return namespaced(p.cfg.TopicPrefix, name) }

// namespaced puts a topic in a namespace that keeps it a valid topology
// name: platform topics ("grainline.x.v1") move under a "platform" domain.
func namespaced(prefix, name string) string {
	if prefix == "" {
		return name
	}
	if strings.Count(name, ".") == 2 {
		return prefix + "platform." + name
	}
	return prefix + name
}

// withNamespace returns t with every topic and group namespaced.
func withNamespace(t kafka.Topology, prefix string) kafka.Topology {
	ns := func(names []string, f func(string) string) []string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = f(n)
		}
		return out
	}
	group := func(n string) string { return prefix + n }
	topic := func(n string) string { return namespaced(prefix, n) }
	out := kafka.Topology{OwnedPrefixes: []string{prefix}}
	for _, tp := range t.Topics {
		if strings.HasSuffix(tp.Name, kafka.TableSuffix) {
			tp.Name = group(tp.Name)
		} else {
			tp.Name = topic(tp.Name)
		}
		tp.Consumers = ns(tp.Consumers, group)
		out.Topics = append(out.Topics, tp)
	}
	for _, g := range t.Groups {
		g.Name = group(g.Name)
		g.Inputs = ns(g.Inputs, topic)
		g.Outputs = ns(g.Outputs, topic)
		if g.Table != "" {
			g.Table = group(g.Table)
		}
		out.Groups = append(out.Groups, g)
	}
	return out
}

func (p *Platform) group(name string) goka.Group { return goka.Group(p.cfg.TopicPrefix + name) }

func (p *Platform) onClose(f func(ctx context.Context) error) { p.closers = append(p.closers, f) }

func loadTopology() (kafka.Topology, error) { return kafka.Load(grainline.TopologyYAML) }

// applyTopology creates the topics of topology.yaml that are missing.
func (p *Platform) applyTopology(kcfg kafka.Config) error {
	topo, err := loadTopology()
	if err != nil {
		return err
	}
	if p.cfg.TopicPrefix != "" {
		topo = withNamespace(topo, p.cfg.TopicPrefix)
	}
	admin, err := sarama.NewClusterAdmin(kcfg.Brokers, kcfg.Sarama())
	if err != nil {
		return fmt.Errorf("platform: kafka admin: %w", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	created, err := kafka.Apply(ctx, admin, topo)
	if err != nil {
		return fmt.Errorf("platform: apply topology: %w", err)
	}
	if len(created) > 0 {
		p.log.Info("topics created", "topics", created)
	}
	return nil
}

func (p *Platform) startStreams(ctx context.Context, kcfg kafka.Config) error {
	brokers := kcfg.Brokers
	dl := goka.Stream(p.topic("grainline.deadletter.v1"))
	statusGroup := p.group("oms-order-status")
	if p.has(RoleProcessors) {
		in, err := intake.New(intake.Config{
			Brokers: brokers, Group: p.group("oms-intake"),
			QuoteEvents: goka.Stream(p.topic(TopicQuoteEvents)), OrderCommands: goka.Stream(p.topic(TopicOrderCommands)),
			DeadLetter: dl,
		}, p.log.With("component", "intake"), kcfg.GokaOptions()...)
		if err != nil {
			return err
		}
		rt, err := router.New(router.Config{
			Brokers: brokers, Group: p.group("oms-order-router"),
			Commands: goka.Stream(p.topic(TopicOrderCommands)), DeadLetter: dl,
		}, p.grains, p.log.With("component", "router"), kcfg.GokaOptions()...)
		if err != nil {
			return err
		}
		st, err := orderstatus.New(orderstatus.Config{
			Brokers: brokers, Group: statusGroup,
			OrderEvents: goka.Stream(p.topic(TopicOrderEvents)), DeadLetter: dl,
		}, p.log.With("component", "order-status"), kcfg.GokaOptions()...)
		if err != nil {
			return err
		}
		p.supervise(ctx, "intake", in.Run)
		p.supervise(ctx, "router", rt.Run)
		p.supervise(ctx, "order-status", st.Run)
	}
	if p.has(RoleWorker) {
		var ads fulfillment.Adapters
		if p.cfg.WorkerSystems != nil {
			ads = *p.cfg.WorkerSystems
		} else {
			var err error
			if ads, err = simulatedSystems(sim.Config{Latency: p.cfg.WorkerLatency}); err != nil {
				return err
			}
			if p.cfg.BillingAsync {
				bill, err := p.asyncBilling(sim.Config{Latency: p.cfg.WorkerLatency})
				if err != nil {
					return err
				}
				ads.Billing = bill
			}
			p.billing, _ = ads.Billing.(*sim.Billing)
		}
		records, ok := p.Store.(truth.AttemptStore)
		if !ok {
			return fmt.Errorf("platform: truth store %T keeps no attempt records", p.Store)
		}
		wk, err := fulfillment.NewWithAdapters(fulfillment.Config{
			Brokers: brokers, Group: p.group("oms-fulfillment-worker"),
			Tasks: goka.Stream(p.topic(TopicTasks)), OrderCommands: goka.Stream(p.topic(TopicOrderCommands)),
			DeadLetter: dl, Records: records,
		}, ads, p.log.With("component", "worker"), kcfg.GokaOptions()...)
		if err != nil {
			return err
		}
		p.supervise(ctx, "worker", wk.Run)
	}
	if p.has(RoleHub) {
		hcfg := p.cfg.Hub
		hcfg.Brokers, hcfg.Group = brokers, p.group("oms-hub")
		hcfg.OrderEvents, hcfg.DeadLetter = goka.Stream(p.topic(TopicOrderEvents)), dl
		hp, err := hub.New(hcfg, p.hubs, p.log.With("component", "hub"), kcfg.GokaOptions()...)
		if err != nil {
			return err
		}
		p.hubProc = hp
		p.supervise(ctx, "hub", hp.Run)
	}
	if p.has(RoleGateway) {
		// The gateway reads the order-status table through a view.
		var err error
		p.orders, err = orderstatus.NewReader(orderstatus.ReaderConfig{
			Brokers: brokers, Table: orderstatus.Table(statusGroup),
		}, p.log.With("component", "order-status-view"), kcfg.GokaViewOptions()...)
		if err != nil {
			return err
		}
		p.supervise(ctx, "order-status-view", p.orders.Run)
	}
	return nil
}

// simulatedSystems returns simulators of every external system the worker
// calls (inventory, provisioning, billing, notification), all with cfg.
func simulatedSystems(cfg sim.Config) (fulfillment.Adapters, error) {
	inv, err := sim.NewInventory(cfg)
	if err != nil {
		return fulfillment.Adapters{}, err
	}
	prov, err := sim.NewProvisioning(cfg)
	if err != nil {
		return fulfillment.Adapters{}, err
	}
	bill, err := sim.NewBilling(cfg)
	if err != nil {
		return fulfillment.Adapters{}, err
	}
	note, err := sim.NewNotification(cfg)
	if err != nil {
		return fulfillment.Adapters{}, err
	}
	return fulfillment.Adapters{Inventory: inv, Provisioning: prov, Billing: bill, Notification: note}, nil
}

// supervise runs f until ctx ends, restarting it with backoff when it fails
// (a goka processor stops on any callback or rebalance error).
func (p *Platform) supervise(ctx context.Context, name string, f func(ctx context.Context) error) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		const minBackoff, maxBackoff = 100 * time.Millisecond, 10 * time.Second
		backoff := minBackoff
		for {
			started := time.Now()
			err := f(ctx)
			if ctx.Err() != nil {
				return
			}
			if time.Since(started) > time.Minute {
				backoff = minBackoff // it ran well for a while: a new failure
			}
			p.log.Error("component stopped; restarting", "component", name, "error", err, "backoff", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, maxBackoff)
		}
	}()
}

func (p *Platform) startNATS(ctx context.Context, deps natsapi.Deps) error {
	url := p.cfg.NATSURL
	if url == "" {
		host, port, err := splitHostPort(p.cfg.NATSListen)
		if err != nil {
			return fmt.Errorf("platform: NATS listen address: %w", err)
		}
		if port == 0 {
			port = server.RANDOM_PORT
		}
		ns, err := server.NewServer(&server.Options{Host: host, Port: port, NoSigs: true, NoLog: true, MaxPayload: 1 << 20})
		if err != nil {
			return fmt.Errorf("platform: NATS server: %w", err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			ns.Shutdown()
			return fmt.Errorf("platform: NATS server did not start on %s (port in use?)", p.cfg.NATSListen)
		}
		p.onClose(func(context.Context) error { ns.Shutdown(); ns.WaitForShutdown(); return nil })
		url = ns.ClientURL()
	}
	nc, err := nats.Connect(url, nats.Name("grainline-gateway"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("platform: connect NATS %s: %w", url, err)
	}
	p.onClose(func(context.Context) error { nc.Close(); return nil })
	srv, err := natsapi.New(natsapi.Config{Prefix: p.cfg.NATSPrefix}, nc, deps, p.log.With("component", "nats"))
	if err != nil {
		return err
	}
	nctx, ncancel := context.WithCancel(ctx)
	done := make(chan struct{})
	runErr := make(chan error, 1)
	go func() {
		defer close(done)
		if err := srv.Run(nctx); err != nil {
			p.log.Error("NATS front door stopped", "error", err)
			runErr <- err
		}
	}()
	// Stop intake before the node goes: closers run in reverse.
	p.onClose(func(context.Context) error { ncancel(); <-done; return nil })
	// Start returns only once requests are answered.
	select {
	case <-srv.Ready():
	case err := <-runErr:
		return err
	case <-time.After(30 * time.Second):
		return errors.New("platform: NATS front door did not subscribe within 30s")
	}
	p.NATSAddr = url
	return nil
}

func (p *Platform) startHTTP(h http.Handler) error {
	ln, err := net.Listen("tcp", p.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("platform: HTTP listen: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second, // bodies are at most 1 MiB
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("HTTP server stopped", "error", err)
		}
	}()
	p.onClose(srv.Shutdown)
	p.HTTPAddr = ln.Addr().String()
	if p.billingTarget != nil {
		p.billingTarget.setGateway(p.HTTPAddr)
	}
	return nil
}

func (p *Platform) readiness() []func(ctx context.Context) error {
	var checks []func(ctx context.Context) error
	if p.Store != nil {
		checks = append(checks, func(ctx context.Context) error {
			_, err := p.Store.Load(ctx, catalogKey(DemoTenant, catalogbook.IndexID))
			if err != nil && !errors.Is(err, truth.ErrNotFound) {
				return fmt.Errorf("truth store: %w", err)
			}
			return nil
		})
	}
	if p.orders != nil {
		checks = append(checks, func(context.Context) error {
			if !p.orders.Ready() {
				return errors.New("order-status view is still recovering")
			}
			return nil
		})
	}
	return checks
}

// Token mints a token signed with the platform's dev key.
func (p *Platform) Token(tenant grains.TenantID, subject string, roles []string, ttl time.Duration) (string, error) {
	if p.signing == nil {
		return "", errors.New("platform: no dev signing key (a gateway with configured keys cannot mint)")
	}
	return p.signing(auth.Claims{Subject: subject, Tenant: tenant, Roles: roles}, ttl)
}

// Close stops everything in reverse order of start: front doors first,
// then the node (which drains its committer), then streams, broker and
// store. It is safe to call once.
func (p *Platform) Close(ctx context.Context) error {
	var errs []error
	for i := len(p.closers) - 1; i >= 0; i-- {
		if err := p.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	p.closers = nil
	if p.cancel != nil {
		p.cancel()
		p.wg.Wait()
	}
	return errors.Join(errs...)
}
