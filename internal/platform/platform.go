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
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/grainline/grainline"
	"github.com/grainline/grainline/actors"
	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/connectors/truth/postgres"
	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/httpapi"
	"github.com/grainline/grainline/gateway/natsapi"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/quote"
	"github.com/grainline/grainline/migrations"
	"github.com/grainline/grainline/streams/fulfillment"
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
	// HTTPListen is the HTTP address. Default "127.0.0.1:8080"; port 0 picks
	// a free port.
	HTTPListen string
	// MaxBatch is the committer's largest batch; 1 is the per-command
	// baseline. Default 512.
	MaxBatch int
	// WorkerLatency is the simulated fulfillment system's latency.
	WorkerLatency time.Duration
	// NoStreams runs without relay, processors and worker (the benchmark of
	// the command path alone). Default false.
	NoStreams bool
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
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Validate reports an invalid configuration.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("platform: DataDir is required")
	}
	if c.MaxBatch < 0 {
		return fmt.Errorf("platform: MaxBatch %d is negative", c.MaxBatch)
	}
	return nil
}

// Platform is a running Grainline.
type Platform struct {
	cfg      Config
	log      *slog.Logger
	Store    truth.Store
	Node     *actors.Node
	signing  signingKey
	HTTPAddr string // host:port the HTTP API listens on
	NATSAddr string // URL of the NATS server commands are served on

	closers []func(ctx context.Context) error // run in reverse on Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	orders  *orderstatus.Reader
}

type signingKey struct {
	mint func(auth.Claims, time.Duration) (string, error)
}

