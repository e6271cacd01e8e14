package platform

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/internal/testenv"
)

// logCounter counts log records by message prefix, whatever the level.
type logCounter struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}
func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCounter) WithGroup(string) slog.Handler      { return h }
func (h *logCounter) count(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// redisServer is a private redis-server process, found on PATH as
// scripts/services.sh finds it.
type redisServer struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH (scripts/services.sh up redis installs it): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &redisServer{t: t, bin: bin, dir: t.TempDir(), port: port}
	r.start()
	t.Cleanup(func() {
		if r.cmd != nil {
			r.cmd.Process.Kill()
			r.cmd.Wait()
		}
	})
	return r
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.addr(), Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not answer: %v", r.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops redis-server with SIGKILL (kill -9) and reaps it.
func (r *redisServer) kill() {
	r.t.Helper()
	if err := r.cmd.Process.Kill(); err != nil {
		r.t.Fatalf("kill redis-server: %v", err)
	}
	r.cmd.Wait()
	r.cmd = nil
}

// cacheMetrics scrapes /metrics for the catalog cache's series.
func cacheMetrics(t *testing.T, httpAddr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "grainline_catalog_cache_") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		name = strings.TrimPrefix(name, "grainline_catalog_cache_requests_total")
		out[strings.Trim(strings.TrimPrefix(name, "{result="), `"}`)] = f
	}
	return out
}

// The outage drill: catalog reads and quote commands go through a private
// redis-server; it is killed with SIGKILL mid-run and everything keeps
// succeeding from the truth store, the outage logged once; after a restart
// the cache serves hits again.
func TestCatalogCacheOutageDrill(t *testing.T) {
	rs := startRedis(t)
	logs := &logCounter{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := Start(ctx, Config{
		DataDir: t.TempDir(), NoStreams: true, HTTPListen: "127.0.0.1:0", NATSListen: "127.0.0.1:0",
		RedisAddr: rs.addr(), Environment: "drill" + testenv.RandomSuffix(),
		CatalogMemoryTTL: -1, // every read goes to Redis or the store
		Log:              slog.New(logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	tok, err := p.Token(DemoTenant, "drill", []string{"sales"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path string, body any) (int, []byte) {
		t.Helper()
		var rd *bytes.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		} else {
			rd = bytes.NewReader(nil)
		}
		req, _ := http.NewRequest(method, "http://"+p.HTTPAddr+path, rd)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes()
	}
	// round reads the catalog and runs quote commands, each of which loads
	// the quote's catalog version; every one must succeed.
	round := func(phase string) {
		t.Helper()
		if st, b := call("GET", "/v1/catalog", nil); st != 200 {
			t.Fatalf("%s: GET /v1/catalog = %d %s", phase, st, b)
		} else {
			var c catalog.Catalog
			if err := json.Unmarshal(b, &c); err != nil || c.Version != 1 || len(c.Offerings) == 0 {
				t.Fatalf("%s: catalog %v %.80s", phase, err, b)
			}
		}
		st, b := call("POST", "/v1/quotes", map[string]string{"customerId": "c-1", "currency": "EUR"})
		if st != 201 {
			t.Fatalf("%s: create quote = %d %s", phase, st, b)
		}
		var q struct {
			ID string `json:"id"`
		}
		json.Unmarshal(b, &q)
		if st, b := call("POST", "/v1/quotes/"+q.ID+"/lines", map[string]any{"offeringId": "dia-1g", "quantity": 1}); st != 200 {
			t.Fatalf("%s: addLine = %d %s", phase, st, b)
		}
	}

	// Up: the first read fills Redis, later ones hit it.
	for i := 0; i < 3; i++ {
		round("redis up")
	}
	m := cacheMetrics(t, p.HTTPAddr)
	if m["hit"] < 1 || m["grainline_catalog_cache_up"] != 1 {
		t.Fatalf("with redis up: %v", m)
	}

	// Down: kill -9 mid-run; everything keeps working from the store.
	rs.kill()
	start := time.Now()
	for i := 0; i < 20; i++ {
		round("redis down")
	}
	m = cacheMetrics(t, p.HTTPAddr)
	hitsAtOutage := m["hit"]
	if m["error"] < 1 || m["grainline_catalog_cache_up"] != 0 {
		t.Fatalf("during the outage: %v", m)
	}
	if n := logs.count("redis catalog cache unavailable"); n != 1 {
		t.Fatalf("outage logged %d times, want once", n)
	}
	t.Logf("20 rounds during the outage took %s; metrics %v", time.Since(start), m)

	// Back: after a restart (empty, no persistence) the cache fills and
	// hits again.
	rs.start()
	deadline := time.Now().Add(30 * time.Second)
	for {
		round("redis back")
		m = cacheMetrics(t, p.HTTPAddr)
		if m["hit"] > hitsAtOutage && m["grainline_catalog_cache_up"] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache not used again after restart: %v", m)
		}
	}
	if n := logs.count("redis catalog cache is back"); n != 1 {
		t.Fatalf("recovery logged %d times, want once", n)
	}
	if n := logs.count("redis catalog cache unavailable"); n != 1 {
		t.Fatalf("outage logged %d times in all, want once", n)
	}
}
