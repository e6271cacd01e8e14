package truthtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
)

// Run runs the conformance suite; every subtest gets a fresh store.
func Run(t *testing.T, h Harness) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"Roundtrip", testRoundtrip},
		{"NotFound", testNotFound},
		{"RevisionConflict", testRevisionConflict},
		{"InvalidCommit", testInvalidCommit},
		{"TenantIsolation", testTenantIsolation},
		{"Atomicity", testAtomicity},
		{"ConflictFailsOnlyItsRow", testConflictFailsOnlyItsRow},
		{"SameAggregateTwiceInBatch", testSameAggregateInBatch},
		{"IdempotencyRecord", testIdempotencyRecord},
		{"IdempotencyConflict", testIdempotencyConflict},
		{"OutboxOrderAndAck", testOutbox},
		{"ConcurrentCommits", testConcurrent},
		{"ConcurrentSameIdempotencyKey", testConcurrentIdempotency},
		{"Reopen", testReopen},
		{"Timers", runTimers},
		{"AuditChain", runChain},
		{"Artifacts", runArtifacts},
		{"Attempts", runAttempts},
		{"SnapshotList", testSnapshotList},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

var quote = func(id string) truth.Key { return truth.Key{Tenant: "acme", Kind: "quote", ID: id} }

func testRoundtrip(t *testing.T, h Harness) {
	s, _ := open(t, h)
	k := quote("q1")
	mustCommit(t, s, NewCommit(k, 0, ""))
	wantSnapshot(t, s, k, 1)
	mustCommit(t, s, NewCommit(k, 1, ""))
	wantSnapshot(t, s, k, 2)

	// Empty state is kept as given (no bytes), not lost.
	e := quote("empty")
	c := NewCommit(e, 0, "")
	c.Snapshot.State = []byte{}
	mustCommit(t, s, c)
	if snap := load(t, s, e); snap.Revision != 1 || len(snap.State) != 0 {
		t.Fatalf("empty state: got rev %d state %q", snap.Revision, snap.State)
	}
	// An empty batch is fine and returns no results.
	if res, err := s.Commit(context.Background(), nil); err != nil || len(res) != 0 {
		t.Fatalf("empty batch: %v, %v", res, err)
	}
}

func testNotFound(t *testing.T, h Harness) {
	s, _ := open(t, h)
	wantMissing(t, s, quote("nope"))
	mustCommit(t, s, NewCommit(quote("q1"), 0, "k1"))
	wantMissing(t, s, truth.Key{Tenant: "acme", Kind: "order", ID: "q1"})
	if _, err := s.Idempotency(context.Background(), "acme", "nope"); !errors.Is(err, truth.ErrNotFound) {
		t.Fatalf("Idempotency of unknown key: got %v, want ErrNotFound", err)
	}
}

func testRevisionConflict(t *testing.T, h Harness) {
	s, _ := open(t, h)
	k := quote("q1")
	mustCommit(t, s, NewCommit(k, 0, ""))
	// Create on an existing aggregate, a stale update, an update from the
	// future, and an update of an aggregate that does not exist.
	wantResults(t, commitAll(t, s, NewCommit(k, 0, "")), truth.ErrRevisionConflict)
	mustCommit(t, s, NewCommit(k, 1, ""))
	wantResults(t, commitAll(t, s, NewCommit(k, 1, "")), truth.ErrRevisionConflict)
	wantResults(t, commitAll(t, s, NewCommit(k, 5, "")), truth.ErrRevisionConflict)
	wantResults(t, commitAll(t, s, NewCommit(quote("ghost"), 3, "")), truth.ErrRevisionConflict)
	wantSnapshot(t, s, k, 2)
	wantMissing(t, s, quote("ghost"))
	wantOutboxConsistent(t, pending(t, s), k, 2)
}

