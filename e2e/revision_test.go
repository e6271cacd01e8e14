package e2e

import (
	"strings"
	"testing"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/quote"
)

// revisionView is GET /v1/quotes/{id}/revisions/{n}.
type revisionView struct {
	QuoteID string `json:"quoteId"`
	quote.Revision
}

// TestRevisionAfterApproval: a change after approval forces a new revision
// and a new approval, over HTTP and NATS, in both modes. The old revision
// stays readable as it was approved; approvals naming it are stale; the
// acceptance records the new revision and its document.
func TestRevisionAfterApproval(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{noStreams: true})
		doors := []door{
			newHTTPDoor(e.p.HTTPAddr, e.salesApprover()),
			newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, "demo", e.salesApprover()),
		}
		for _, d := range doors {
			t.Run(d.name(), func(t *testing.T) { revisionJourney(t, d) })
		}
	})
}

func getQuote(t *testing.T, d door, id string) (quoteView, reply) {
	t.Helper()
	r := d.do(t, grains.KindQuote, "get", id, nil, opts{}).expect(t, "get quote", 200)
	var q quoteView
	q = quoteView{}
	r.decode(t, &q)
	return q, r
}

func revisionJourney(t *testing.T, d door) {
	offering := firstOffering(t, d)
	id := toApproved(t, d, offering)
	q, _ := getQuote(t, d, id)
	mustf(t, q.Revision == 1 && q.Status == quote.StatusApproved && len(q.Approvals) == 1 && q.Approvals[0].Revision == 1 && q.Price != nil,
		"approved quote: revision %d status %s approvals %+v", q.Revision, q.Status, q.Approvals)
	hash1 := q.Price.Hash

	// The change after approval starts revision 2, in progress, unpriced
	// and unapproved.
	r := d.do(t, grains.KindQuote, "setQuoteDiscount", id, map[string]any{"percent": "5"}, opts{}).expect(t, "discount after approval", 200)
	q = quoteView{}
	r.decode(t, &q)
	mustf(t, q.Revision == 2 && q.Status == quote.StatusInProgress && q.Price == nil && len(q.Approvals) == 0 && q.ApprovedPriceHash == "",
		"revised quote: revision %d status %s price %v approvals %+v", q.Revision, q.Status, q.Price, q.Approvals)
	mustf(t, len(q.Revisions) == 1 && q.Revisions[0].Number == 1 && q.Revisions[0].Status == quote.StatusApproved &&
		q.Revisions[0].Price != nil && q.Revisions[0].Price.Hash == hash1 && q.Revisions[0].SupersededBy == "setQuoteDiscount",
		"frozen revisions %+v", q.Revisions)

	// Revision 2 needs pricing, submission and its own approval.
	d.do(t, grains.KindQuote, "accept", id, nil, opts{}).expectProblem(t, "accept the revised quote", 409, "invalid_transition")
	d.do(t, grains.KindQuote, "approve", id, nil, opts{}).expectProblem(t, "approve unsubmitted revision", 409, "invalid_transition")
	d.do(t, grains.KindQuote, "approve", id, map[string]any{"revision": 1}, opts{}).expectProblem(t, "approve revision 1", 409, "stale_revision")
	d.do(t, grains.KindQuote, "price", id, nil, opts{}).expect(t, "price revision 2", 200)
	r = d.do(t, grains.KindQuote, "submit", id, nil, opts{}).expect(t, "submit revision 2", 200)
	q = quoteView{}
	r.decode(t, &q)
	hash2 := q.Price.Hash
	mustf(t, q.Status == quote.StatusPending && hash2 != hash1, "submitted revision 2: status %s hash %s (revision 1 %s)", q.Status, hash2, hash1)
	d.do(t, grains.KindQuote, "approve", id, map[string]any{"revision": 2, "priceHash": hash1}, opts{}).
		expectProblem(t, "approve with revision 1's hash", 409, "stale_revision")
	d.do(t, grains.KindQuote, "reject", id, map[string]any{"reason": "x", "revision": 1}, opts{}).
		expectProblem(t, "reject revision 1", 409, "stale_revision")
	r = d.do(t, grains.KindQuote, "approve", id, map[string]any{"revision": 2, "priceHash": hash2}, opts{}).expect(t, "approve revision 2", 200)
	q = quoteView{}
	r.decode(t, &q)
	mustf(t, q.Status == quote.StatusApproved && len(q.Approvals) == 1 && q.Approvals[0].Revision == 2 && q.Approvals[0].PriceHash == hash2,
		"approved revision 2: status %s approvals %+v", q.Status, q.Approvals)

	// Both revisions are readable; revision 1 is as it was approved.
	r = d.do(t, grains.KindQuote, "revision", id, map[string]any{"revision": 1}, opts{}).expect(t, "read revision 1", 200)
	var rv revisionView
	r.decode(t, &rv)
	mustf(t, rv.QuoteID == id && rv.Number == 1 && !rv.Current && rv.Status == quote.StatusApproved && rv.Price != nil && rv.Price.Hash == hash1 &&
		len(rv.Approvals) == 1 && rv.Approvals[0].Revision == 1 && rv.Discount == nil, "revision 1: %s", r.Body)
	r = d.do(t, grains.KindQuote, "revision", id, map[string]any{"revision": 2}, opts{}).expect(t, "read revision 2", 200)
	rv = revisionView{}
	r.decode(t, &rv)
	mustf(t, rv.Number == 2 && rv.Current && rv.Status == quote.StatusApproved && rv.Price.Hash == hash2 && rv.Discount != nil,
		"revision 2: %s", r.Body)
	d.do(t, grains.KindQuote, "revision", id, map[string]any{"revision": 3}, opts{}).expectProblem(t, "read revision 3", 404, "not_found")

	// The document of revision 2, then acceptance with its hash. Only a
	// stored document can be attached.
	d.do(t, grains.KindQuote, "attachDocument", id, map[string]any{"revision": 2, "sha256": strings.Repeat("5e", 32), "artifactId": "art-" + id}, opts{}).
		expectProblem(t, "attach a document never stored", 422, "validation_failed")
	sha := renderDocument(t, d, id)
	d.do(t, grains.KindQuote, "attachDocument", id, map[string]any{"revision": 1, "sha256": sha, "artifactId": sha}, opts{}).
		expectProblem(t, "attach to revision 1", 409, "stale_revision")
	d.do(t, grains.KindQuote, "attachDocument", id, map[string]any{"revision": 2, "sha256": sha, "artifactId": sha}, opts{}).
		expect(t, "attach to revision 2 again", 200)
	d.do(t, grains.KindQuote, "accept", id, map[string]any{"documentSha256": strings.Repeat("0", 64)}, opts{}).
		expectProblem(t, "accept another document", 409, "document_hash_mismatch")
	r = d.do(t, grains.KindQuote, "accept", id, map[string]any{"documentSha256": sha, "channel": "portal"}, opts{}).expect(t, "accept", 200)
	q = quoteView{}
	r.decode(t, &q)
	mustf(t, q.Status == quote.StatusAccepted && q.Acceptance != nil && q.Acceptance.Revision == 2 && q.Acceptance.Channel == "portal" &&
		q.Acceptance.DocumentSHA256 == sha && q.Acceptance.PriceHash == hash2, "accepted: %s", r.Body)

	// An accepted quote takes no change.
	d.do(t, grains.KindQuote, "setQuoteDiscount", id, map[string]any{"percent": "6"}, opts{}).
		expectProblem(t, "discount after acceptance", 409, "invalid_transition")
	q, _ = getQuote(t, d, id)
	mustf(t, q.Revision == 2 && len(q.Revisions) == 1, "after refusal: revision %d, %d frozen", q.Revision, len(q.Revisions))
}