// Start brings a platform up. On error everything already started is
// stopped again.
func Start(ctx context.Context, cfg Config) (p *Platform, err error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	p = &Platform{cfg: cfg, log: cfg.Log, cancel: cancel}
	defer func() {
		if err != nil {
			cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer ccancel()
			_ = p.Close(cctx)
			p = nil
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("platform: data dir: %w", err)
	}

	// Truth store.
	var relayLock func(ctx context.Context) (func(), bool, error)
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
	if err := SeedCatalog(ctx, p.Store, DemoTenant, catalog.Demo(), time.Now()); err != nil {
		return nil, err
	}
	cats := newCatalogs(p.Store)

	// Signing key (dev) and verifier.
	key, err := auth.LoadOrCreateDevKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	verifier, err := auth.NewVerifier(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	p.signing = signingKey{mint: func(c auth.Claims, ttl time.Duration) (string, error) { return auth.Mint(key, c, ttl) }}

	// Kafka.
	var relay *kafka.Relay
	var kcfg kafka.Config
	if !cfg.NoStreams {
		brokers := cfg.KafkaBrokers
		if len(brokers) == 0 {
			broker, err := kafka.StartEmbedded(kafka.EmbeddedConfig{
				Addr: "127.0.0.1:0", DataDir: filepath.Join(cfg.DataDir, "kafka"),
			}, p.log)
			if err != nil {
				return nil, err
			}
			p.onClose(func(context.Context) error { broker.Close(); return nil })
			brokers = broker.Brokers()
		}
		kcfg = kafka.Config{Brokers: brokers, ClientID: "grainline"}.WithDefaults()
		if err := kcfg.Validate(); err != nil {
			return nil, err
		}
		if err := p.applyTopology(kcfg); err != nil {
			return nil, err
		}
		producer, err := sarama.NewSyncProducer(brokers, kcfg.Sarama())
		if err != nil {
			return nil, fmt.Errorf("platform: kafka producer: %w", err)
		}
		p.onClose(func(context.Context) error { return producer.Close() })
		relay, err = kafka.NewRelay(kafka.RelayConfig{Lock: relayLock}, p.Store, producer, p.log.With("component", "relay"))
		if err != nil {
			return nil, err
		}
	}

	// Streams stop after the node has drained (closers run in reverse).
	p.onClose(func(context.Context) error { cancel(); p.wg.Wait(); return nil })

	// Grain node.
	committer := actors.CommitterConfig{MaxBatch: cfg.MaxBatch}
	if relay != nil {
		committer.OnDurable = relay.Notify
	}
	p.Node, err = actors.StartNode(actors.Config{Committer: committer}, actors.Deps{
		Store:    p.Store,
		Catalogs: cats,
		Kinds:    Kinds(p.topic),
		Log:      p.log.With("component", "node"),
	})
	if err != nil {
		return nil, err
	}
	p.onClose(p.Node.Stop)

	// Streams.
	if relay != nil {
		p.supervise(runCtx, "relay", relay.Run)
		if err := p.startStreams(runCtx, kcfg); err != nil {
			return nil, err
		}
	}

	// Front doors.
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if relay != nil {
		if err := relay.Register(metrics); err != nil {
			return nil, err
		}
	}
	orders := &orderIndex{reader: p.orders, node: p.Node}
	if err := p.startNATS(runCtx, natsapi.Deps{
		Sender: p.Node, Reader: p.Node, Verifier: verifier, Orders: orders, Catalog: cats,
	}); err != nil {
		return nil, err
	}
	handler, err := httpapi.New(httpapi.Config{}, httpapi.Deps{
		Sender: p.Node, Reader: p.Node, Verifier: verifier, Catalog: cats, Orders: orders,
		Ready:      p.readiness(),
		Registerer: metrics, Gatherer: metrics,
	}, p.log.With("component", "http"))
	if err != nil {
		return nil, err
	}
	if err := p.startHTTP(handler); err != nil {
		return nil, err
	}
	return p, nil
}

// Kinds returns the grain kinds with their events mapped to topics.
func Kinds(topic func(string) string) []actors.Kind {
	return []actors.Kind{
		actors.NewKind(quote.Behavior, func(string) []string { return []string{topic(TopicQuoteEvents)} }, actors.WithCatalog()),
		actors.NewKind(order.Behavior, func(ev string) []string {
			if ev == "FulfillmentTaskRequested" {
				// The order's own stream keeps every fact; the task queue gets
				// a copy for the workers.
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

// applyTopology creates the topics of topology.yaml that are missing.
func (p *Platform) applyTopology(kcfg kafka.Config) error {
	topo, err := kafka.Load(grainline.TopologyYAML)
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
	}, p.Node, p.log.With("component", "router"), kcfg.GokaOptions()...)
	if err != nil {
		return err
	}
	sim, err := fulfillment.NewSimulator(fulfillment.SimulatorConfig{Latency: p.cfg.WorkerLatency})
	if err != nil {
		return err
	}
	wk, err := fulfillment.New(fulfillment.Config{
		Brokers: brokers, Group: p.group("oms-fulfillment-worker"),
		Tasks: goka.Stream(p.topic(TopicTasks)), OrderCommands: goka.Stream(p.topic(TopicOrderCommands)),
		DeadLetter: dl,
	}, sim, p.log.With("component", "worker"), kcfg.GokaOptions()...)
	if err != nil {
		return err
	}
	statusGroup := p.group("oms-order-status")
	st, err := orderstatus.New(orderstatus.Config{
		Brokers: brokers, Group: statusGroup,
		OrderEvents: goka.Stream(p.topic(TopicOrderEvents)), DeadLetter: dl,
	}, p.log.With("component", "order-status"), kcfg.GokaOptions()...)
	if err != nil {
		return err
	}
	p.orders, err = orderstatus.NewReader(orderstatus.ReaderConfig{
		Brokers: brokers, Table: orderstatus.Table(statusGroup),
	}, p.log.With("component", "order-status-view"), kcfg.GokaViewOptions()...)
	if err != nil {
		return err
	}
	p.supervise(ctx, "intake", in.Run)
	p.supervise(ctx, "router", rt.Run)
	p.supervise(ctx, "worker", wk.Run)
	p.supervise(ctx, "order-status", st.Run)
	p.supervise(ctx, "order-status-view", p.orders.Run)
	return nil
}

// supervise runs f until ctx ends, restarting it with backoff when it fails
// (a goka processor stops on any callback or rebalance error).
func (p *Platform) supervise(ctx context.Context, name string, f func(ctx context.Context) error) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		backoff := 100 * time.Millisecond
		for {
			err := f(ctx)
			if ctx.Err() != nil {
				return
			}
			p.log.Error("component stopped; restarting", "component", name, "error", err, "backoff", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
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
	go func() {
		defer close(done)
		if err := srv.Run(nctx); err != nil {
			p.log.Error("NATS front door stopped", "error", err)
		}
	}()
	// Stop intake before the node goes: closers run in reverse.
	p.onClose(func(context.Context) error { ncancel(); <-done; return nil })
	p.NATSAddr = url
	return nil
}

func (p *Platform) startHTTP(h http.Handler) error {
	ln, err := net.Listen("tcp", p.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("platform: HTTP listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("HTTP server stopped", "error", err)
		}
	}()
	p.onClose(srv.Shutdown)
	p.HTTPAddr = ln.Addr().String()
	return nil
}

func (p *Platform) readiness() []func(ctx context.Context) error {
	checks := []func(ctx context.Context) error{
		func(ctx context.Context) error {
			_, err := p.Store.Load(ctx, catalogKey(DemoTenant))
			if err != nil && !errors.Is(err, truth.ErrNotFound) {
				return fmt.Errorf("truth store: %w", err)
			}
			return nil
		},
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
	return p.signing.mint(auth.Claims{Subject: subject, Tenant: tenant, Roles: roles}, ttl)
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
