package truth_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
)

func chain(t *testing.T, tenant string, n int) []truth.Audit {
	t.Helper()
	var head truth.ChainHead
	out := make([]truth.Audit, n)
	for i := range out {
		out[i] = truth.Audit{
			Tenant: tenant, Aggregate: truth.Key{Tenant: tenant, Kind: "quote", ID: "q1"}, Revision: int64(i + 1),
			Actor: "user:alice", Action: "Touch", Reason: "r", CorrelationID: "c",
			At: time.Date(2025, 1, 2, 3, 4, 5, 678901234, time.FixedZone("x", 3600)), Detail: []byte(`{"n":1}`),
		}
		head = head.Link(&out[i])
	}
	return out
}

// The encoding is pinned byte for byte: an auditor re-implements it from the
// documentation, so any change here is a format change (a new domain tag).
func TestAuditEncodingPinned(t *testing.T) {
	a := truth.Audit{
		Tenant: "t", Seq: 1, Aggregate: truth.Key{Tenant: "t", Kind: "k", ID: "i"}, Revision: 2,
		Actor: "a", Action: "b", Reason: "", CorrelationID: "c",
		At: time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC), Detail: nil,
	}
	var want []byte
	lp := func(s string) {
		want = append(want, 0, 0, 0, byte(len(s)))
		want = append(want, s...)
	}
	lp("grainline.audit.v1")
	lp("t")
	want = append(want, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1)
	lp("") // prev hash
	lp("k")
	lp("i")
	want = append(want, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 2)
	lp("a")
	lp("b")
	lp("")
	lp("c")
	lp("2025-01-02T03:04:05.000006Z")
	lp("")
	if got := truth.AuditEncoding(&a); !bytes.Equal(got, want) {
		t.Fatalf("encoding\n got %x\nwant %x", got, want)
	}
	sum := sha256.Sum256(want)
	if got := truth.AuditHash(&a); !bytes.Equal(got, sum[:]) {
		t.Fatalf("hash %s, want %s", hex.EncodeToString(got), hex.EncodeToString(sum[:]))
	}
	// Sub-microsecond digits and the zone do not change the hash.
	b := a
	b.At = a.At.Add(999).In(time.FixedZone("y", -7200))
	if !bytes.Equal(truth.AuditHash(&a), truth.AuditHash(&b)) {
		t.Fatal("hash depends on sub-microsecond digits or zone")
	}
}

// Length prefixes keep field boundaries: moving a byte between adjacent
// fields changes the hash.
func TestAuditEncodingBoundaries(t *testing.T) {
	a := chain(t, "acme", 1)[0]
	b := a
	b.Actor, b.Action = a.Actor+"T", a.Action[1:]
	if a.Action[0] != 'T' {
		t.Fatal("fixture changed")
	}
	if bytes.Equal(truth.AuditHash(&a), truth.AuditHash(&b)) {
		t.Fatal("moving a byte across a field boundary kept the hash")
	}
}

