// Package rediscache keeps published catalog versions in Redis, shared by
// every node of a deployment. A published version never changes, so an
// entry never needs invalidating; entries carry a TTL only so that versions
// nobody reads any more leave Redis.
//
// Redis is only a cache: every failure is a miss. Commands are bounded by a
// short timeout and are not retried; after a failure the cache stops asking
// Redis for ProbeInterval (a miss, counted as "skipped"), then tries again,
// so an outage costs each request nothing and a recovery is noticed within
// ProbeInterval. An outage is logged once when it starts and once when it
// ends, never per request.
package rediscache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/grainline/grainline/grains"
)

// Config configures a Cache.
type Config struct {
	// Addr is the Redis host:port. Required.
	Addr string
	// Env names the deployment environment; it is the first part of every
	// key. Default "dev".
	Env string
	// TTL is how long an entry lives. Default 24h.
	TTL time.Duration
	// Timeout bounds each Redis command, dial included. Default 50ms.
	Timeout time.Duration
	// ProbeInterval is how long the cache leaves Redis alone after a
	// failure. Default 1s.
	ProbeInterval time.Duration
	// Log receives the outage and recovery messages. Default slog.Default().
	Log *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Env == "" {
		c.Env = "dev"
	}
	if c.TTL == 0 {
		c.TTL = 24 * time.Hour
	}
	if c.Timeout == 0 {
		c.Timeout = 50 * time.Millisecond
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Validate checks the configuration: an address, an environment name
// without ':' and positive durations.
func (c Config) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("rediscache: Addr is required"))
	}
	for _, r := range c.Env {
		if r == ':' || r == ' ' {
			errs = append(errs, fmt.Errorf("rediscache: Env %q may not contain ':' or spaces", c.Env))
			break
		}
	}
	if c.TTL <= 0 || c.Timeout <= 0 || c.ProbeInterval <= 0 {
		errs = append(errs, errors.New("rediscache: TTL, Timeout and ProbeInterval must be positive"))
	}
	return errors.Join(errs...)
}

// Results of a lookup, the values of the metric's "result" label.
const (
	ResultHit     = "hit"
	ResultMiss    = "miss"
	ResultError   = "error"   // Redis failed or timed out
	ResultSkipped = "skipped" // Redis was left alone after a recent failure
)

// Cache is a Redis cache of published catalog versions. It is safe for
// concurrent use.
type Cache struct {
	cfg      Config
	rdb      *redis.Client
	requests *prometheus.CounterVec
	up       prometheus.Gauge

	mu        sync.Mutex
	down      bool
	nextProbe time.Time
}

// New returns a Cache for cfg. It does not contact Redis: a Redis that is
// down at start is an outage like any other.
func New(cfg Config) (*Cache, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cache{
		cfg: cfg,
		rdb: redis.NewClient(&redis.Options{
			Addr:                     cfg.Addr,
			ContextTimeoutEnabled:    true, // ctx deadlines bound commands
			DialTimeout:              cfg.Timeout,
			ReadTimeout:              cfg.Timeout,
			WriteTimeout:             cfg.Timeout,
			PoolTimeout:              cfg.Timeout,
			MaxRetries:               -1, // a cache does not retry: the store answers instead
			Protocol:                 2,  // open-source Redis knows no maintenance notifications
			DisableIdentity:          true,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grainline_catalog_cache_requests_total",
			Help: "Lookups of catalog versions in the Redis cache, by result (hit, miss, error, skipped).",
		}, []string{"result"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "grainline_catalog_cache_up",
			Help: "1 while the Redis catalog cache answers, 0 during an outage.",
		}),
	}
	c.up.Set(1)
	for _, r := range []string{ResultHit, ResultMiss, ResultError, ResultSkipped} {
		c.requests.WithLabelValues(r)
	}
	return c, nil
}

// Collectors returns the cache's metrics, for a Prometheus registry:
// grainline_catalog_cache_requests_total{result} and
// grainline_catalog_cache_up.
func (c *Cache) Collectors() []prometheus.Collector {
	return []prometheus.Collector{c.requests, c.up}
}

// Key is the Redis key of a tenant's catalog version:
// "<env>:<tenant>:catalog:v<version>".
func Key(env string, tenant grains.TenantID, version int) string {
	return env + ":" + string(tenant) + ":catalog:v" + strconv.Itoa(version)
}

// Get returns the cached catalog document of tenant's version; false on a
// miss, and on any failure.
func (c *Cache) Get(ctx context.Context, tenant grains.TenantID, version int) ([]byte, bool) {
	if !c.mayTry() {
		c.requests.WithLabelValues(ResultSkipped).Inc()
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	raw, err := c.rdb.Get(ctx, Key(c.cfg.Env, tenant, version)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		c.ok()
		c.requests.WithLabelValues(ResultMiss).Inc()
		return nil, false
	case err != nil:
		c.failed(err)
		c.requests.WithLabelValues(ResultError).Inc()
		return nil, false
	}
	c.ok()
	c.requests.WithLabelValues(ResultHit).Inc()
	return raw, true
}

// Set stores the catalog document of tenant's version; a failure drops it.
func (c *Cache) Set(ctx context.Context, tenant grains.TenantID, version int, raw []byte) {
	if !c.mayTry() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	if err := c.rdb.Set(ctx, Key(c.cfg.Env, tenant, version), raw, c.cfg.TTL).Err(); err != nil {
		c.failed(err)
		return
	}
	c.ok()
}

// Up reports whether the last command reached Redis.
func (c *Cache) Up() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.down
}

// Close releases the connections.
func (c *Cache) Close() error { return c.rdb.Close() }

// mayTry reports whether to ask Redis: always while it is up, once per
// ProbeInterval while it is down.
func (c *Cache) mayTry() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.down {
		return true
	}
	now := time.Now()
	if now.Before(c.nextProbe) {
		return false
	}
	c.nextProbe = now.Add(c.cfg.ProbeInterval)
	return true
}

func (c *Cache) failed(err error) {
	c.mu.Lock()
	was := c.down
	c.down = true
	c.nextProbe = time.Now().Add(c.cfg.ProbeInterval)
	c.mu.Unlock()
	if !was {
		c.up.Set(0)
		c.cfg.Log.Warn("redis catalog cache unavailable; serving catalogs from memory and the truth store",
			slog.String("addr", c.cfg.Addr), slog.String("error", err.Error()))
	}
}

func (c *Cache) ok() {
	c.mu.Lock()
	was := c.down
	c.down = false
	c.mu.Unlock()
	if was {
		c.up.Set(1)
		c.cfg.Log.Info("redis catalog cache is back", slog.String("addr", c.cfg.Addr))
	}
}
