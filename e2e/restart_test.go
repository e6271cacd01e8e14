package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
	embeddedstore "github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/connectors/truth/postgres"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/quote"
	"github.com/grainline/grainline/internal/testenv"
)

// The grainline binary is built once per test run, into binDir.
var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// grainlineBinary builds cmd/grainline (once) and returns its path.
func grainlineBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "grainline-e2e-")
		if binErr != nil {
			return
		}
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			goTool = "go"
		}
		binPath = filepath.Join(binDir, "grainline")
		out, err := exec.Command(goTool, "build", "-o", binPath, "github.com/grainline/grainline/cmd/grainline").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build cmd/grainline: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pick a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// devProcess is one `grainline dev` subprocess.
type devProcess struct {
	cmd      *exec.Cmd
	httpAddr string // from the "ready" line
	done     chan struct{}
	waitErr  error
	stderr   *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var readyLine = regexp.MustCompile(`^grainline dev ready: http://(\S+) `)

// startDev starts `grainline dev` with args and waits for its ready line
// and for /readyz to answer 200.
func startDev(t *testing.T, bin string, args ...string) *devProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"dev"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &devProcess{cmd: cmd, done: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start grainline dev: %v", err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case ready <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		d.waitErr = cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.kill(t)
		if t.Failed() {
			t.Logf("grainline dev (pid %d) stderr:\n%s", cmd.Process.Pid, d.stderr.String())
		}
	})
	select {
	case d.httpAddr = <-ready:
	case <-d.done:
		t.Fatalf("grainline dev exited before it was ready (%v):\n%s", d.waitErr, d.stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("grainline dev printed no ready line in 2m:\n%s", d.stderr.String())
	}
	probe := newHTTPDoor(d.httpAddr, "")
	eventually(t, journeyTimeout, func() (bool, string) {
		r := probe.request(t, "GET", "/readyz", nil, opts{})
		return r.Status == 200, fmt.Sprintf("/readyz %d: %s", r.Status, r.Body)
	})
	return d
}

// kill sends SIGKILL unless the process has exited, and waits for it.
func (d *devProcess) kill(t *testing.T) {
	t.Helper()
	select {
	case <-d.done:
		return
	default:
	}
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Logf("kill grainline dev: %v", err)
	}
	<-d.done
}

// stop sends SIGTERM and expects a clean exit within 60s.
func (d *devProcess) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM grainline dev: %v", err)
	}
	select {
	case <-d.done:
		if d.waitErr != nil {
			t.Fatalf("grainline dev exited with %v after SIGTERM:\n%s", d.waitErr, d.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("grainline dev did not exit within 60s of SIGTERM")
	}
}

// TestKillAndRestart runs `grainline dev` as a separate process, kills it
// with SIGKILL while an accepted quote's order is being fulfilled, starts it
// again on the same data (data dir, and in real mode the same database,
// topics and NATS server) and expects the journey to finish: the quote is
// unchanged, its one order completes.
func TestKillAndRestart(t *testing.T) {
	bin := grainlineBinary(t)
	eachMode(t, func(t *testing.T, m mode) {
		dataDir := t.TempDir()
		var shared []string
		var dsn string
		switch m {
		case embedded:
		case real:
			dsn = testenv.PostgresDB(t)
			brokers := testenv.Kafka(t)
			prefix := "e2e-" + testenv.RandomSuffix() + "-"
			// Registered before the processes start, so it runs after
			// they are stopped.
			dropNamespaceOnCleanup(t, brokers, prefix)
			shared = []string{
				"--postgres", dsn,
				"--kafka", strings.Join(brokers, ","),
				"--nats-url", testenv.NATS(t),
				"--topic-prefix", prefix,
			}
		}
		args := func() []string {
			return append([]string{
				"--data-dir", dataDir, "--http", freeAddr(t), "--nats", freeAddr(t),
				"--worker-latency", "2s", "--log-level", "warn",
			}, shared...)
		}

		first := startDev(t, bin, args()...)
		tok, err := exec.Command(bin, "token", "--data-dir", dataDir, "--tenant", "demo", "--roles", "sales,approver").Output()
		if err != nil {
			t.Fatalf("grainline token: %v", err)
		}
		token := strings.TrimSpace(string(tok))

		d := newHTTPDoor(first.httpAddr, token)
		quoteID := toApproved(t, d, firstOffering(t, d))
		accepted := acceptDocument(t, d, quoteID, renderDocument(t, d, quoteID))
		orderID := order.IDForQuote(quoteID)

		// Wait until the order exists and its task is with the (slow)
		// worker, then kill the process.
		var inFlight order.State
		eventually(t, journeyTimeout, func() (bool, string) {
			r := d.do(t, grains.KindOrder, "get", orderID, nil, opts{})
			if r.Status != 200 {
				return false, fmt.Sprintf("order %s: %d %s", orderID, r.Status, r.Body)
			}
			r.decode(t, &inFlight)
			return inFlight.Status == order.StatusInProgress, fmt.Sprintf("order %s is %q", orderID, inFlight.Status)
		})
		first.kill(t)
		killedAt := time.Now()

		second := startDev(t, bin, args()...)
		d = newHTTPDoor(second.httpAddr, token)
		q := d.do(t, grains.KindQuote, "get", quoteID, nil, opts{}).expect(t, "quote after restart", 200)
		var qv quoteView
		q.decode(t, &qv)
		if qv.Status != quote.StatusAccepted || q.ETag != accepted.ETag {
			t.Fatalf("quote after restart: status %q etag %s, want accepted at %s", qv.Status, q.ETag, accepted.ETag)
		}
		o := awaitOrder(t, d, quoteID, order.StatusCompleted)
		if o.ID != orderID || !allTasksDone(o) {
			t.Fatalf("order after restart: %+v", o)
		}
		q = d.do(t, grains.KindQuote, "get", quoteID, nil, opts{}).expect(t, "quote after completion", 200)
		q.decode(t, &qv)
		if qv.Order == nil || qv.Order.ID != orderID || q.ETag != accepted.ETag {
			t.Fatalf("quote after completion: link %+v etag %s", qv.Order, q.ETag)
		}
		second.stop(t)

		// The truth store holds one creation of the order.
		var st truth.Store
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if m == embedded {
			st, err = embeddedstore.Open(embeddedstore.Config{Dir: filepath.Join(dataDir, "truth")}, nil)
		} else {
			st, err = postgres.Open(ctx, postgres.Config{DSN: dsn}, nil)
		}
		if err != nil {
			t.Fatalf("open truth store: %v", err)
		}
		defer st.Close()
		trail := auditTrail(t, st, truth.Key{Tenant: "demo", Kind: string(grains.KindOrder), ID: orderID})
		if n := countActions(trail, order.CmdCreate); n != 1 {
			t.Fatalf("order %s created %d times: %+v", orderID, n, trail)
		}
		if n := countActions(trail, order.CmdCompleteTask); n != len(o.Tasks) {
			t.Fatalf("order %s: %d task completions for %d tasks: %+v", orderID, n, len(o.Tasks), trail)
		}
		// The kill was mid-journey: the task completed in the second process.
		for _, a := range trail {
			if a.Action == order.CmdCompleteTask && !a.At.After(killedAt) {
				t.Fatalf("task completed at %v, before the kill at %v: the kill was not mid-journey", a.At, killedAt)
			}
		}
	})
}