func TestVerifyChain(t *testing.T) {
	recs := chain(t, "acme", 5)
	if last, err := truth.VerifyChain(recs, nil); err != nil || last != 5 {
		t.Fatalf("intact chain: %d, %v", last, err)
	}
	// A suffix verifies against its predecessor's hash.
	if last, err := truth.VerifyChain(recs[2:], recs[1].Hash); err != nil || last != 5 {
		t.Fatalf("suffix: %d, %v", last, err)
	}
	if last, err := truth.VerifyChain(nil, nil); err != nil || last != 0 {
		t.Fatalf("empty: %d, %v", last, err)
	}
	cases := map[string]struct {
		mutate  func([]truth.Audit) []truth.Audit
		prev    []byte
		wantSeq int64
	}{
		"reason rewritten": {func(r []truth.Audit) []truth.Audit { r[2].Reason = "other"; return r }, nil, 3},
		"detail rewritten": {func(r []truth.Audit) []truth.Audit { r[4].Detail = []byte(`{"n":2}`); return r }, nil, 5},
		"rehashed record":  {func(r []truth.Audit) []truth.Audit { r[1].Actor = "x"; r[1].Hash = truth.AuditHash(&r[1]); return r }, nil, 3},
		"record dropped":   {func(r []truth.Audit) []truth.Audit { return append(r[:1:1], r[2:]...) }, nil, 2},
		"records swapped":  {func(r []truth.Audit) []truth.Audit { r[0], r[1] = r[1], r[0]; return r }, nil, 1},
		"wrong prev":       {func(r []truth.Audit) []truth.Audit { return r[1:] }, []byte("nope"), 2},
		"no start":         {func(r []truth.Audit) []truth.Audit { return r[1:] }, nil, 1},
		"other tenant": {func(r []truth.Audit) []truth.Audit {
			o := chain(t, "globex", 4)
			return append(r[:3:3], o[3])
		}, nil, 4},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			recs := tc.mutate(chain(t, "acme", 5))
			last, err := truth.VerifyChain(recs, tc.prev)
			var ce *truth.ChainError
			if !errors.As(err, &ce) || !errors.Is(err, truth.ErrChainBroken) {
				t.Fatalf("err = %v, want a *ChainError", err)
			}
			if ce.Seq != tc.wantSeq || last != tc.wantSeq-1 {
				t.Fatalf("broken at %d (last good %d), want %d: %v", ce.Seq, last, tc.wantSeq, err)
			}
		})
	}
}

type memChain struct {
	recs []truth.Audit
	head truth.ChainHead
}

func (m *memChain) AuditChain(_ context.Context, _ string, from int64, limit int) ([]truth.Audit, error) {
	var out []truth.Audit
	for _, r := range m.recs {
		if r.Seq >= from && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memChain) AuditHead(context.Context, string) (truth.ChainHead, error) { return m.head, nil }

func TestVerifyTenant(t *testing.T) {
	ctx := context.Background()
	recs := chain(t, "acme", 7)
	m := &memChain{recs: recs, head: truth.ChainHead{Seq: 7, Hash: recs[6].Hash}}
	n, head, err := truth.VerifyTenant(ctx, m, "acme", 3)
	if err != nil || n != 7 || head.Seq != 7 || !bytes.Equal(head.Hash, recs[6].Hash) {
		t.Fatalf("intact: %d %+v %v", n, head, err)
	}
	// A record missing at a page boundary.
	m.recs = append(append([]truth.Audit{}, recs[:3]...), recs[4:]...)
	var ce *truth.ChainError
	if _, _, err := truth.VerifyTenant(ctx, m, "acme", 3); !errors.As(err, &ce) || ce.Seq != 4 {
		t.Fatalf("gap at page boundary: %v", err)
	}
	// The newest record removed: the stored head gives it away.
	m.recs = recs[:6]
	if _, _, err := truth.VerifyTenant(ctx, m, "acme", 3); !errors.As(err, &ce) || ce.Seq != 7 {
		t.Fatalf("truncated chain: %v", err)
	}
	// Records committed after the head was read are left for the next run.
	m.recs = recs
	m.head = truth.ChainHead{Seq: 5, Hash: recs[4].Hash}
	if n, head, err := truth.VerifyTenant(ctx, m, "acme", 3); err != nil || n != 5 || head.Seq != 5 {
		t.Fatalf("head behind records: %d %+v %v", n, head, err)
	}
	m.head = truth.ChainHead{Seq: 7, Hash: recs[6].Hash}
	// Tampering mid-page.
	m.recs = chain(t, "acme", 7)
	m.recs[4].Reason = "rewritten"
	if n, _, err := truth.VerifyTenant(ctx, m, "acme", 3); !errors.As(err, &ce) || ce.Seq != 5 || n != 4 {
		t.Fatalf("tampered: %d, %v", n, err)
	}
}
