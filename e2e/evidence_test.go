package e2e

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/quote"
	"github.com/grainline/grainline/internal/evidence"
	"github.com/grainline/grainline/internal/platform"
	"github.com/grainline/grainline/internal/testenv"
)

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// evidenceJourney sells a quote that needs two approval levels (a 30%
// discount matches the demo policy's discount-over-25 at level 2) through
// doors made by newDoor, each actor with its own subject, then fetches the
// quote's evidence as an auditor and checks it field by field against what
// the journey did. It returns the bundle and the door of the auditor.
func evidenceJourney(t *testing.T, e *env, newDoor func(subject string, roles ...string) door) (*evidence.Bundle, door) {
	t.Helper()
	seller := newDoor("seller-1", "sales")
	first := newDoor("approver-a", "approver")
	second := newDoor("approver-b", "approver:2")
	auditor := newDoor("auditor-x", "auditor")
	offering := firstOffering(t, seller)

	id := createQuote(t, seller, "")
	seller.do(t, grains.KindQuote, "addLine", id, map[string]any{"offeringId": offering, "quantity": 2}, opts{}).expect(t, "addLine", 200)
	seller.do(t, grains.KindQuote, "setQuoteDiscount", id, map[string]any{"percent": "30"}, opts{}).expect(t, "discount", 200)
	var q quoteView
	seller.do(t, grains.KindQuote, "price", id, nil, opts{}).expect(t, "price", 200).decode(t, &q)
	if q.Price == nil || !hex64.MatchString(q.Price.Hash) {
		t.Fatalf("priced quote: %+v", q.Price)
	}
	pricedHash := q.Price.Hash
	seller.do(t, grains.KindQuote, "submit", id, nil, opts{}).expect(t, "submit", 200).decode(t, &q)
	if q.RequiredLevel != 2 || q.PolicyVersion != 1 {
		t.Fatalf("submitted quote needs level %d under policy %d, want 2 under 1", q.RequiredLevel, q.PolicyVersion)
	}
	first.do(t, grains.KindQuote, "approve", id, nil, opts{}).expect(t, "approve level 1", 200)
	first.do(t, grains.KindQuote, "approve", id, nil, opts{}).expectProblem(t, "approve level 2 as approver:1", 403, "forbidden")
	second.do(t, grains.KindQuote, "approve", id, nil, opts{}).expect(t, "approve level 2", 200).decode(t, &q)
	if q.Status != quote.StatusApproved {
		t.Fatalf("after two levels: %s", q.Status)
	}
	sha := renderDocument(t, seller, id)
	acceptDocument(t, seller, id, sha).decode(t, &q)
	o := awaitOrder(t, seller, id, order.StatusCompleted)

	r := auditor.do(t, grains.KindQuote, "evidence", id, nil, opts{}).expect(t, "evidence", 200)
	var b evidence.Bundle
	r.decode(t, &b)

	// The quote and its catalog.
	mustf(t, b.Schema == "grainline.evidence.v1" && b.Tenant == string(platform.DemoTenant), "schema %q tenant %q", b.Schema, b.Tenant)
	mustf(t, b.Quote.ID == id && b.Quote.Status == string(quote.StatusAccepted) && b.Quote.Revision == 1 &&
		b.Quote.CustomerID == "cust-42" && b.Quote.Currency == "EUR" && b.Quote.CatalogVersion == q.CatalogVersion && q.CatalogVersion > 0,
		"quote summary %+v (catalog version of the quote %d)", b.Quote, q.CatalogVersion)
	mustf(t, b.Catalog.Version == q.CatalogVersion && hex64.MatchString(b.Catalog.SHA256) && len(b.Catalog.Offerings) == 1 &&
		strings.Contains(string(b.Catalog.Offerings[0]), `"id":"`+offering+`"`), "catalog %+v, want offering %s", b.Catalog, offering)

	// The one revision: lines, price trace and hash, submission.
	mustf(t, len(b.Revisions) == 1, "%d revisions", len(b.Revisions))
	rev := b.Revisions[0]
	var lines []grains.Line
	if err := json.Unmarshal(rev.Lines, &lines); err != nil || len(lines) != 1 || lines[0].OfferingID != offering || lines[0].Quantity != 2 {
		t.Fatalf("revision lines %s (%v)", rev.Lines, err)
	}
	mustf(t, rev.Number == 1 && rev.Current && rev.Price != nil && rev.Price.Hash == pricedHash && len(rev.Price.Trace) > 2 &&
		rev.Price.OneTimeTotal == q.Price.OneTimeTotal, "revision 1: %+v", rev)
	mustf(t, rev.Submission != nil && rev.Submission.By == "seller-1" && rev.Submission.PolicyVersion == 1 && rev.Submission.RequiredLevel == 2,
		"submission %+v", rev.Submission)
	mustf(t, slices.Contains(rev.Submission.MatchedRules, evidence.MatchedRule{Rule: "discount-over-25", Level: 2}), "matched rules %+v", rev.Submission.MatchedRules)

	// Approvals: who, at which level, of which revision and price, under
	// which policy, required by which rules.
	mustf(t, len(b.Approvals) == 2, "approvals %+v", b.Approvals)
	for i, want := range []struct {
		by    string
		level int
	}{{"approver-a", 1}, {"approver-b", 2}} {
		a := b.Approvals[i]
		mustf(t, a.ApprovedBy == want.by && a.Level == want.level && a.Revision == 1 && a.PriceHash == pricedHash && a.PolicyVersion == 1,
			"approval %d = %+v, want %s at level %d of revision 1 at %s", i, a, want.by, want.level, pricedHash)
		for _, m := range a.RequiredBy {
			mustf(t, m.Level >= want.level, "approval %d required by %+v", i, m)
		}
		mustf(t, len(a.RequiredBy) > 0, "approval %d names no rule", i)
	}
	mustf(t, slices.Contains(b.Approvals[1].RequiredBy, evidence.MatchedRule{Rule: "discount-over-25", Level: 2}), "level 2 required by %+v", b.Approvals[1].RequiredBy)
	mustf(t, len(b.Policies) == 1 && b.Policies[0].Version == 1 && strings.Contains(string(b.Policies[0].Rules), "discount-over-25"), "policies %+v", b.Policies)

	// Document, acceptance, order.
	mustf(t, b.Document != nil && b.Document.SHA256 == sha && b.Document.Revision == 1 && b.Document.ArtifactID != "", "document %+v, want %s", b.Document, sha)
	mustf(t, b.Acceptance != nil && b.Acceptance.AcceptedBy == "seller-1" && b.Acceptance.Channel == "portal" && b.Acceptance.DocumentSHA256 == sha &&
		b.Acceptance.PriceHash == pricedHash && b.Acceptance.Revision == 1 && b.Acceptance.AcceptedAt != nil, "acceptance %+v", b.Acceptance)
	mustf(t, b.Order != nil && b.Order.ID == order.IDForQuote(id) && b.Order.ID == o.ID && b.Order.Exists && b.Order.Status == string(order.StatusCompleted) &&
		b.Order.PriceHash == pricedHash, "order %+v", b.Order)

	// The audit records of quote and order in chain order, the refusal
	// among them.
	var quoteActions, refusals []string
	var orderRecords int
	for i, a := range b.Audit {
		mustf(t, hex64.MatchString(a.Hash) && (a.Seq == 1 || hex64.MatchString(a.PrevHash)), "record %+v: hashes", a)
		mustf(t, i == 0 || a.Seq > b.Audit[i-1].Seq, "records out of chain order at %d: %d after %d", i, a.Seq, b.Audit[max(i-1, 0)].Seq)
		switch a.Kind {
		case string(grains.KindQuote):
			quoteActions = append(quoteActions, a.Action+" "+a.Actor)
			if string(a.Detail) == `{"outcome":"refused","code":"forbidden"}` {
				refusals = append(refusals, a.Action+" "+a.Actor)
			}
		case string(grains.KindOrder):
			orderRecords++
			mustf(t, a.ID == o.ID, "order record of %s", a.ID)
		}
	}
	wantActions := []string{"create seller-1", "addLine seller-1", "setQuoteDiscount seller-1", "price seller-1", "submit seller-1",
		"approve approver-a", "approve approver-a", "approve approver-b", "attachDocument seller-1", "accept seller-1"}
	mustf(t, slices.Equal(quoteActions, wantActions), "quote audit actions\n%v\nwant\n%v", quoteActions, wantActions)
	mustf(t, slices.Equal(refusals, []string{"approve approver-a"}), "refusals %v", refusals)
	mustf(t, orderRecords > 0, "no order audit record")
	last := b.Audit[len(b.Audit)-1]
	v := b.ChainVerification
	mustf(t, v.Verified && v.Error == "" && v.UpToSeq == last.Seq && v.HeadSeq == last.Seq && v.HeadHash == last.Hash && v.CheckedRecords == last.Seq,
		"chain verification %+v, last record %d %s", v, last.Seq, last.Hash)

	// Readers: sales may read too, a role without quote business may not.
	seller.do(t, grains.KindQuote, "evidence", id, nil, opts{}).expect(t, "evidence as sales", 200)
	newDoor("ops-1", "ops").do(t, grains.KindQuote, "evidence", id, nil, opts{}).expectProblem(t, "evidence as ops", 403, "forbidden")
	auditor.do(t, grains.KindQuote, "evidence", "q-doesnotexist", nil, opts{}).expectProblem(t, "evidence of no quote", 404, "not_found")
	return &b, auditor
}

