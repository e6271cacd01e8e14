package e2e

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/internal/testenv"
	"github.com/grainline/grainline/streams/fulfillment"
	"github.com/grainline/grainline/streams/hub"
)

// mode is one set-up of the platform's infrastructure.
type mode string

const (
	// embedded: embedded truth store, in-process Kafka-protocol broker and
	// in-process NATS server, everything on loopback port 0.
	embedded mode = "embedded"
	// real: PostgreSQL, Apache Kafka and nats-server from internal/testenv,
	// with a fresh database and topic/subject namespaces per platform.
	real mode = "real"
)

var modes = []mode{embedded, real}

// eachMode runs f as one subtest per mode. The subtests run in parallel:
// each builds its own platform and namespaces, so they share nothing.
func eachMode(t *testing.T, f func(t *testing.T, m mode)) {
	t.Helper()
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			f(t, m)
		})
	}
}

// env is one running platform and what a test needs to reach it.
type env struct {
	t          *testing.T
	mode       mode
	p          *platform.Platform
	brokers    []string // Kafka bootstrap brokers the platform uses
	topicPfx   string   // TopicPrefix of the platform ("" in embedded mode)
	natsPrefix string   // first subject token of commands
	dsn        string   // real mode: the PostgreSQL database
}

// platformOpts adjust the platform's configuration per test.
type platformOpts struct {
	workerLatency time.Duration
	noStreams     bool
	postgresDSN   string // real mode: share this database instead of a fresh one
	// systems replace the worker's simulators (failure drills).
	systems *fulfillment.Adapters
	// planDefault is the plan version new orders pin (0: built-in).
	planDefault int
	// billingAsync runs the simulated billing asynchronously, deciding
	// after billingDelay and losing callbacks with billingDrop.
	billingAsync bool
	billingDelay time.Duration
	billingDrop  float64
	// after, real mode only, starts the platform on the database, topics
	// and subjects of an earlier one (a redeployment); close that first.
	after *env
}

// topic returns the namespaced name of a platform topic.
func (e *env) topic(name string) string {
	if e.topicPfx == "" {
		return name
	}
	return e.topicPfx + name
}

// group returns the namespaced name of a platform consumer group.
func (e *env) group(name string) string { return e.topicPfx + name }

// startPlatform starts a platform in mode m and closes it when the test
// ends. In embedded mode the test starts the in-process broker itself (in
// the test's data dir) so that it can produce to and read from the
// platform's topics; `grainline dev`, which lets the platform start its own
// broker, is covered by TestKillAndRestart.
func startPlatform(t *testing.T, m mode, o platformOpts) *env {
	t.Helper()
	if o.workerLatency == 0 {
		o.workerLatency = 20 * time.Millisecond
	}
	dir := t.TempDir()
	cfg := platform.Config{
		DataDir:                 dir,
		HTTPListen:              "127.0.0.1:0",
		NATSListen:              "127.0.0.1:0",
		WorkerLatency:           o.workerLatency,
		NoStreams:               o.noStreams,
		WorkerSystems:           o.systems,
		PlanDefault:             o.planDefault,
		BillingAsync:            o.billingAsync,
		BillingCallbackDelay:    o.billingDelay,
		BillingCallbackDropRate: o.billingDrop,
		Hub:                     hub.Config{AllowPrivate: true}, // the test's subscribers listen on loopback
		Log:                     testLogger(t),
	}
	e := &env{t: t, mode: m, natsPrefix: "grainline"}
	switch m {
	case embedded:
		if !o.noStreams {
			broker, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: filepath.Join(dir, "kafka")}, nil)
			if err != nil {
				t.Fatalf("start in-process broker: %v", err)
			}
			t.Cleanup(broker.Close)
			e.brokers = broker.Brokers()
			cfg.KafkaBrokers = e.brokers
		}
	case real:
		suffix := testenv.RandomSuffix()
		cfg.PostgresDSN = o.postgresDSN
		if cfg.PostgresDSN == "" {
			cfg.PostgresDSN = testenv.PostgresDB(t)
		}
		cfg.Migrate = true
		e.brokers = testenv.Kafka(t)
		cfg.KafkaBrokers = e.brokers
		cfg.NATSURL = testenv.NATS(t)
		e.topicPfx = "e2e-" + suffix + "-"
		e.natsPrefix = "gl" + suffix
		if o.after != nil {
			cfg.PostgresDSN, e.topicPfx, e.natsPrefix = o.after.dsn, o.after.topicPfx, o.after.natsPrefix
		} else {
			// Registered before the platform's close, so it runs after it.
			dropNamespaceOnCleanup(t, e.brokers, e.topicPfx)
		}
		cfg.TopicPrefix, cfg.NATSPrefix, e.dsn = e.topicPfx, e.natsPrefix, cfg.PostgresDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := platform.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start platform (%s): %v", m, err)
	}
	e.p = p
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("close platform: %v", err)
		}
	})
	return e
}

// token mints a token of tenant with roles, valid for the test.
func (e *env) token(tenant grains.TenantID, roles ...string) string {
	e.t.Helper()
	tok, err := e.p.Token(tenant, "e2e-"+string(tenant), roles, time.Hour)
	if err != nil {
		e.t.Fatalf("mint token: %v", err)
	}
	return tok
}

// salesApprover is a demo-tenant token that may run the whole quote journey.
func (e *env) salesApprover() string {
	return e.token(platform.DemoTenant, "sales", "approver")
}

// auditTrail reads the audit records of one aggregate from the truth store.
func auditTrail(t *testing.T, st truth.Store, key truth.Key) []truth.Audit {
	t.Helper()
	type trail interface {
		AuditTrail(ctx context.Context, key truth.Key) ([]truth.Audit, error)
	}
	tr, ok := st.(trail)
	if !ok {
		t.Fatalf("truth store %T has no AuditTrail", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recs, err := tr.AuditTrail(ctx, key)
	if err != nil {
		t.Fatalf("audit trail of %v: %v", key, err)
	}
	return recs
}

// countActions counts the audit records with action.
func countActions(recs []truth.Audit, action string) int {
	n := 0
	for _, r := range recs {
		if r.Action == action {
			n++
		}
	}
	return n
}

// eventually polls cond until it reports true or timeout passes; then the
// test fails with cond's last explanation.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 10 * time.Millisecond
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, why)
		}
		time.Sleep(wait)
		wait = min(wait*2, 250*time.Millisecond)
	}
}

// testLogger logs warnings and errors of the platform to the test log when
// GRAINLINE_E2E_LOG is set (e.g. "debug"), and nothing otherwise.
func testLogger(t *testing.T) *slog.Logger {
	lv := os.Getenv("GRAINLINE_E2E_LOG")
	if lv == "" {
		return slog.New(slog.DiscardHandler)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(lv)); err != nil {
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	defer func() { _ = recover() }() // a log line after the test ended
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func mustf(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}