func testInvalidCommit(t *testing.T, h Harness) {
	s, _ := open(t, h)
	bad := NewCommit(quote("bad"), 0, "")
	bad.Snapshot.Revision = 5
	empty := NewCommit(truth.Key{Tenant: "acme", Kind: "quote"}, 0, "")
	res := commitAll(t, s, bad, NewCommit(quote("good"), 0, ""), empty)
	wantResults(t, res, errInvalid, nil, errInvalid)
	for _, err := range []error{res[0], res[2]} {
		if errors.Is(err, truth.ErrRevisionConflict) || errors.Is(err, truth.ErrIdempotencyConflict) {
			t.Errorf("invalid commit reported as a conflict: %v", err)
		}
	}
	wantMissing(t, s, quote("bad"))
	wantSnapshot(t, s, quote("good"), 1)
}

func testTenantIsolation(t *testing.T, h Harness) {
	s, _ := open(t, h)
	a := truth.Key{Tenant: "a", Kind: "quote", ID: "q1"}
	b := truth.Key{Tenant: "b", Kind: "quote", ID: "q1"}
	mustCommit(t, s, NewCommit(a, 0, "same-key"))
	wantMissing(t, s, b)
	// Same kind/id and the same idempotency key in another tenant are distinct.
	mustCommit(t, s, NewCommit(b, 0, "same-key"))
	mustCommit(t, s, NewCommit(b, 1, ""))
	wantSnapshot(t, s, a, 1)
	wantSnapshot(t, s, b, 2)
	for _, k := range []truth.Key{a, b} {
		rec, err := s.Idempotency(context.Background(), k.Tenant, "same-key")
		if err != nil || rec.Aggregate != k {
			t.Fatalf("Idempotency(%s, same-key) = %+v, %v; want the record of %v", k.Tenant, rec, err, k)
		}
	}
	// Keys whose parts contain separators must not collide. (PostgreSQL text
	// cannot hold NUL, so keys never contain it.)
	tricky := []truth.Key{
		{Tenant: "a/b", Kind: "c", ID: "d"},
		{Tenant: "a", Kind: "b/c", ID: "d"},
		{Tenant: "a", Kind: "b", ID: "c/d"},
		{Tenant: "a", Kind: "b", ID: "c\x01d"},
		{Tenant: "a:b", Kind: "c", ID: "d"},
	}
	for _, k := range tricky {
		mustCommit(t, s, NewCommit(k, 0, fmt.Sprintf("k%q%q", k.Kind, k.ID)))
	}
	for _, k := range tricky {
		wantSnapshot(t, s, k, 1)
		if got := auditTrail(t, s, k); len(got) != 1 || got[0].Aggregate != k {
			t.Fatalf("audit trail of %q: %+v", k, got)
		}
	}
	if _, err := s.Idempotency(context.Background(), "a/b", `k"c""d"`); err != nil {
		t.Fatalf("idempotency in tenant a/b: %v", err)
	}
	if _, err := s.Idempotency(context.Background(), "a", `k"c""d"`); !errors.Is(err, truth.ErrNotFound) {
		t.Fatalf("idempotency key must not leak across a tenant/key boundary: %v", err)
	}
	recs := pending(t, s)
	if n := len(eventsOf(recs, a)); n != 2 {
		t.Fatalf("tenant a has %d outbox events, want 2", n)
	}
	if n := len(eventsOf(recs, b)); n != 4 {
		t.Fatalf("tenant b has %d outbox events, want 4", n)
	}
}

