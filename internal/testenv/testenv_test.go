package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

func TestPostgresAnswersQuery(t *testing.T) {
	dsn := Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	defer conn.Close(context.Background())
	var one int
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil {
		t.Fatalf("select 1: %v", err)
	}
	if one != 1 {
		t.Fatalf("select 1 returned %d", one)
	}
	// The truth store benchmarks measure durable commits: fsync must be on.
	var fsync string
	if err := conn.QueryRow(ctx, "show fsync").Scan(&fsync); err != nil {
		t.Fatalf("show fsync: %v", err)
	}
	if fsync != "on" {
		t.Fatalf("fsync = %q on the test server, want on", fsync)
	}
}

func databaseExists(t *testing.T, dsn, name string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "select count(*) from pg_database where datname = $1", name).Scan(&n); err != nil {
		t.Fatalf("look up database %s: %v", name, err)
	}
	return n == 1
}

func TestPostgresDBIsFreshAndDroppedAfterTest(t *testing.T) {
	admin := Postgres(t)
	var name string
	t.Run("use", func(t *testing.T) {
		dsn := PostgresDB(t)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse %s: %v", dsn, err)
		}
		name = strings.TrimPrefix(u.Path, "/")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect %s: %v", dsn, err)
		}
		defer conn.Close(context.Background())
		var current string
		if err := conn.QueryRow(ctx, "select current_database()").Scan(&current); err != nil {
			t.Fatalf("current_database: %v", err)
		}
		if current != name {
			t.Fatalf("connected to %q, want %q", current, name)
		}
		var tables int
		if err := conn.QueryRow(ctx, "select count(*) from pg_tables where schemaname = 'public'").Scan(&tables); err != nil {
			t.Fatalf("count tables: %v", err)
		}
		if tables != 0 {
			t.Fatalf("fresh database has %d tables", tables)
		}
		if _, err := conn.Exec(ctx, "create table t (id int primary key)"); err != nil {
			t.Fatalf("create table: %v", err)
		}
		if _, err := conn.Exec(ctx, "insert into t values (1), (2)"); err != nil {
			t.Fatalf("insert: %v", err)
		}
		// The connection stays open until after cleanup runs: the drop
		// must still succeed (WITH (FORCE)).
		t.Cleanup(func() { conn.Close(context.Background()) })
		if !databaseExists(t, admin, name) {
			t.Fatalf("database %s not listed while in use", name)
		}
	})
	if name == "" {
		t.Fatal("subtest did not record the database name")
	}
	if databaseExists(t, admin, name) {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}

func TestPostgresDBConcurrentCallsGetDistinctDatabases(t *testing.T) {
	Postgres(t)
	const n = 4
	var (
		mu    sync.Mutex
		names = map[string]bool{}
	)
	t.Run("group", func(t *testing.T) {
		for i := 0; i < n; i++ {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				dsn := PostgresDB(t)
				u, err := url.Parse(dsn)
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				mu.Lock()
				names[u.Path] = true
				mu.Unlock()
			})
		}
	})
	if len(names) != n {
		t.Fatalf("%d concurrent PostgresDB calls gave %d distinct databases: %v", n, len(names), names)
	}
}

func TestRedisAnswersPing(t *testing.T) {
	addr := Redis(t)
	rdb := redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true, // let ctx deadlines bound commands
		Protocol:              2,
		DisableIdentity:       true,
	})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if got, err := rdb.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING answered %q, %v; want PONG", got, err)
	}
	// A real round trip through a key, removed again.
	key := "grainline:testenv:" + RandomSuffix()
	if err := rdb.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, err := rdb.GetDel(ctx, key).Result(); err != nil || got != "v" {
		t.Fatalf("GETDEL = %q, %v", got, err)
	}
}

func TestNATSGreetsWithInfo(t *testing.T) {
	raw := NATS(t)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", u.Host, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read INFO: %v", err)
	}
	if !strings.HasPrefix(line, "INFO {") || !strings.Contains(line, `"server_id"`) {
		t.Fatalf("first line from NATS is %q, want an INFO line", line)
	}
}

func TestKafkaAnswersMetadata(t *testing.T) {
	brokers := Kafka(t)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_9_0_0
	cfg.ClientID = "grainline-testenv"
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 2
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatalf("sarama client for %v: %v", brokers, err)
	}
	defer client.Close()
	if got := client.Brokers(); len(got) == 0 {
		t.Fatalf("metadata from %v lists no brokers", brokers)
	}
	controller, err := client.Controller()
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	if controller.Addr() == "" {
		t.Fatal("controller has no address")
	}
	// Topics are provisioned from topology.yaml, never created by a producer
	// or a metadata request: the test broker must refuse to auto-create.
	topic := "testenv.absent." + RandomSuffix()
	_, err = client.Partitions(topic)
	if !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Fatalf("partitions of absent topic %s: err = %v, want %v (is auto.create.topics.enable off?)",
			topic, err, sarama.ErrUnknownTopicOrPartition)
	}
}

func TestRandomSuffix(t *testing.T) {
	hex12 := regexp.MustCompile(`^[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		s := RandomSuffix()
		if !hex12.MatchString(s) {
			t.Fatalf("RandomSuffix() = %q, want 12 hex characters", s)
		}
		if seen[s] {
			t.Fatalf("RandomSuffix() repeated %q", s)
		}
		seen[s] = true
	}
}

// fatalRecorder stands in for a test, recording the message of Fatalf and
// ending the goroutine as testing.T does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// unreachable returns a loopback address on which nothing listens.
func unreachable(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestMissingServiceFailsWithInstructions(t *testing.T) {
	addr := unreachable(t)
	cases := []struct {
		name, envVar, value, wantService string
		call                             func(testing.TB)
	}{
		{"postgres", "GRAINLINE_TEST_POSTGRES", "postgres://u:p@" + addr + "/db", "PostgreSQL", func(tb testing.TB) { Postgres(tb) }},
		{"redis", "GRAINLINE_TEST_REDIS", addr, "Redis", func(tb testing.TB) { Redis(tb) }},
		{"nats", "GRAINLINE_TEST_NATS", "nats://" + addr, "NATS", func(tb testing.TB) { NATS(tb) }},
		{"kafka", "GRAINLINE_TEST_KAFKA", addr, "Kafka", func(tb testing.TB) { Kafka(tb) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.envVar, tc.value)
			rec := &fatalRecorder{TB: t}
			done := make(chan struct{})
			returned := false
			go func() {
				defer close(done)
				tc.call(rec)
				returned = true
			}()
			<-done
			if returned {
				t.Fatalf("%s returned for an unreachable service instead of failing the test", tc.name)
			}
			for _, want := range []string{tc.wantService, addr, "scripts/services.sh up", tc.envVar} {
				if !strings.Contains(rec.msg, want) {
					t.Errorf("failure message %q does not mention %q", rec.msg, want)
				}
			}
		})
	}
}
