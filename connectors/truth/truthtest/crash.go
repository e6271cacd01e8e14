package truthtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
)

// crashEnv carries the store location to the child process; its presence is
// what makes CrashChild act.
const crashEnv = "GRAINLINE_TRUTHTEST_CRASH_LOCATION"

const (
	crashTenant     = "crash"
	crashAggregates = 16
	crashBatch      = 4
	// crashAcks is how many acknowledged commits the parent waits for before
	// it kills the child; the kill then lands in the middle of a batch.
	crashAcks = 400
)

func crashKey(i int) truth.Key {
	return truth.Key{Tenant: crashTenant, Kind: "quote", ID: fmt.Sprintf("c%02d", i)}
}

func crashIdemKey(k truth.Key, rev int64) string { return fmt.Sprintf("%s@%d", k.ID, rev) }

// Crash is the kill -9 test. It re-executes the test binary running only
// childTest (a test that calls CrashChild), lets the child commit batches and
// print each acknowledged commit, SIGKILLs it mid-run, reopens the store and
// checks that every acknowledged commit is there, whole, and that the outbox,
// idempotency records and audit trail agree with the snapshots.
//
// The kill does not stop a database server: it may still commit the batch
// in flight after the child died. The check reads snapshots, outbox and
// records one after another, so such a commit landing in between would look
// torn. Harness.View (one consistent read) and Harness.Settle (wait until the
// child's writes have ended) each rule that out; an adapter whose writes end
// with the child's process needs neither.
func Crash(t *testing.T, h Harness, childTest string) {
	loc := h.NewLocation(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+childTest+"$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), crashEnv+"="+loc)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start crash child: %v", err)
	}

	acked := map[truth.Key]int64{}
	count := 0
	killed := false
	r := bufio.NewReader(out)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			// EOF: the child is gone. A trailing fragment without its newline
			// was cut by the kill and proves nothing.
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read crash child: %v", err)
			}
			break
		}
		var id string
		var rev int64
		if n, _ := fmt.Sscanf(line, "ACK %s %d\n", &id, &rev); n != 2 {
			continue // test framework chatter
		}
		k := truth.Key{Tenant: crashTenant, Kind: "quote", ID: id}
		if rev != acked[k]+1 {
			t.Fatalf("child acknowledged %s revision %d after %d", id, rev, acked[k])
		}
		acked[k] = rev
		count++
		if count == crashAcks && !killed {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatalf("kill child: %v", err)
			}
			killed = true
		}
	}
	werr := cmd.Wait()
	if !killed {
		t.Fatalf("crash child exited after %d acknowledged commits without being killed (%v); stderr:\n%s", count, werr, stderr.String())
	}
	if ctx.Err() != nil {
		t.Fatalf("crash child timed out; stderr:\n%s", stderr.String())
	}
	if ee := (*exec.ExitError)(nil); !errors.As(werr, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("crash child did not die by the signal: %v", werr)
	}
	t.Logf("child killed after %d acknowledged commits", count)

	// A view that reads one instant is checked first, while a write the
	// child started may still be landing; Settle then waits until none can,
	// after which the store's own reads (each at its own instant) agree too.
	if h.View != nil {
		view, end := h.View(t, loc)
		t.Run("ConsistentView", func(t *testing.T) { verifyCrash(t, view, acked) })
		end()
	}
	if h.Settle != nil {
		h.Settle(t, loc)
	}
	s := h.Open(t, loc)
	defer s.Close()
	t.Run("Store", func(t *testing.T) { verifyCrash(t, s, acked) })
}

// verifyCrash checks what r reads against the acknowledged revisions: every
// acknowledged commit is there, at most the batch in flight at the kill was
// added, and outbox, audit trail and idempotency records agree with the
// snapshots. r must read one consistent state: a commit landing between its
// reads would look like a torn commit.
func verifyCrash(t *testing.T, r Reader, acked map[truth.Key]int64) {
	ctx := context.Background()
	recs := pending(t, r)
	var stored int64
	for i := range crashAggregates {
		k := crashKey(i)
		snap, err := r.Load(ctx, k)
		var rev int64
		switch {
		case errors.Is(err, truth.ErrNotFound):
		case err != nil:
			t.Fatalf("Load %v: %v", k, err)
		default:
			rev = snap.Revision
			wantSnapshot(t, r, k, rev)
		}
		// Every acknowledged commit survived; at most the one batch in
		// flight at the kill may have landed without its acknowledgement.
		if rev < acked[k] || rev > acked[k]+1 {
			t.Fatalf("%v: stored revision %d, acknowledged %d", k, rev, acked[k])
		}
		stored += rev
		wantOutboxConsistent(t, recs, k, rev)
		if trail := auditTrail(t, r, k); int64(len(trail)) != rev {
			t.Fatalf("%v: %d audit records at revision %d", k, len(trail), rev)
		}
		for n := int64(1); n <= rev+1; n++ {
			rec, err := r.Idempotency(ctx, crashTenant, crashIdemKey(k, n))
			switch {
			case n <= rev && (err != nil || rec.Revision != n):
				t.Fatalf("%v: idempotency record of revision %d: %+v, %v", k, n, rec, err)
			case n > rev && !errors.Is(err, truth.ErrNotFound):
				t.Fatalf("%v: idempotency record beyond the stored revision %d: %v", k, rev, err)
			}
		}
	}
	if int64(len(recs)) != 2*stored {
		t.Fatalf("%d outbox records for %d stored commits", len(recs), stored)
	}
}

// CrashChild is the child side of Crash. It does nothing unless the test
// binary was started by Crash.
func CrashChild(t *testing.T, h Harness) {
	loc := os.Getenv(crashEnv)
	if loc == "" {
		t.Log("acts only as the child process of the crash test")
		return
	}
	s := h.Open(t, loc)
	ctx := context.Background()
	revs := make([]int64, crashAggregates)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	// Bounded so a parent that never kills cannot leave it running forever.
	for range 100_000 {
		picks := rng.Perm(crashAggregates)[:crashBatch]
		batch := make([]truth.Commit, len(picks))
		for n, p := range picks {
			k := crashKey(p)
			batch[n] = NewCommit(k, revs[p], crashIdemKey(k, revs[p]+1))
		}
		res, err := s.Commit(ctx, batch)
		if err != nil {
			t.Fatalf("crash child: Commit: %v", err)
		}
		var acks strings.Builder
		for n, p := range picks {
			if res[n] != nil {
				t.Fatalf("crash child: sole writer got %v", res[n])
			}
			revs[p]++
			fmt.Fprintf(&acks, "ACK %s %d\n", crashKey(p).ID, revs[p])
		}
		if _, err := os.Stdout.WriteString(acks.String()); err != nil {
			t.Fatalf("crash child: write acks: %v", err)
		}
	}
	t.Fatal("crash child was never killed")
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