func testAtomicity(t *testing.T, h Harness) {
	s, _ := open(t, h)
	ctx := context.Background()
	k := quote("q1")
	first := NewCommit(k, 0, "idem-1")
	mustCommit(t, s, first)
	wantSnapshot(t, s, k, 1)
	wantOutboxConsistent(t, pending(t, s), k, 1)
	if rec, err := s.Idempotency(ctx, "acme", "idem-1"); err != nil || !sameIdem(rec, *first.Idempotency) {
		t.Fatalf("Idempotency = %+v, %v", rec, err)
	}
	if trail := auditTrail(t, s, k); len(trail) != 1 || !sameAudit(trail[0], first.Audit[0]) {
		t.Fatalf("audit trail = %+v", trail)
	}

	// A conflicting commit leaves none of its parts behind.
	stale := NewCommit(k, 0, "idem-2")
	stale.Events[0].EventID += "-stale"
	stale.Events[1].EventID += "-stale"
	wantResults(t, commitAll(t, s, stale), truth.ErrRevisionConflict)
	wantSnapshot(t, s, k, 1)
	wantOutboxConsistent(t, pending(t, s), k, 1)
	if _, err := s.Idempotency(ctx, "acme", "idem-2"); !errors.Is(err, truth.ErrNotFound) {
		t.Fatalf("a failed commit left its idempotency record: %v", err)
	}
	if trail := auditTrail(t, s, k); len(trail) != 1 {
		t.Fatalf("a failed commit left audit records: %+v", trail)
	}
}

func testConflictFailsOnlyItsRow(t *testing.T, h Harness) {
	s, _ := open(t, h)
	taken := quote("taken")
	mustCommit(t, s, NewCommit(taken, 0, ""))
	res := commitAll(t, s,
		NewCommit(quote("a"), 0, "ka"),
		NewCommit(taken, 0, "kt"), // conflicts
		NewCommit(quote("b"), 0, "kb"),
		NewCommit(taken, 1, "kt2"), // chains on the stored revision: fine
		NewCommit(quote("c"), 0, ""),
	)
	wantResults(t, res, nil, truth.ErrRevisionConflict, nil, nil, nil)
	for _, id := range []string{"a", "b", "c"} {
		wantSnapshot(t, s, quote(id), 1)
	}
	wantSnapshot(t, s, taken, 2)
	if _, err := s.Idempotency(context.Background(), "acme", "kt"); !errors.Is(err, truth.ErrNotFound) {
		t.Fatalf("conflicting commit's idempotency record was written: %v", err)
	}
	recs := pending(t, s)
	if len(recs) != 2*5 {
		t.Fatalf("%d outbox records, want 10", len(recs))
	}
	wantOutboxConsistent(t, recs, taken, 2)
}

func testSameAggregateInBatch(t *testing.T, h Harness) {
	s, _ := open(t, h)
	k := quote("q1")
	// Chained: the second expects the revision the first produces.
	wantResults(t, commitAll(t, s, NewCommit(k, 0, "c1"), NewCommit(k, 1, "c2"), NewCommit(k, 2, "")), nil, nil, nil)
	wantSnapshot(t, s, k, 3)
	// Not chained: both expect 3, the first wins.
	wantResults(t, commitAll(t, s, NewCommit(k, 3, ""), NewCommit(k, 3, "lost")), nil, truth.ErrRevisionConflict)
	wantSnapshot(t, s, k, 4)
	// A failed commit does not advance the chain.
	wantResults(t, commitAll(t, s, NewCommit(k, 9, ""), NewCommit(k, 4, ""), NewCommit(k, 10, "")),
		truth.ErrRevisionConflict, nil, truth.ErrRevisionConflict)
	wantSnapshot(t, s, k, 5)
	wantOutboxConsistent(t, pending(t, s), k, 5)
	if _, err := s.Idempotency(context.Background(), "acme", "lost"); !errors.Is(err, truth.ErrNotFound) {
		t.Fatalf("losing commit's idempotency record was written: %v", err)
	}
	if trail := auditTrail(t, s, k); len(trail) != 5 {
		t.Fatalf("%d audit records, want 5", len(trail))
	} else {
		for i, a := range trail {
			if a.Revision != int64(i+1) {
				t.Fatalf("audit record %d has revision %d", i, a.Revision)
			}
		}
	}
}

