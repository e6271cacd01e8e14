package truthtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
)

// runChain checks the per-tenant audit hash chain (ADR 0014).
func runChain(t *testing.T, h Harness) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"BatchOrder", testChainBatchOrder},
		{"FailedCommitsAddNothing", testChainFailed},
		{"Concurrent", testChainConcurrent},
		{"Tamper", testChainTamper},
		{"Reopen", testChainReopen},
		{"TenantIsolation", testChainTenants},
		{"AppendAudit", testAppendAudit},
		{"AppendAuditInvalid", testAppendAuditInvalid},
		{"AppendAuditConcurrent", testAppendAuditConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

func chainReader(t testing.TB, s truth.Store) truth.ChainReader {
	t.Helper()
	r, ok := s.(truth.ChainReader)
	if !ok {
		t.Fatalf("%T does not implement truth.ChainReader", s)
	}
	return r
}

func auditChain(t testing.TB, s truth.Store, tenant string) []truth.Audit {
	t.Helper()
	recs, err := chainReader(t, s).AuditChain(context.Background(), tenant, 1, 1_000_000)
	if err != nil {
		t.Fatalf("AuditChain %q: %v", tenant, err)
	}
	return recs
}

// wantChain verifies tenant's chain through the store and checks it holds n
// records, returning them.
func wantChain(t testing.TB, s truth.Store, tenant string, n int64) []truth.Audit {
	t.Helper()
	r := chainReader(t, s)
	checked, head, err := truth.VerifyTenant(context.Background(), r, tenant, 7)
	if err != nil {
		t.Fatalf("chain of %q: %v", tenant, err)
	}
	if checked != n || head.Seq != n {
		t.Fatalf("chain of %q: %d records checked, head at %d; want %d", tenant, checked, head.Seq, n)
	}
	recs := auditChain(t, s, tenant)
	if int64(len(recs)) != n {
		t.Fatalf("chain of %q lists %d records, want %d", tenant, len(recs), n)
	}
	if _, err := truth.VerifyChain(recs, nil); err != nil {
		t.Fatalf("chain of %q: %v", tenant, err)
	}
	return recs
}

// withAudits gives c n audit records with distinct actions a0..a(n-1).
func withAudits(c truth.Commit, n int) truth.Commit {
	base := c.Audit[0]
	c.Audit = nil
	for i := range n {
		a := base
		a.Action = fmt.Sprintf("a%d", i)
		c.Audit = append(c.Audit, a)
	}
	return c
}

// Records of one tenant chain in batch order, and within a commit in order;
// the chain fields a caller sets are ignored.
func testChainBatchOrder(t *testing.T, h Harness) {
	s, _ := open(t, h)
	c1 := withAudits(NewCommit(quote("q1"), 0, ""), 2)
	c1.Audit[0].Seq, c1.Audit[0].Hash = 99, []byte("forged")
	mustCommit(t, s, c1, withAudits(NewCommit(quote("q2"), 0, ""), 1), withAudits(NewCommit(quote("q1"), 1, ""), 3))
	recs := wantChain(t, s, "acme", 6)
	want := []struct {
		id, action string
		rev        int64
	}{{"q1", "a0", 1}, {"q1", "a1", 1}, {"q2", "a0", 1}, {"q1", "a0", 2}, {"q1", "a1", 2}, {"q1", "a2", 2}}
	for i, w := range want {
		a := recs[i]
		if a.Aggregate.ID != w.id || a.Action != w.action || a.Revision != w.rev || a.Seq != int64(i+1) {
			t.Fatalf("record %d = %s %s rev %d seq %d; want %s %s rev %d", i, a.Aggregate.ID, a.Action, a.Revision, a.Seq, w.id, w.action, w.rev)
		}
	}
	// The per-aggregate trail carries the chain fields too.
	trail := auditTrail(t, s, quote("q2"))
	if len(trail) != 1 || trail[0].Seq != 3 || !bytes.Equal(trail[0].Hash, recs[2].Hash) {
		t.Fatalf("trail of q2 = %+v, want chain record 3", trail)
	}
	// Paging: fromSeq and limit.
	page, err := chainReader(t, s).AuditChain(context.Background(), "acme", 3, 2)
	if err != nil || len(page) != 2 || page[0].Seq != 3 || page[1].Seq != 4 {
		t.Fatalf("page from 3 limit 2: %+v, %v", page, err)
	}
	if page, err := chainReader(t, s).AuditChain(context.Background(), "acme", 7, 10); err != nil || len(page) != 0 {
		t.Fatalf("page past the head: %+v, %v", page, err)
	}
}

// A commit that fails (revision or idempotency conflict, invalid) adds no
// record; a batch mixing winners and losers chains the winners only.
func testChainFailed(t *testing.T, h Harness) {
	s, _ := open(t, h)
	mustCommit(t, s, NewCommit(quote("q1"), 0, "k1"))
	before := wantChain(t, s, "acme", 1)
	stale := NewCommit(quote("q1"), 0, "")
	dupKey := NewCommit(quote("q2"), 0, "k1")
	invalid := NewCommit(quote("q3"), 0, "")
	invalid.Snapshot.Revision = 5
	res := commitAll(t, s, stale, dupKey, invalid)
	if !errors.Is(res[0], truth.ErrRevisionConflict) || !errors.Is(res[1], truth.ErrIdempotencyConflict) || !errors.Is(res[2], truth.ErrInvalidCommit) {
		t.Fatalf("results %v", res)
	}
	after := wantChain(t, s, "acme", 1)
	if !bytes.Equal(after[0].Hash, before[0].Hash) {
		t.Fatal("head moved after failed commits")
	}
	res = commitAll(t, s, NewCommit(quote("q1"), 0, ""), NewCommit(quote("q4"), 0, ""), NewCommit(quote("q1"), 1, ""))
	wantResults(t, res, truth.ErrRevisionConflict, nil, nil)
	recs := wantChain(t, s, "acme", 3)
	if recs[1].Aggregate.ID != "q4" || recs[2].Aggregate.ID != "q1" || recs[2].Revision != 2 {
		t.Fatalf("winners chained as %s, %s rev %d", recs[1].Aggregate.ID, recs[2].Aggregate.ID, recs[2].Revision)
	}
}

// Eight writers over two tenants, each with its own aggregates plus one
// aggregate they all fight over: every tenant's chain stays gapless, holds
// exactly the winners' records, and verifies.
func testChainConcurrent(t *testing.T, h Harness) {
	s, _ := open(t, h)
	const writers, rounds = 8, 15
	tenants := []string{"acme", "globex"}
	var mu sync.Mutex
	wins := map[string]int64{}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tenant := tenants[w%2]
			own := truth.Key{Tenant: tenant, Kind: "quote", ID: fmt.Sprintf("w%d", w)}
			shared := truth.Key{Tenant: tenant, Kind: "quote", ID: "shared"}
			for r := range rounds {
				rev, err := revisionOf(s, shared)
				if err != nil {
					errs <- err
					return
				}
				batch := []truth.Commit{NewCommit(own, int64(r), ""), NewCommit(shared, rev, "")}
				if r%3 == 0 {
					batch = batch[:1]
				}
				res, err := s.Commit(context.Background(), batch)
				if err != nil {
					errs <- fmt.Errorf("writer %d round %d: %w", w, r, err)
					return
				}
				if res[0] != nil {
					errs <- fmt.Errorf("writer %d round %d: own aggregate: %w", w, r, res[0])
					return
				}
				n := int64(1)
				if len(res) > 1 {
					if res[1] == nil {
						n++
					} else if !errors.Is(res[1], truth.ErrRevisionConflict) {
						errs <- fmt.Errorf("writer %d round %d: shared aggregate: %w", w, r, res[1])
						return
					}
				}
				mu.Lock()
				wins[tenant] += n
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, tenant := range tenants {
		recs := wantChain(t, s, tenant, wins[tenant])
		shared := truth.Key{Tenant: tenant, Kind: "quote", ID: "shared"}
		rev, err := revisionOf(s, shared)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, a := range recs {
			if a.Tenant != tenant || a.Aggregate.Tenant != tenant {
				t.Fatalf("record of %q in the chain of %q", a.Tenant, tenant)
			}
			if a.Aggregate == shared {
				n++
				if a.Revision != n {
					t.Fatalf("shared aggregate of %q: record %d has revision %d (chain not in commit order)", tenant, n, a.Revision)
				}
			}
		}
		if n != rev {
			t.Fatalf("shared aggregate of %q at revision %d has %d chained records", tenant, rev, n)
		}
	}
}

func revisionOf(s truth.Store, k truth.Key) (int64, error) {
	snap, err := s.Load(context.Background(), k)
	if errors.Is(err, truth.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return snap.Revision, nil
}

// A record rewritten behind the store's back is caught at exactly its seq;
// the other tenant's chain is untouched.
func testChainTamper(t *testing.T, h Harness) {
	if h.TamperAudit == nil {
		t.Fatal("Harness.TamperAudit is required")
	}
	s, loc := open(t, h)
	for i := range 5 {
		mustCommit(t, s, NewCommit(quote("q1"), int64(i), ""), NewCommit(truth.Key{Tenant: "globex", Kind: "quote", ID: "g"}, int64(i), ""))
	}
	wantChain(t, s, "acme", 5)
	h.TamperAudit(t, s, loc, "acme", 3, "nothing to see")
	recs := auditChain(t, s, "acme")
	if recs[2].Reason != "nothing to see" {
		t.Fatalf("tamper hook did not rewrite record 3: %+v", recs[2])
	}
	checked, _, err := truth.VerifyTenant(context.Background(), chainReader(t, s), "acme", 2)
	var ce *truth.ChainError
	if !errors.As(err, &ce) || ce.Seq != 3 || checked != 2 {
		t.Fatalf("tampered chain: %d checked, %v; want broken at seq 3 after 2", checked, err)
	}
	if last, err := truth.VerifyChain(recs, nil); !errors.As(err, &ce) || ce.Seq != 3 || last != 2 {
		t.Fatalf("VerifyChain: last good %d, %v", last, err)
	}
	wantChain(t, s, "globex", 5)
}

// The head survives a reopen: the chain continues where it stopped.
func testChainReopen(t *testing.T, h Harness) {
	loc := h.NewLocation(t)
	s := h.Open(t, loc)
	mustCommit(t, s, NewCommit(quote("q1"), 0, ""), NewCommit(quote("q2"), 0, ""))
	mustCommit(t, s, NewCommit(quote("q1"), 1, ""))
	before := wantChain(t, s, "acme", 3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = h.Open(t, loc)
	t.Cleanup(func() { _ = s.Close() })
	head, err := chainReader(t, s).AuditHead(context.Background(), "acme")
	if err != nil || head.Seq != 3 || !bytes.Equal(head.Hash, before[2].Hash) {
		t.Fatalf("head after reopen %+v, %v; want seq 3 hash %x", head, err, before[2].Hash)
	}
	mustCommit(t, s, NewCommit(quote("q1"), 2, ""))
	after := wantChain(t, s, "acme", 4)
	if !bytes.Equal(after[3].PrevHash, before[2].Hash) {
		t.Fatal("record 4 does not link to record 3 across the reopen")
	}
}

// Tenants have separate chains, each from seq 1, even when one tenant's name
// is a prefix of another's; an unknown tenant has an empty chain.
func testChainTenants(t *testing.T, h Harness) {
	s, _ := open(t, h)
	a, b := truth.Key{Tenant: "ac", Kind: "quote", ID: "x"}, truth.Key{Tenant: "acme", Kind: "quote", ID: "x"}
	mustCommit(t, s, NewCommit(a, 0, ""), NewCommit(b, 0, ""))
	mustCommit(t, s, NewCommit(b, 1, ""))
	mustCommit(t, s, NewCommit(a, 1, ""), NewCommit(b, 2, ""))
	ra, rb := wantChain(t, s, "ac", 2), wantChain(t, s, "acme", 3)
	for _, r := range ra {
		if r.Aggregate != a {
			t.Fatalf("chain of ac holds %+v", r.Aggregate)
		}
	}
	for _, r := range rb {
		if r.Aggregate != b {
			t.Fatalf("chain of acme holds %+v", r.Aggregate)
		}
	}
	if bytes.Equal(ra[0].Hash, rb[0].Hash) {
		t.Fatal("two tenants' first records hash alike")
	}
	wantChain(t, s, "nobody", 0)
	if head, err := chainReader(t, s).AuditHead(context.Background(), "nobody"); err != nil || head.Seq != 0 || len(head.Hash) != 0 {
		t.Fatalf("head of unknown tenant: %+v, %v", head, err)
	}
}

func appender(t testing.TB, s truth.Store) truth.AuditAppender {
	t.Helper()
	a, ok := s.(truth.AuditAppender)
	if !ok {
		t.Fatalf("%T does not implement truth.AuditAppender", s)
	}
	return a
}

// refusal is an audit-only record about key at rev.
func refusal(key truth.Key, rev int64, reason string) truth.Audit {
	return truth.Audit{
		Tenant: key.Tenant, Aggregate: truth.Key{Kind: key.Kind, ID: key.ID}, Revision: rev,
		Actor: "user:mallory", Action: "approve", Reason: reason, CorrelationID: "corr-refused",
		At: base.Add(time.Hour + 123456789), Detail: []byte(`{"outcome":"refused"}`),
	}
}

// Audit-only records join the chain between commits, are returned as
// stored, show in the aggregate's trail and change no snapshot or outbox;
// the chain continues after them, across a reopen too.
func testAppendAudit(t *testing.T, h Harness) {
	loc := h.NewLocation(t)
	s := h.Open(t, loc)
	q1 := quote("q1")
	mustCommit(t, s, NewCommit(q1, 0, ""))
	outboxBefore := len(pending(t, s))
	in := refusal(q1, 1, "no authority")
	in.Seq, in.Hash = 42, []byte("forged")
	other := refusal(truth.Key{Tenant: "globex", Kind: "quote", ID: "g"}, 0, "no role")
	got, err := appender(t, s).AppendAudit(context.Background(), []truth.Audit{in, other, refusal(q1, 1, "again")})
	if err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if len(got) != 3 || got[0].Seq != 2 || got[1].Seq != 1 || got[2].Seq != 3 || got[1].Tenant != "globex" {
		t.Fatalf("appended records %+v; want acme seq 2, globex seq 1, acme seq 3", got)
	}
	if got[0].Aggregate != q1 || !got[0].At.Equal(truth.AuditTime(in.At)) {
		t.Fatalf("appended record %+v: aggregate or time not as stored", got[0])
	}
	wantSnapshot(t, s, q1, 1)
	if n := len(pending(t, s)); n != outboxBefore {
		t.Fatalf("AppendAudit added outbox records: %d, was %d", n, outboxBefore)
	}
	mustCommit(t, s, NewCommit(q1, 1, ""))
	recs := wantChain(t, s, "acme", 4)
	wantChain(t, s, "globex", 1)
	for i, want := range []struct {
		action string
		rev    int64
	}{{"Touch", 1}, {"approve", 1}, {"approve", 1}, {"Touch", 2}} {
		if recs[i].Action != want.action || recs[i].Revision != want.rev || recs[i].Aggregate != q1 {
			t.Fatalf("chain record %d = %s rev %d on %v; want %s rev %d", i+1, recs[i].Action, recs[i].Revision, recs[i].Aggregate, want.action, want.rev)
		}
	}
	if !sameAudit(recs[1], got[0]) || !bytes.Equal(recs[1].Hash, got[0].Hash) || !bytes.Equal(recs[1].PrevHash, recs[0].Hash) {
		t.Fatalf("stored record 2 %+v differs from the one returned %+v", recs[1], got[0])
	}
	if recs[1].Reason != "no authority" || !bytes.Equal(recs[1].Detail, in.Detail) || recs[1].Actor != in.Actor || recs[1].CorrelationID != in.CorrelationID {
		t.Fatalf("stored refusal %+v lost a field of %+v", recs[1], in)
	}
	trail := auditTrail(t, s, q1)
	if len(trail) != 4 || trail[1].Seq != 2 || trail[2].Seq != 3 || trail[3].Seq != 4 {
		t.Fatalf("trail of q1 = %+v, want chain records 1..4", trail)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = h.Open(t, loc)
	t.Cleanup(func() { _ = s.Close() })
	if _, err := appender(t, s).AppendAudit(context.Background(), []truth.Audit{refusal(q1, 2, "after reopen")}); err != nil {
		t.Fatalf("AppendAudit after reopen: %v", err)
	}
	mustCommit(t, s, NewCommit(q1, 2, ""))
	recs = wantChain(t, s, "acme", 6)
	if recs[4].Reason != "after reopen" || recs[5].Revision != 3 {
		t.Fatalf("after reopen: records 5, 6 = %+v, %+v", recs[4], recs[5])
	}
}

// An invalid record fails the whole call and writes nothing.
func testAppendAuditInvalid(t *testing.T, h Harness) {
	s, _ := open(t, h)
	q1 := quote("q1")
	mustCommit(t, s, NewCommit(q1, 0, ""))
	for _, bad := range []func(*truth.Audit){
		func(a *truth.Audit) { a.Tenant = "" },
		func(a *truth.Audit) { a.Aggregate.Kind = "" },
		func(a *truth.Audit) { a.Aggregate.ID = "" },
		func(a *truth.Audit) { a.Aggregate.Tenant = "globex" },
		func(a *truth.Audit) { a.Action = "" },
		func(a *truth.Audit) { a.Revision = -1 },
	} {
		r := refusal(q1, 1, "bad")
		bad(&r)
		_, err := appender(t, s).AppendAudit(context.Background(), []truth.Audit{refusal(q1, 1, "good"), r})
		if !errors.Is(err, truth.ErrInvalidCommit) {
			t.Fatalf("AppendAudit of %+v: %v, want ErrInvalidCommit", r, err)
		}
	}
	wantChain(t, s, "acme", 1)
	if got, err := appender(t, s).AppendAudit(context.Background(), nil); err != nil || len(got) != 0 {
		t.Fatalf("AppendAudit of nothing: %v, %v", got, err)
	}
}

// Writers that commit and writers that append, over one tenant, leave one
// gapless chain holding every record exactly once.
func testAppendAuditConcurrent(t *testing.T, h Harness) {
	s, _ := open(t, h)
	const writers, rounds = 6, 12
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := truth.Key{Tenant: "acme", Kind: "quote", ID: fmt.Sprintf("w%d", w)}
			for r := range rounds {
				if w%2 == 0 {
					res, err := s.Commit(context.Background(), []truth.Commit{NewCommit(key, int64(r), "")})
					if err == nil {
						err = res[0]
					}
					if err != nil {
						errs <- fmt.Errorf("writer %d round %d: %w", w, r, err)
						return
					}
					continue
				}
				if _, err := appender(t, s).AppendAudit(context.Background(), []truth.Audit{refusal(key, 0, fmt.Sprint(r))}); err != nil {
					errs <- fmt.Errorf("appender %d round %d: %w", w, r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	recs := wantChain(t, s, "acme", writers*rounds)
	seen := map[string]int{}
	for _, a := range recs {
		seen[a.Aggregate.ID+"/"+a.Action]++
	}
	for w := range writers {
		action := "Touch"
		if w%2 == 1 {
			action = "approve"
		}
		if n := seen[fmt.Sprintf("w%d/%s", w, action)]; n != rounds {
			t.Fatalf("writer %d has %d %s records in the chain, want %d", w, n, action, rounds)
		}
	}
}
