package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/grainline/grainline/connectors/documents"
	"github.com/grainline/grainline/gateway/dispatch"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/quote"
	"github.com/grainline/grainline/internal/platform"
)

// renderDocument renders, stores and attaches the document of the quote's
// current revision through d (201 the first time, 200 after) and returns
// its SHA-256.
func renderDocument(t *testing.T, d door, id string) string {
	t.Helper()
	r := d.do(t, grains.KindQuote, "renderDocument", id, nil, opts{})
	if r.Status != 201 && r.Status != 200 {
		t.Fatalf("render document of %s: status %d (code %q): %s", id, r.Status, r.Code, r.Body)
	}
	var doc dispatch.DocumentBody
	r.decode(t, &doc)
	if len(doc.SHA256) != 64 || doc.QuoteID != id || doc.MediaType != "application/pdf" || doc.Href != dispatch.ArtifactHref(doc.SHA256) {
		t.Fatalf("render document of %s: %s", id, r.Body)
	}
	return doc.SHA256
}

// acceptDocument accepts the quote, naming the document the customer saw.
func acceptDocument(t *testing.T, d door, id, sha string) reply {
	t.Helper()
	return d.do(t, grains.KindQuote, "accept", id, map[string]any{"documentSha256": sha, "channel": "portal"}, opts{}).
		expect(t, "accept "+id, 200)
}

// documentJourney takes a quote through d to acceptance with its document:
// acceptance without the document, without its hash or with another hash
// is refused; rendering again gives the same document.
func documentJourney(t *testing.T, d door) (quoteID, sha string) {
	t.Helper()
	id := toApproved(t, d, firstOffering(t, d))
	d.do(t, grains.KindQuote, "accept", id, map[string]any{"documentSha256": string(bytes.Repeat([]byte("a"), 64))}, opts{}).
		expectProblem(t, "accept before a document", 409, "document_required")

	first := d.do(t, grains.KindQuote, "renderDocument", id, nil, opts{}).expect(t, "render document", 201)
	var doc dispatch.DocumentBody
	first.decode(t, &doc)
	sha = doc.SHA256
	if doc.Revision != 1 || doc.AttachedBy == "" || doc.Size == 0 || len(sha) != 64 {
		t.Fatalf("rendered document: %s", first.Body)
	}
	// Deterministic: rendering the same revision again is the same document.
	if again := renderDocument(t, d, id); again != sha {
		t.Fatalf("second render of revision 1 is %s, first was %s", again, sha)
	}
	var q quoteView
	d.do(t, grains.KindQuote, "get", id, nil, opts{}).expect(t, "get quote", 200).decode(t, &q)
	if q.Document == nil || q.Document.SHA256 != sha || q.Document.Revision != 1 || q.Document.ArtifactID != sha {
		t.Fatalf("quote document %+v, want %s at revision 1", q.Document, sha)
	}

	d.do(t, grains.KindQuote, "accept", id, nil, opts{}).
		expectProblem(t, "accept without documentSha256", 409, "document_hash_mismatch")
	other := sha256.Sum256([]byte("not the document"))
	d.do(t, grains.KindQuote, "accept", id, map[string]any{"documentSha256": hex.EncodeToString(other[:])}, opts{}).
		expectProblem(t, "accept with another document's hash", 409, "document_hash_mismatch")
	acceptDocument(t, d, id, sha).decode(t, &q)
	if q.Status != quote.StatusAccepted || q.Acceptance == nil || q.Acceptance.DocumentSHA256 != sha || q.Acceptance.Channel != "portal" {
		t.Fatalf("accepted quote: status %s acceptance %+v", q.Status, q.Acceptance)
	}
	// Once accepted, a render answers the accepted document.
	if after := renderDocument(t, d, id); after != sha {
		t.Fatalf("render after acceptance: %s, want %s", after, sha)
	}
	if o := awaitOrder(t, d, id, order.StatusCompleted); o.ID != order.IDForQuote(id) {
		t.Fatalf("order %s, want %s", o.ID, order.IDForQuote(id))
	}
	return id, sha
}

