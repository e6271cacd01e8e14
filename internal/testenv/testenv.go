// Package testenv finds the real services that tests run against (PostgreSQL,
// Redis, NATS, Apache Kafka). ./scripts/services.sh starts them on loopback;
// the environment variables below point the tests elsewhere. A test that cannot
// reach its service fails with a message naming the service and how to start
// it; it never skips.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Defaults match scripts/services.sh.
const (
	DefaultPostgres = "postgres://grainline:grainline@127.0.0.1:55432/grainline?sslmode=disable"
	DefaultRedis    = "127.0.0.1:56379"
	DefaultNATS     = "nats://127.0.0.1:54222"
	DefaultKafka    = "127.0.0.1:59092"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func reachable(t testing.TB, service, addr, envVar string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatalf("%s is not reachable at %s (%v): start it with `./scripts/services.sh up %s`, or set %s",
			service, addr, err, strings.ToLower(service), envVar)
	}
	conn.Close()
}

// Postgres returns the DSN of the test PostgreSQL server (GRAINLINE_TEST_POSTGRES).
func Postgres(t testing.TB) string {
	t.Helper()
	dsn := env("GRAINLINE_TEST_POSTGRES", DefaultPostgres)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("GRAINLINE_TEST_POSTGRES: %v", err)
	}
	reachable(t, "PostgreSQL", u.Host, "GRAINLINE_TEST_POSTGRES")
	return dsn
}

// PostgresDB creates a fresh, empty database on the test server and returns
// its DSN; the database is dropped when the test ends.
func PostgresDB(t testing.TB) string {
	t.Helper()
	dsn := Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("PostgreSQL at %s refused the connection (%v): start it with `./scripts/services.sh up postgres`", dsn, err)
	}
	defer admin.Close(context.Background())
	name := "t_" + RandomSuffix()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, _ := url.Parse(dsn)
	u.Path = "/" + name
	return u.String()
}

// Redis returns the address of the test Redis server (GRAINLINE_TEST_REDIS).
func Redis(t testing.TB) string {
	t.Helper()
	addr := env("GRAINLINE_TEST_REDIS", DefaultRedis)
	reachable(t, "Redis", addr, "GRAINLINE_TEST_REDIS")
	return addr
}

// NATS returns the URL of the test nats-server (GRAINLINE_TEST_NATS).
func NATS(t testing.TB) string {
	t.Helper()
	raw := env("GRAINLINE_TEST_NATS", DefaultNATS)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("GRAINLINE_TEST_NATS: %v", err)
	}
	reachable(t, "NATS", u.Host, "GRAINLINE_TEST_NATS")
	return raw
}

// Kafka returns the bootstrap brokers of the test Apache Kafka
// (GRAINLINE_TEST_KAFKA, comma-separated).
func Kafka(t testing.TB) []string {
	t.Helper()
	brokers := strings.Split(env("GRAINLINE_TEST_KAFKA", DefaultKafka), ",")
	reachable(t, "Kafka", brokers[0], "GRAINLINE_TEST_KAFKA")
	return brokers
}

// RandomSuffix returns 12 random hex characters, for names that must not
// collide between tests (databases, topics, consumer groups).
func RandomSuffix() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}