func testIdempotencyRecord(t *testing.T, h Harness) {
	s, _ := open(t, h)
	k := quote("q1")
	c := NewCommit(k, 0, "req-42")
	c.Idempotency.Response = []byte(`{"status":"created","revision":1}`)
	mustCommit(t, s, c)
	got, err := s.Idempotency(context.Background(), "acme", "req-42")
	if err != nil {
		t.Fatal(err)
	}
	if !sameIdem(got, *c.Idempotency) {
		t.Fatalf("Idempotency = %+v, want %+v", got, *c.Idempotency)
	}
}

func testIdempotencyConflict(t *testing.T, h Harness) {
	s, _ := open(t, h)
	ctx := context.Background()
	mustCommit(t, s, NewCommit(quote("x"), 0, "K"))

	// A recorded key fails only its own commit, and beats a stale revision.
	res := commitAll(t, s, NewCommit(quote("y"), 0, "K"), NewCommit(quote("z"), 0, "fresh"), NewCommit(quote("x"), 0, "K"))
	wantResults(t, res, truth.ErrIdempotencyConflict, nil, truth.ErrIdempotencyConflict)
	wantMissing(t, s, quote("y"))
	wantSnapshot(t, s, quote("z"), 1)
	if rec, err := s.Idempotency(ctx, "acme", "K"); err != nil || rec.Aggregate != quote("x") {
		t.Fatalf("K now names %+v, %v; want the first record", rec, err)
	}

	// The same key twice in one batch: the first wins.
	res = commitAll(t, s, NewCommit(quote("a"), 0, "K2"), NewCommit(quote("b"), 0, "K2"))
	wantResults(t, res, nil, truth.ErrIdempotencyConflict)
	wantMissing(t, s, quote("b"))

	// ... unless the first fails for another reason.
	res = commitAll(t, s, NewCommit(quote("a"), 0, "K3"), NewCommit(quote("c"), 0, "K3"))
	wantResults(t, res, truth.ErrRevisionConflict, nil)
	if rec, err := s.Idempotency(ctx, "acme", "K3"); err != nil || rec.Aggregate != quote("c") {
		t.Fatalf("K3 names %+v, %v; want c's record", rec, err)
	}
	recs := pending(t, s)
	for _, id := range []string{"x", "z", "a", "c"} {
		wantOutboxConsistent(t, recs, quote(id), 1)
	}
	if len(recs) != 8 {
		t.Fatalf("%d outbox records, want 8", len(recs))
	}
}