// checkDocumentBytes fetches the quote's document and its artifact over HTTP
// and checks bytes, digest headers and tenant scoping.
func checkDocumentBytes(t *testing.T, e *env, id, sha string) {
	t.Helper()
	d := newHTTPDoor(e.p.HTTPAddr, e.salesApprover())
	r := d.request(t, "GET", "/v1/quotes/"+id+"/document", nil, opts{}).expect(t, "GET document", 200)
	sum := sha256.Sum256(r.Body)
	if hex.EncodeToString(sum[:]) != sha || r.ContentType != "application/pdf" || !bytes.HasPrefix(r.Body, []byte("%PDF-")) {
		t.Fatalf("GET document: %s, %d bytes hashing to %x; want the PDF %s", r.ContentType, len(r.Body), sum, sha)
	}
	if got, want := r.Header["Repr-Digest"], "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":"; got != want || r.ETag != `"`+sha+`"` {
		t.Fatalf("GET document headers: Repr-Digest %q ETag %q; want %q", got, r.ETag, want)
	}
	if !bytes.Contains(r.Body, []byte(id)) {
		t.Fatalf("the document does not name quote %s", id)
	}
	// The evidence checks out: re-rendering the accepted quote's revision
	// from its state gives the very bytes the customer accepted.
	state := d.do(t, grains.KindQuote, "get", id, nil, opts{}).expect(t, "get accepted quote", 200)
	again, err := documents.Render(documents.Input{Seller: string(platform.DemoTenant), State: state.Body})
	if err != nil || again.SHA256 != sha || !bytes.Equal(again.Bytes, r.Body) {
		t.Fatalf("re-render of the accepted quote: %s, %v; want %s", again.SHA256, err, sha)
	}
	a := d.request(t, "GET", "/v1/artifacts/"+sha, nil, opts{}).expect(t, "GET artifact", 200)
	if !bytes.Equal(a.Body, r.Body) {
		t.Fatal("the artifact is not the quote's document")
	}
	// Another tenant cannot fetch it, by digest or through the quote.
	other := newHTTPDoor(e.p.HTTPAddr, e.token("other", "sales", "approver"))
	other.request(t, "GET", "/v1/artifacts/"+sha, nil, opts{}).expectProblem(t, "other tenant's artifact", 404, "not_found")
	other.request(t, "GET", "/v1/quotes/"+id+"/document", nil, opts{}).expectProblem(t, "other tenant's document", 404, "not_found")
}

func TestDocumentJourneyHTTP(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{})
		d := newHTTPDoor(e.p.HTTPAddr, e.salesApprover())
		id, sha := documentJourney(t, d)
		checkDocumentBytes(t, e, id, sha)
	})
}

func TestDocumentJourneyNATS(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{})
		d := newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, platform.DemoTenant, e.salesApprover())
		id, sha := documentJourney(t, d)
		var meta dispatch.DocumentBody
		d.do(t, grains.KindQuote, "document", id, nil, opts{}).expect(t, "document metadata", 200).decode(t, &meta)
		if meta.SHA256 != sha || meta.Revision != 1 || meta.Href != dispatch.ArtifactHref(sha) {
			t.Fatalf("NATS document metadata %+v, want %s", meta, sha)
		}
		// Another tenant's subject and token reach neither the quote nor
		// its document.
		other := newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, "other", e.token("other", "sales", "approver"))
		other.do(t, grains.KindQuote, "document", id, nil, opts{}).expectProblem(t, "other tenant's document", 404, "not_found")
		other.do(t, grains.KindQuote, "renderDocument", id, nil, opts{}).expectProblem(t, "other tenant's render", 404, "not_found")
		checkDocumentBytes(t, e, id, sha)
	})
}

// A new revision drops the document: the quote cannot be accepted on the
// old revision's document, GET document is 404 until the new revision is
// approved and rendered, and the old artifact stays readable.
func TestDocumentOfANewRevision(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{noStreams: true})
		d := newHTTPDoor(e.p.HTTPAddr, e.salesApprover())
		id := toApproved(t, d, firstOffering(t, d))
		sha1 := renderDocument(t, d, id)
		d.do(t, grains.KindQuote, "setQuoteDiscount", id, map[string]any{"percent": "5"}, opts{}).expect(t, "discount after approval", 200)
		d.request(t, "GET", "/v1/quotes/"+id+"/document", nil, opts{}).expectProblem(t, "document of revision 2", 404, "not_found")
		d.do(t, grains.KindQuote, "renderDocument", id, nil, opts{}).expectProblem(t, "render revision 2 before approval", 409, "invalid_transition")
		for _, c := range []string{"price", "submit", "approve"} {
			d.do(t, grains.KindQuote, c, id, nil, opts{}).expect(t, c, 200)
		}
		d.do(t, grains.KindQuote, "accept", id, map[string]any{"documentSha256": sha1}, opts{}).
			expectProblem(t, "accept revision 2 with revision 1's document", 409, "document_required")
		d.do(t, grains.KindQuote, "renderDocument", id, map[string]any{"revision": 1}, opts{}).
			expectProblem(t, "render naming revision 1", 409, "stale_revision")
		sha2 := renderDocument(t, d, id)
		if sha2 == sha1 {
			t.Fatal("revision 2 rendered the same document as revision 1")
		}
		d.do(t, grains.KindQuote, "accept", id, map[string]any{"documentSha256": sha1}, opts{}).
			expectProblem(t, "accept with revision 1's document", 409, "document_hash_mismatch")
		acceptDocument(t, d, id, sha2)
		old := d.request(t, "GET", "/v1/artifacts/"+sha1, nil, opts{}).expect(t, "revision 1's artifact", 200)
		if sum := sha256.Sum256(old.Body); hex.EncodeToString(sum[:]) != sha1 {
			t.Fatal("revision 1's artifact changed")
		}
	})
}
