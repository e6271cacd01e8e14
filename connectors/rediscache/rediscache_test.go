package rediscache

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/internal/testenv"
)

// countingHandler counts log records by message.
type countingHandler struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.msgs == nil {
		h.msgs = map[string]int{}
	}
	h.msgs[r.Message]++
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
func (h *countingHandler) count(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for m, c := range h.msgs {
		if strings.HasPrefix(m, prefix) {
			n += c
		}
	}
	return n
}

func count(c *Cache, result string) int {
	return int(testutil.ToFloat64(c.requests.WithLabelValues(result)))
}

func TestKey(t *testing.T) {
	if got := Key("prod", "acme", 7); got != "prod:acme:catalog:v7" {
		t.Fatalf("Key = %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no addr":     {Env: "dev", TTL: time.Hour, Timeout: time.Second, ProbeInterval: time.Second},
		"colon env":   {Addr: "x:1", Env: "a:b", TTL: time.Hour, Timeout: time.Second, ProbeInterval: time.Second},
		"negative tt": {Addr: "x:1", Env: "dev", TTL: -1, Timeout: time.Second, ProbeInterval: time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

// Against the running Redis: a miss, a set, a hit under the documented key
// with a TTL, and isolation by environment, tenant and version.
func TestGetSetAgainstRedis(t *testing.T) {
	addr := testenv.Redis(t)
	env := "test" + testenv.RandomSuffix()
	c, err := New(Config{Addr: addr, Env: env, TTL: time.Minute, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Collectors()...)
	defer c.Close()
	ctx := context.Background()
	tenant := grains.TenantID("t-" + testenv.RandomSuffix())
	if _, ok := c.Get(ctx, tenant, 1); ok {
		t.Fatal("hit on an empty cache")
	}
	c.Set(ctx, tenant, 1, []byte(`{"version":1}`))
	raw, ok := c.Get(ctx, tenant, 1)
	if !ok || string(raw) != `{"version":1}` {
		t.Fatalf("Get = %s, %v", raw, ok)
	}
	for _, other := range []struct {
		tenant  grains.TenantID
		version int
	}{{tenant, 2}, {"someone-else", 1}} {
		if _, ok := c.Get(ctx, other.tenant, other.version); ok {
			t.Fatalf("hit for %s v%d", other.tenant, other.version)
		}
	}
	other, err := New(Config{Addr: addr, Env: env + "x", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, ok := other.Get(ctx, tenant, 1); ok {
		t.Fatal("another environment sees the entry")
	}

	rdb := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer rdb.Close()
	key := Key(env, tenant, 1)
	defer rdb.Del(ctx, key)
	ttl, err := rdb.PTTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("PTTL %s = %v, %v; want (0, 1m]", key, ttl, err)
	}
	if count(c, ResultHit) != 1 || count(c, ResultMiss) != 3 || count(c, ResultError) != 0 {
		t.Fatalf("hit %d miss %d error %d", count(c, ResultHit), count(c, ResultMiss), count(c, ResultError))
	}
	if n, err := testutil.GatherAndCount(reg, "grainline_catalog_cache_requests_total", "grainline_catalog_cache_up"); err != nil || n != 5 {
		t.Fatalf("registered series %d, %v", n, err)
	}
	if !c.Up() {
		t.Fatal("Up is false")
	}
}

// Concurrent readers and writers of the same entries (run with -race).
func TestConcurrentAgainstRedis(t *testing.T) {
	c, err := New(Config{Addr: testenv.Redis(t), Env: "test" + testenv.RandomSuffix(), TTL: time.Minute, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tenant := grains.TenantID("t-" + testenv.RandomSuffix())
	var wg sync.WaitGroup
	var bad atomic.Int32
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				v := i%4 + 1
				want := `{"version":` + string(rune('0'+v)) + `}`
				if raw, ok := c.Get(context.Background(), tenant, v); ok && string(raw) != want {
					bad.Add(1)
				}
				c.Set(context.Background(), tenant, v, []byte(want))
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 || count(c, ResultHit) == 0 || count(c, ResultError) != 0 {
		t.Fatalf("wrong values %d, hits %d, errors %d", bad.Load(), count(c, ResultHit), count(c, ResultError))
	}
}

// With Redis unreachable every call is a fast miss, the outage is logged
// once, and Redis is asked at most once per probe interval.
func TestUnreachableIsAMiss(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	h := &countingHandler{}
	c, err := New(Config{Addr: addr, Timeout: 100 * time.Millisecond, ProbeInterval: time.Hour, Log: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	for i := 0; i < 100; i++ {
		if _, ok := c.Get(context.Background(), "t", 1); ok {
			t.Fatal("hit without Redis")
		}
		c.Set(context.Background(), "t", 1, []byte("{}"))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("100 lookups during an outage took %s", d)
	}
	if count(c, ResultError) != 1 || count(c, ResultSkipped) != 99 {
		t.Fatalf("error %d skipped %d, want 1 and 99", count(c, ResultError), count(c, ResultSkipped))
	}
	if n := h.count("redis catalog cache unavailable"); n != 1 {
		t.Fatalf("outage logged %d times", n)
	}
	if c.Up() || testutil.ToFloat64(c.up) != 0 {
		t.Fatal("cache reports up during an outage")
	}
}