func testOutbox(t *testing.T, h Harness) {
	s, _ := open(t, h)
	ctx := context.Background()
	keys := []truth.Key{quote("a"), quote("b"), quote("c")}
	revs := map[truth.Key]int64{}
	// Interleave aggregates across batches and within them.
	for round := range 4 {
		var batch []truth.Commit
		for i := range keys {
			k := keys[(i+round)%len(keys)]
			batch = append(batch, NewCommit(k, revs[k], ""))
			revs[k]++
		}
		mustCommit(t, s, batch...)
	}
	all := pending(t, s)
	if len(all) != 2*12 {
		t.Fatalf("%d pending, want 24", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("PendingOutbox not in seq order: %d after %d", all[i].Seq, all[i-1].Seq)
		}
	}
	for _, k := range keys {
		wantOutboxConsistent(t, all, k, 4)
	}
	first, err := s.PendingOutbox(ctx, 5)
	if err != nil || len(first) != 5 || first[0].Seq != all[0].Seq || first[4].Seq != all[4].Seq {
		t.Fatalf("PendingOutbox(5) = %d records, %v; want the first 5", len(first), err)
	}

	// Ack out of order and in pieces; acked records never come back.
	acked := map[int64]bool{}
	var seqs []int64
	for i := 0; i < len(all); i += 2 {
		seqs = append(seqs, all[i].Seq)
		acked[all[i].Seq] = true
	}
	seqs[0], seqs[len(seqs)-1] = seqs[len(seqs)-1], seqs[0]
	if err := s.AckOutbox(ctx, seqs); err != nil {
		t.Fatal(err)
	}
	if err := s.AckOutbox(ctx, seqs[:3]); err != nil {
		t.Fatalf("acking twice must be harmless: %v", err)
	}
	if err := s.AckOutbox(ctx, nil); err != nil {
		t.Fatalf("empty ack: %v", err)
	}
	rest := pending(t, s)
	if len(rest) != len(all)-len(seqs) {
		t.Fatalf("%d pending after ack, want %d", len(rest), len(all)-len(seqs))
	}
	for _, r := range rest {
		if acked[r.Seq] {
			t.Fatalf("acked record %d returned again", r.Seq)
		}
	}
	// New commits come after everything before them.
	mustCommit(t, s, NewCommit(quote("a"), 4, ""))
	after := pending(t, s)
	if last := after[len(after)-1]; last.Event.Revision != 5 || last.Seq <= all[len(all)-1].Seq {
		t.Fatalf("new event seq %d rev %d, want after %d", last.Seq, last.Event.Revision, all[len(all)-1].Seq)
	}
	var restSeqs []int64
	for _, r := range after {
		restSeqs = append(restSeqs, r.Seq)
	}
	if err := s.AckOutbox(ctx, restSeqs); err != nil {
		t.Fatal(err)
	}
	if left := pending(t, s); len(left) != 0 {
		t.Fatalf("%d records left after acking all", len(left))
	}
}