func (e *env) subjectToken(subject string, roles ...string) string {
	e.t.Helper()
	tok, err := e.p.Token(platform.DemoTenant, subject, roles, time.Hour)
	if err != nil {
		e.t.Fatalf("mint token: %v", err)
	}
	return tok
}

// tamperAndRecheck rewrites the reason of the quote's submit record behind
// the store's back (PostgreSQL), then fetches the evidence again: still
// 200, with the chain reported broken at that record's seq.
func tamperAndRecheck(t *testing.T, dsn string, d door, b *evidence.Bundle) {
	t.Helper()
	var seq int64
	for _, a := range b.Audit {
		if a.Kind == string(grains.KindQuote) && a.Action == "submit" {
			seq = a.Seq
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, `UPDATE audit SET reason = 'nothing to see' WHERE tenant = $1 AND chain_seq = $2`, string(platform.DemoTenant), seq)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("tamper with seq %d: %v (%d rows)", seq, err, tag.RowsAffected())
	}
	var after evidence.Bundle
	d.do(t, grains.KindQuote, "evidence", b.Quote.ID, nil, opts{}).expect(t, "evidence of a tampered chain", 200).decode(t, &after)
	v := after.ChainVerification
	mustf(t, !v.Verified && v.BrokenSeq == seq && v.CheckedRecords == seq-1 && v.Error != "", "verification after tampering with seq %d: %+v", seq, v)
	mustf(t, len(after.Audit) == len(b.Audit), "the tampered bundle lists %d records, was %d", len(after.Audit), len(b.Audit))
}

func TestEvidenceHTTP(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		var o platformOpts
		if m == real {
			o.postgresDSN = testenv.PostgresDB(t)
		}
		e := startPlatform(t, m, o)
		b, auditor := evidenceJourney(t, e, func(subject string, roles ...string) door {
			return newHTTPDoor(e.p.HTTPAddr, e.subjectToken(subject, roles...))
		})
		if m == real {
			tamperAndRecheck(t, o.postgresDSN, auditor, b)
		}
	})
}

func TestEvidenceNATS(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		var o platformOpts
		if m == real {
			o.postgresDSN = testenv.PostgresDB(t)
		}
		e := startPlatform(t, m, o)
		b, auditor := evidenceJourney(t, e, func(subject string, roles ...string) door {
			return newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, platform.DemoTenant, e.subjectToken(subject, roles...))
		})
		if m == real {
			tamperAndRecheck(t, o.postgresDSN, auditor, b)
		}
	})
}
