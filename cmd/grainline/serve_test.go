package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/grainline/grainline/connectors/truth/postgres"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/internal/testenv"
)

// The test binary doubles as the grainline binary: with this variable set
// it runs main's command dispatch instead of the tests, so tests can start
// real grainline processes without building one.
const runMainEnv = "GRAINLINE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// proc is one grainline process started by a test.
type proc struct {
	name  string
	cmd   *exec.Cmd
	ready chan string // the ready line
	logs  *bytes.Buffer
	mu    *sync.Mutex
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, ready: make(chan string, 1), logs: &bytes.Buffer{}, mu: &sync.Mutex{}}
	cmd.Stderr = lockedWriter{p}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), " ready") {
				p.ready <- sc.Text()
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("--- %s log (last 4 KiB) ---\n%s", name, tail(p.logs.String(), 4096))
			_ = os.WriteFile(filepath.Join(os.TempDir(), "grainline-"+name+".log"), p.logs.Bytes(), 0o644)
			p.mu.Unlock()
		}
	})
	return p
}

type lockedWriter struct{ p *proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.logs.Write(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-p.ready:
	case <-time.After(90 * time.Second):
		t.Fatalf("%s did not become ready", p.name)
	}
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func runCmd(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("grainline %v: exit %d: %s", args, code, errOut.String())
	}
	return strings.TrimSpace(out.String())
}

// api calls the gateway over HTTP.
type api struct {
	t     *testing.T
	base  string
	token string
}