// testConcurrent runs many writers on overlapping aggregates, each with a
// compare-and-set retry loop and batches of two commits in random order.
func testConcurrent(t *testing.T, h Harness) {
	s, _ := open(t, h)
	const (
		writers    = 16
		perWriter  = 50
		aggregates = 8
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	keys := make([]truth.Key, aggregates)
	for i := range keys {
		keys[i] = quote(fmt.Sprintf("hot-%d", i))
	}
	var wins [aggregates]atomic.Int64
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			known := map[int]int64{} // this writer's view of each revision
			done := 0
			for done < perWriter {
				if ctx.Err() != nil {
					errs <- fmt.Errorf("writer %d: %w after %d commits", w, ctx.Err(), done)
					return
				}
				i, j := rng.IntN(aggregates), rng.IntN(aggregates)
				picks := []int{i}
				if j != i && done+1 < perWriter {
					picks = append(picks, j)
				}
				batch := make([]truth.Commit, len(picks))
				for n, p := range picks {
					batch[n] = NewCommit(keys[p], known[p], fmt.Sprintf("w%d-%d-%d", w, done, n))
				}
				res, err := s.Commit(ctx, batch)
				if err != nil {
					errs <- fmt.Errorf("writer %d: batch error: %w", w, err)
					return
				}
				for n, p := range picks {
					switch {
					case res[n] == nil:
						known[p]++
						wins[p].Add(1)
						done++
					case errors.Is(res[n], truth.ErrRevisionConflict):
						conflicts.Add(1)
						snap, err := s.Load(ctx, keys[p])
						switch {
						case errors.Is(err, truth.ErrNotFound):
							known[p] = 0
						case err != nil:
							errs <- fmt.Errorf("writer %d: reload: %w", w, err)
							return
						default:
							known[p] = snap.Revision
						}
					default:
						errs <- fmt.Errorf("writer %d: commit %v: %w", w, keys[p], res[n])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	recs := pending(t, s)
	var total int64
	for i, k := range keys {
		n := wins[i].Load()
		total += n
		if n == 0 {
			continue
		}
		wantSnapshot(t, s, k, n)
		wantOutboxConsistent(t, recs, k, n)
		if trail := auditTrail(t, s, k); int64(len(trail)) != n {
			t.Fatalf("%v: %d audit records, want %d", k, len(trail), n)
		}
	}
	if total != writers*perWriter || int64(len(recs)) != 2*total {
		t.Fatalf("%d successful commits (want %d), %d outbox records (want %d)", total, writers*perWriter, len(recs), 2*total)
	}
	t.Logf("%d commits, %d revision conflicts retried", total, conflicts.Load())
}

func testReopen(t *testing.T, h Harness) {
	loc := h.NewLocation(t)
	s := h.Open(t, loc)
	k := quote("q1")
	mustCommit(t, s, NewCommit(k, 0, "r1"), NewCommit(quote("q2"), 0, ""))
	mustCommit(t, s, NewCommit(k, 1, "r2"))
	before := pending(t, s)
	if err := s.AckOutbox(context.Background(), []int64{before[0].Seq}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = h.Open(t, loc)
	t.Cleanup(func() { _ = s.Close() })
	wantSnapshot(t, s, k, 2)
	wantSnapshot(t, s, quote("q2"), 1)
	if _, err := s.Idempotency(context.Background(), "acme", "r2"); err != nil {
		t.Fatalf("idempotency record lost on reopen: %v", err)
	}
	after := pending(t, s)
	if len(after) != len(before)-1 || after[0].Seq != before[1].Seq {
		t.Fatalf("outbox after reopen: %d records from seq %d; want %d from %d",
			len(after), after[0].Seq, len(before)-1, before[1].Seq)
	}
	if trail := auditTrail(t, s, k); len(trail) != 2 {
		t.Fatalf("audit trail after reopen: %d records", len(trail))
	}
	// Sequences continue after the old ones.
	mustCommit(t, s, NewCommit(k, 2, ""))
	last := pending(t, s)
	if got := last[len(last)-1]; got.Seq <= before[len(before)-1].Seq || got.Event.Revision != 3 {
		t.Fatalf("seq after reopen %d (rev %d), want above %d", got.Seq, got.Event.Revision, before[len(before)-1].Seq)
	}
}

// testConcurrentIdempotency races many commits to different aggregates under
// one idempotency key: exactly one lands, the others fail with
// ErrIdempotencyConflict and leave nothing behind.
func testConcurrentIdempotency(t *testing.T, h Harness) {
	s, _ := open(t, h)
	const racers = 12
	for round := range 5 {
		key := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		res := make([]error, racers)
		start := make(chan struct{})
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// Pad the batch so the racer also has work that must survive.
				r, err := s.Commit(context.Background(), []truth.Commit{
					NewCommit(quote(fmt.Sprintf("r%d-%d", round, i)), 0, key),
					NewCommit(quote(fmt.Sprintf("pad%d-%d", round, i)), 0, ""),
				})
				if err != nil {
					res[i] = fmt.Errorf("batch error: %w", err)
					return
				}
				if r[1] != nil {
					res[i] = fmt.Errorf("padding commit failed: %w", r[1])
					return
				}
				res[i] = r[0]
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range res {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: racers %d and %d both recorded %s", round, winner, i, key)
			case err == nil:
				winner = i
			case !errors.Is(err, truth.ErrIdempotencyConflict):
				t.Fatalf("round %d racer %d: %v", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody recorded %s", round, key)
		}
		rec, err := s.Idempotency(context.Background(), "acme", key)
		if err != nil || rec.Aggregate != quote(fmt.Sprintf("r%d-%d", round, winner)) {
			t.Fatalf("round %d: record %+v, %v; want racer %d", round, rec, err, winner)
		}
		recs := pending(t, s)
		for i := range racers {
			k := quote(fmt.Sprintf("r%d-%d", round, i))
			if i == winner {
				wantSnapshot(t, s, k, 1)
				wantOutboxConsistent(t, recs, k, 1)
				continue
			}
			wantMissing(t, s, k)
			wantOutboxConsistent(t, recs, k, 0)
			wantSnapshot(t, s, quote(fmt.Sprintf("pad%d-%d", round, i)), 1)
		}
	}
}
