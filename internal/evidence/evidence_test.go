package evidence_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/internal/evidence"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// quoteState is a quote snapshot as the grain writes it: a frozen revision
// 1 (submitted, approved at level 1, then superseded), a current revision 2
// approved at levels 1 and 2 with a document, accepted; plus a field the
// bundle does not know.
const quoteState = `{
  "id": "q-1", "tenant": "acme", "status": "accepted", "revision": 2, "customerId": "c-9", "customerName": "Acme",
  "currency": "EUR", "catalogVersion": 3, "createdBy": "seller", "createdAt": "2026-03-01T10:00:00Z",
  "validUntil": "2026-04-01T10:00:00Z", "someFutureField": {"x": 1},
  "lines": [{"lineId": "2", "offeringId": "off-b", "quantity": 5, "characteristics": {"speed": "1G"}}],
  "price": {"hash": "h2", "algorithm": "grainline.pricing.v2", "oneTimeTotal": "500.00", "monthlyTotal": "0.00", "trace": [{"what": "total"}]},
  "submittedBy": "seller", "submittedAt": "2026-03-02T10:00:00Z", "policyVersion": 4, "requiredLevel": 2,
  "approvalRules": [{"rule": "review", "level": 1}, {"rule": "big", "level": 2}],
  "approvals": [
    {"level": 1, "approvedBy": "ann", "approvedAt": "2026-03-02T11:00:00Z", "policyVersion": 4, "revision": 2, "priceHash": "h2"},
    {"level": 2, "approvedBy": "bob", "approvedAt": "2026-03-02T12:00:00Z", "policyVersion": 4, "revision": 2, "priceHash": "h2"}],
  "document": {"revision": 2, "sha256": "d2", "artifactId": "d2", "mediaType": "application/pdf", "attachedBy": "seller", "attachedAt": "2026-03-02T13:00:00Z"},
  "acceptedBy": "cust", "acceptedAt": "2026-03-03T10:00:00Z", "orderId": "o-1",
  "acceptance": {"acceptedBy": "cust", "channel": "email", "acceptedAt": "2026-03-03T10:00:00Z", "revision": 2, "documentSha256": "d2", "priceHash": "h2"},
  "revisions": [{
    "number": 1, "status": "approved", "current": false,
    "lines": [{"lineId": "1", "offeringId": "off-a", "quantity": 1}],
    "price": {"hash": "h1", "oneTimeTotal": "100.00", "monthlyTotal": "0.00", "trace": [{"what": "total"}]},
    "submittedBy": "seller", "policyVersion": 3, "requiredLevel": 1, "approvalRules": [{"rule": "review", "level": 1}],
    "approvals": [{"level": 1, "approvedBy": "ann", "policyVersion": 3, "revision": 1, "priceHash": "h1"}],
    "supersededBy": "addLine", "supersededAt": "2026-03-02T09:00:00Z"}]
}`

const catalogDoc = `{"version": 3, "offerings": [{"id": "off-a", "name": "A"}, {"id": "off-b", "name": "B"}, {"id": "off-c", "name": "C"}]}`

type fakeCatalogs struct{}

func (fakeCatalogs) CatalogVersionJSON(_ context.Context, _ grains.TenantID, v int) ([]byte, error) {
	if v != 3 {
		return nil, grains.Errorf(grains.CodeNotFound, "no version %d", v)
	}
	return []byte(catalogDoc), nil
}

type fakePolicies struct{}

func (fakePolicies) PolicyRulesJSON(_ context.Context, _ grains.TenantID, v int) ([]byte, error) {
	if v == 3 {
		return nil, errors.New("store down")
	}
	return []byte(`[{"name":"review","expr":"true","level":1}]`), nil
}

func openStore(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// put writes state as the next revision of key, with one audit record.
func put(t *testing.T, s truth.Store, key truth.Key, rev int64, state, action, actor string) {
	t.Helper()
	res, err := s.Commit(context.Background(), []truth.Commit{{
		ExpectedRevision: rev - 1,
		Snapshot:         truth.Snapshot{Key: key, Revision: rev, State: []byte(state), UpdatedAt: t0},
		Audit:            []truth.Audit{{Tenant: key.Tenant, Aggregate: key, Revision: rev, Actor: actor, Action: action, At: t0.Add(time.Duration(rev) * time.Second)}},
	}})
	if err == nil {
		err = res[0]
	}
	if err != nil {
		t.Fatal(err)
	}
}

var (
	qkey = truth.Key{Tenant: "acme", Kind: "quote", ID: "q-1"}
	okey = truth.Key{Tenant: "acme", Kind: "order", ID: "o-1"}
)

func build(t *testing.T, b *evidence.Builder) *evidence.Bundle {
	t.Helper()
	bundle, err := b.Build(context.Background(), "acme", "q-1")
	if err != nil {
		t.Fatal(err)
	}
	// The bundle survives JSON as the API serves it.
	raw, err := json.Marshal(bundle)
	if err != nil {
		t.Fatal(err)
	}
	var back evidence.Bundle
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatalf("bundle JSON: %v: %s", err, raw)
	}
	return &back
}