func (a api) do(method, path, idemKey string, body any) (int, map[string]any) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, map[string]any{"error": err.Error()}
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// must retries a command with the same idempotency key while the cluster
// answers 503 (an owner moving), and fails on any other error.
func (a api) must(method, path, idemKey string, body any, want int) map[string]any {
	a.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		code, m := a.do(method, path, idemKey, body)
		if code == want {
			return m
		}
		if (code != http.StatusServiceUnavailable && code != 0) || time.Now().After(deadline) {
			a.t.Fatalf("%s %s: status %d %v, want %d", method, path, code, m, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var commitsMetric = regexp.MustCompile(`(?m)^grainline_committer_commits_total (\d+)`)

func commits(t *testing.T, httpAddr string) int {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics of %s: %v", httpAddr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := commitsMetric.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no committer metric at %s", httpAddr)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// migrateAndSeed migrates the database at dsn and stores the demo catalog.
func migrateAndSeed(t *testing.T, dsn string) {
	t.Helper()
	runCmd(t, "migrate", "up", "-postgres", dsn)
	store, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := platform.SeedCatalog(context.Background(), store, platform.DemoTenant, catalog.Demo(), time.Now()); err != nil {
		t.Fatal(err)
	}
}

// acceptQuote takes a new quote of one offering to accepted and returns
// its id; 503s (an owner moving) are retried.
func acceptQuote(t *testing.T, a api, key, offering string) string {
	t.Helper()
	q := a.must("POST", "/v1/quotes", "create-"+key, map[string]any{"customerId": "c", "currency": "EUR"}, http.StatusCreated)["id"].(string)
	a.must("POST", "/v1/quotes/"+q+"/lines", "line-"+key, map[string]any{"offeringId": offering, "quantity": 1}, http.StatusOK)
	for _, c := range []string{"price", "submit", "approve"} {
		a.must("POST", "/v1/quotes/"+q+"/"+c, c+"-"+key, map[string]any{}, http.StatusOK)
	}
	renderAndAccept(t, a, q, key)
	return q
}

// renderAndAccept renders and attaches the approved quote q's document and
// accepts q by its SHA-256. A render retried after a 503 (an owner moving)
// may find the document attached already (200).
func renderAndAccept(t *testing.T, a api, q, key string) {
	t.Helper()
	var doc map[string]any
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		code, m := a.do("POST", "/v1/quotes/"+q+"/document", "", map[string]any{})
		if code == http.StatusCreated || code == http.StatusOK {
			doc = m
			break
		}
		if (code != http.StatusServiceUnavailable && code != 0) || time.Now().After(deadline) {
			t.Fatalf("render document of %s: status %d %v", q, code, m)
		}
	}
	a.must("POST", "/v1/quotes/"+q+"/accept", "accept-"+key, map[string]any{"documentSha256": doc["sha256"]}, http.StatusOK)
}

// A worker process runs asynchronous simulated billing against a gateway
// in another process: it posts its callbacks to -billing-callback-url with
// tokens signed by -billing-callback-key, a key the gateway trusts for role
// billing only (-jwt-billing-keys). The order completes, its billing task by
// the callback; a token of that key with another role is refused.
func TestServeWorkerBillsAsynchronouslyThroughAnotherGateway(t *testing.T) {
	dsn := testenv.PostgresDB(t)
	brokers := strings.Join(testenv.Kafka(t), ",")
	natsURL := testenv.NATS(t)
	suffix := testenv.RandomSuffix()
	migrateAndSeed(t, dsn)

	userDir, billingDir := t.TempDir(), t.TempDir()
	userPub, billingPub := filepath.Join(userDir, "users.pub.pem"), filepath.Join(billingDir, "billing.pub.pem")
	token := runCmd(t, "token", "-data-dir", userDir, "-tenant", "demo", "-roles", "sales,approver,ops", "-public-key-out", userPub)
	runCmd(t, "token", "-data-dir", billingDir, "-public-key-out", billingPub)
	gwHTTP := freePort(t)
	prefix := "ab-" + suffix + "-"
	gateway := startProc(t, "gateway", "serve", "-roles", "node,gateway,relay,processors",
		"-postgres", dsn, "-kafka", brokers, "-nats-url", natsURL, "-nats-prefix", "ab"+suffix,
		"-jwt-public-keys", userPub, "-jwt-billing-keys", billingPub, "-http", fmt.Sprintf("127.0.0.1:%d", gwHTTP),
		"-topic-prefix", prefix, "-apply-topology")
	gateway.waitReady(t)
	worker := startProc(t, "worker", "serve", "-roles", "worker", "-postgres", dsn, "-kafka", brokers,
		"-http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-topic-prefix", prefix, "-worker-latency", "20ms",
		"-billing-async", "-billing-callback-delay", "50ms",
		"-billing-callback-url", fmt.Sprintf("http://127.0.0.1:%d/v1/callbacks/billing", gwHTTP),
		"-billing-callback-key", filepath.Join(billingDir, "keys", "dev-signing-key.pem"))
	worker.waitReady(t)

	a := api{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", gwHTTP), token: token}
	q := acceptQuote(t, a, "ab", "sdwan-edge-m")
	var orderID string
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, m := a.do("GET", "/v1/orders?quoteId="+q, "", nil)
		if items, _ := m["items"].([]any); len(items) == 1 && items[0].(map[string]any)["status"] == "completed" {
			orderID = items[0].(map[string]any)["id"].(string)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order of %s did not complete: %v", q, m)
		}
	}
	_, m := a.do("GET", "/v1/orders/"+orderID+"/tasks", "", nil)
	billed := 0
	items, _ := m["items"].([]any)
	for _, it := range items {
		task := it.(map[string]any)
		if task["type"] != "activateBilling" {
			continue
		}
		billed++
		if res, _ := task["result"].(map[string]any); task["status"] != "done" || res["via"] != "callback" {
			t.Errorf("billing task %v: want done by the callback", task)
		}
	}
	if billed == 0 {
		t.Fatalf("order %s has no billing task: %v", orderID, m)
	}
	forged := api{t: t, base: a.base, token: runCmd(t, "token", "-data-dir", billingDir, "-tenant", "demo", "-roles", "ops")}
	if status, body := forged.do("GET", "/v1/orders/"+orderID+"/fallout", "", nil); status != http.StatusUnauthorized {
		t.Fatalf("a token of the billing key with role ops: %d %v, want 401", status, body)
	}
}

// Two node processes and one process with every other role form one
// cluster over the automanaged membership. Commands reach grains on both
// nodes; when one node is killed, its grains reactivate on the other from
// PostgreSQL and the journey goes on.
func TestMultiProcessCluster(t *testing.T) {
	dsn := testenv.PostgresDB(t)
	brokers := strings.Join(testenv.Kafka(t), ",")
	natsURL := testenv.NATS(t)
	suffix := testenv.RandomSuffix()

	migrateAndSeed(t, dsn)
	keyDir := t.TempDir()
	pub := filepath.Join(keyDir, "signing.pub.pem")
	token := runCmd(t, "token", "-data-dir", keyDir, "-tenant", "demo", "-roles", "sales,approver", "-public-key-out", pub)

	type member struct{ cluster, admin, http int }
	nodes := []member{{freePort(t), freePort(t), freePort(t)}, {freePort(t), freePort(t), freePort(t)}}
	gw := member{freePort(t), freePort(t), freePort(t)}
	peers := fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d", nodes[0].admin, nodes[1].admin)
	var procs []*proc
	for i, n := range nodes {
		procs = append(procs, startProc(t, fmt.Sprintf("node-%d", i), "serve", "-roles", "node", "-postgres", dsn,
			"-http", fmt.Sprintf("127.0.0.1:%d", n.http),
			"-cluster-port", strconv.Itoa(n.cluster), "-cluster-admin-port", strconv.Itoa(n.admin), "-cluster-peers", peers,
			// The node names the topics of the events it commits.
			"-topic-prefix", "mp-"+suffix+"-"))
	}
	gateway := startProc(t, "gateway", "serve", "-roles", "gateway,relay,processors,worker",
		"-postgres", dsn, "-kafka", brokers, "-nats-url", natsURL, "-nats-prefix", "mp"+suffix,
		"-jwt-public-keys", pub, "-http", fmt.Sprintf("127.0.0.1:%d", gw.http),
		"-cluster-port", strconv.Itoa(gw.cluster), "-cluster-admin-port", strconv.Itoa(gw.admin), "-cluster-peers", peers,
		"-topic-prefix", "mp-"+suffix+"-", "-apply-topology", "-worker-latency", "20ms")
	for _, p := range append(procs, gateway) {
		p.waitReady(t)
	}
	a := api{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", gw.http), token: token}

	const quotes = 16
	ids := make([]string, quotes)
	for i := range ids {
		m := a.must("POST", "/v1/quotes", fmt.Sprintf("create-%d", i), map[string]any{"customerId": "c", "currency": "EUR"}, http.StatusCreated)
		ids[i] = m["id"].(string)
		a.must("POST", "/v1/quotes/"+ids[i]+"/lines", fmt.Sprintf("line-a-%d", i), map[string]any{"offeringId": "sdwan-edge-m", "quantity": 1}, http.StatusOK)
	}
	before := []int{commits(t, fmt.Sprintf("127.0.0.1:%d", nodes[0].http)), commits(t, fmt.Sprintf("127.0.0.1:%d", nodes[1].http))}
	if before[0] == 0 || before[1] == 0 || before[0]+before[1] != 2*quotes {
		t.Fatalf("commits per node = %v; want both nodes to host grains and %d commits in all", before, 2*quotes)
	}

	// Kill node 0 without warning; its grains move to node 1.
	procs[0].kill(t)
	for i, id := range ids {
		m := a.must("POST", "/v1/quotes/"+id+"/lines", fmt.Sprintf("line-b-%d", i), map[string]any{"offeringId": "sdwan-edge-m", "quantity": 2}, http.StatusOK)
		if lines := m["lines"].([]any); len(lines) != 2 {
			t.Fatalf("quote %s has %d lines after failover, want 2 (no lost or doubled update)", id, len(lines))
		}
	}
	if after := commits(t, fmt.Sprintf("127.0.0.1:%d", nodes[1].http)); after < before[1]+quotes {
		t.Fatalf("node 1 committed %d after failover, want >= %d", after, before[1]+quotes)
	}

	// The journey completes on the surviving node.
	q := ids[0]
	for _, c := range []string{"price", "submit", "approve"} {
		a.must("POST", "/v1/quotes/"+q+"/"+c, c+"-"+q, map[string]any{}, http.StatusOK)
	}
	// The gateway process renders the document into the shared store and
	// attaches it; acceptance names it.
	renderAndAccept(t, a, q, q)
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, m := a.do("GET", "/v1/orders?quoteId="+q, "", nil)
		if items, _ := m["items"].([]any); len(items) == 1 && items[0].(map[string]any)["status"] == "completed" {
			break
		}
		if time.Now().After(deadline) {
			pool, _ := pgxpool.New(context.Background(), dsn)
			rows, _ := pool.Query(context.Background(), "select topic, type, published_at is not null, count(*) from outbox group by 1,2,3 order by 1,2")
			for rows.Next() {
				var topic, typ string
				var pub bool
				var n int
				_ = rows.Scan(&topic, &typ, &pub, &n)
				t.Logf("outbox %s %s published=%v: %d", topic, typ, pub, n)
			}
			pool.Close()
			t.Fatalf("order of %s did not complete: %v", q, m)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