func TestBuildAssemblesTheQuote(t *testing.T) {
	s := openStore(t)
	put(t, s, qkey, 1, `{"id":"q-1","status":"inProgress"}`, "create", "seller")
	put(t, s, truth.Key{Tenant: "acme", Kind: "quote", ID: "q-other"}, 1, `{"id":"q-other"}`, "create", "someone")
	put(t, s, qkey, 2, quoteState, "accept", "cust")
	put(t, s, okey, 1, `{"id":"o-1","status":"completed","priceHash":"h2"}`, "create", "intake")
	b := build(t, &evidence.Builder{Store: s, Catalogs: fakeCatalogs{}, Policies: fakePolicies{}, Now: func() time.Time { return t0 }})

	if b.Schema != evidence.Schema || b.Tenant != "acme" || !b.GeneratedAt.Equal(t0) {
		t.Fatalf("header %q %q %v", b.Schema, b.Tenant, b.GeneratedAt)
	}
	q := b.Quote
	if q.ID != "q-1" || q.Status != "accepted" || q.Revision != 2 || q.StoreRevision != 2 || q.CatalogVersion != 3 || q.CustomerID != "c-9" || q.ValidUntil == nil {
		t.Fatalf("quote %+v", q)
	}
	sum := sha256.Sum256([]byte(catalogDoc))
	if b.Catalog.SHA256 != hex.EncodeToString(sum[:]) || len(b.Catalog.Offerings) != 2 || b.Catalog.Unavailable != "" ||
		!strings.Contains(string(b.Catalog.Offerings[0]), "off-a") || !strings.Contains(string(b.Catalog.Offerings[1]), "off-b") {
		t.Fatalf("catalog %+v: want the offerings of both revisions' lines, not off-c", b.Catalog)
	}
	if len(b.Revisions) != 2 {
		t.Fatalf("revisions %+v", b.Revisions)
	}
	r1, r2 := b.Revisions[0], b.Revisions[1]
	if r1.Number != 1 || r1.Current || r1.Status != "approved" || r1.Price.Hash != "h1" || r1.SupersededBy != "addLine" || r1.Submission.PolicyVersion != 3 {
		t.Fatalf("revision 1 %+v", r1)
	}
	if r2.Number != 2 || !r2.Current || r2.Price.Hash != "h2" || string(r2.Price.Trace) != `[{"what":"total"}]` ||
		!strings.Contains(string(r2.Lines), `"speed":"1G"`) || r2.Document == nil || r2.Submission.RequiredLevel != 2 {
		t.Fatalf("revision 2 %+v", r2)
	}
	// Approvals of every revision, each with the rules that required it.
	want := []struct {
		by, hash      string
		level, rev, v int
		rules         string
	}{{"ann", "h1", 1, 1, 3, "review"}, {"ann", "h2", 1, 2, 4, "review,big"}, {"bob", "h2", 2, 2, 4, "big"}}
	if len(b.Approvals) != len(want) {
		t.Fatalf("approvals %+v", b.Approvals)
	}
	for i, w := range want {
		a := b.Approvals[i]
		var rules []string
		for _, m := range a.RequiredBy {
			rules = append(rules, m.Rule)
		}
		if a.ApprovedBy != w.by || a.PriceHash != w.hash || a.Level != w.level || a.Revision != w.rev || a.PolicyVersion != w.v || strings.Join(rules, ",") != w.rules {
			t.Fatalf("approval %d = %+v (rules %v), want %+v", i, a, rules, w)
		}
	}
	if len(b.Policies) != 2 || b.Policies[0].Version != 3 || b.Policies[0].Unavailable == "" || b.Policies[1].Version != 4 || !strings.Contains(string(b.Policies[1].Rules), "review") {
		t.Fatalf("policies %+v", b.Policies)
	}
	if b.Document == nil || b.Document.SHA256 != "d2" || b.Document.Revision != 2 {
		t.Fatalf("document %+v", b.Document)
	}
	if a := b.Acceptance; a == nil || a.AcceptedBy != "cust" || a.Channel != "email" || a.DocumentSHA256 != "d2" || a.PriceHash != "h2" || a.Revision != 2 {
		t.Fatalf("acceptance %+v", a)
	}
	if o := b.Order; o == nil || o.ID != "o-1" || !o.Exists || o.Status != "completed" || o.StoreRevision != 1 || o.PriceHash != "h2" {
		t.Fatalf("order %+v", o)
	}
	// Quote and order records in chain order; the other quote's record is
	// not listed but is verified.
	var got []string
	for _, a := range b.Audit {
		got = append(got, a.Kind+"/"+a.Action)
	}
	if strings.Join(got, " ") != "quote/create quote/accept order/create" || b.Audit[0].Seq != 1 || b.Audit[1].Seq != 3 || b.Audit[2].Seq != 4 {
		t.Fatalf("audit %+v", b.Audit)
	}
	v := b.ChainVerification
	if !v.Verified || v.CheckedRecords != 4 || v.UpToSeq != 4 || v.HeadSeq != 4 || v.HeadHash != b.Audit[2].Hash || v.BrokenSeq != 0 {
		t.Fatalf("verification %+v", v)
	}
}

// A quote from before revisions, documents and acceptance evidence, not
// yet accepted and without catalog or policy sources, still makes a bundle.
func TestBuildReadsOldQuotesDefensively(t *testing.T) {
	s := openStore(t)
	put(t, s, qkey, 1, `{"id":"q-1","status":"pending","lines":null,"price":null,"approvals":null,"submittedBy":"s","policyVersion":0}`, "create", "seller")
	b := build(t, &evidence.Builder{Store: s})
	if len(b.Revisions) != 1 || string(b.Revisions[0].Lines) != "[]" || b.Revisions[0].Price != nil || b.Quote.Revision != 1 {
		t.Fatalf("revisions %+v", b.Revisions)
	}
	if b.Order != nil || b.Acceptance != nil || b.Document != nil || len(b.Approvals) != 0 || len(b.Policies) != 0 {
		t.Fatalf("bundle of an unaccepted quote: %+v", b)
	}
	if b.Catalog.Unavailable == "" || len(b.Catalog.Offerings) != 0 || !b.ChainVerification.Verified {
		t.Fatalf("catalog %+v verification %+v", b.Catalog, b.ChainVerification)
	}
	if _, err := (&evidence.Builder{Store: s}).Build(context.Background(), "acme", "q-none"); grains.CodeOf(err) != grains.CodeNotFound {
		t.Fatalf("missing quote: %v", err)
	}
	if _, err := (&evidence.Builder{Store: s}).Build(context.Background(), "other", "q-1"); grains.CodeOf(err) != grains.CodeNotFound {
		t.Fatalf("another tenant's quote: %v", err)
	}
}

// tampered serves the chain with one record's reason rewritten, as a store
// whose rows were edited behind its back would.
type tampered struct {
	*embedded.Store
	seq int64
}

func (s tampered) AuditChain(ctx context.Context, tenant string, from int64, limit int) ([]truth.Audit, error) {
	recs, err := s.Store.AuditChain(ctx, tenant, from, limit)
	for i := range recs {
		if recs[i].Seq == s.seq {
			recs[i].Reason = "nothing to see"
		}
	}
	return recs, err
}

func TestBuildReportsABrokenChain(t *testing.T) {
	s := openStore(t)
	put(t, s, qkey, 1, `{"id":"q-1","status":"inProgress"}`, "create", "seller")
	put(t, s, qkey, 2, `{"id":"q-1","status":"inProgress"}`, "addLine", "seller")
	put(t, s, qkey, 3, `{"id":"q-1","status":"inProgress"}`, "price", "seller")
	b := build(t, &evidence.Builder{Store: tampered{s, 2}, PageSize: 1})
	v := b.ChainVerification
	if v.Verified || v.BrokenSeq != 2 || v.CheckedRecords != 1 || v.HeadSeq != 1 || v.Error == "" || len(b.Audit) != 3 {
		t.Fatalf("verification of a chain tampered at 2: %+v", v)
	}
}
