package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/grains/quote"
	"github.com/grainline/grainline/internal/testenv"
)

// quoteView is a quote as the API returns it: its state and, once its
// order exists, the link to it.
type quoteView struct {
	quote.State
	Order *struct {
		ID   string `json:"id"`
		Href string `json:"href"`
	} `json:"order"`
}

type orderList struct {
	Items []order.State `json:"items"`
}

// journeyTimeout bounds the asynchronous part of a journey (relay, intake,
// router, worker, read model).
const journeyTimeout = 60 * time.Second

// firstOffering reads the catalog through d and returns an offering id.
func firstOffering(t *testing.T, d door) string {
	t.Helper()
	r := d.do(t, "catalog", "get", "", nil, opts{}).expect(t, "catalog", 200)
	var cat catalog.Catalog
	r.decode(t, &cat)
	if len(cat.Offerings) == 0 {
		t.Fatalf("catalog has no offerings: %s", r.Body)
	}
	return cat.Offerings[0].ID
}

// createQuote creates a quote through d and returns its id.
func createQuote(t *testing.T, d door, key string) string {
	t.Helper()
	r := d.do(t, grains.KindQuote, "create", "", map[string]string{
		"customerId": "cust-42", "customerName": "Acme GmbH", "currency": "EUR",
	}, opts{idemKey: key}).expect(t, "create quote", 201)
	var q quoteView
	r.decode(t, &q)
	if q.ID == "" || q.Status != quote.StatusInProgress || r.ETag != `"1"` {
		t.Fatalf("created quote: id %q status %q etag %s", q.ID, q.Status, r.ETag)
	}
	return q.ID
}

// toApproved drives a fresh quote with one line to approved.
func toApproved(t *testing.T, d door, offering string) string {
	t.Helper()
	id := createQuote(t, d, "")
	d.do(t, grains.KindQuote, "addLine", id, map[string]any{"offeringId": offering, "quantity": 3}, opts{}).expect(t, "addLine", 200)
	for _, c := range []string{"price", "submit", "approve"} {
		d.do(t, grains.KindQuote, c, id, nil, opts{}).expect(t, c, 200)
	}
	return id
}

// awaitOrder polls until the quote's order is listed with status want and
// returns it.
func awaitOrder(t *testing.T, d door, quoteID string, want order.Status) order.State {
	t.Helper()
	var got order.State
	eventually(t, journeyTimeout, func() (bool, string) {
		r := d.do(t, grains.KindOrder, "list", quoteID, nil, opts{})
		if r.Status != 200 {
			return false, fmt.Sprintf("orders?quoteId: status %d: %s", r.Status, r.Body)
		}
		var l orderList
		r.decode(t, &l)
		if len(l.Items) > 1 {
			t.Fatalf("quote %s lists %d orders: %s", quoteID, len(l.Items), r.Body)
		}
		if len(l.Items) == 0 {
			return false, "no order listed for quote " + quoteID
		}
		got = l.Items[0]
		return got.Status == want, fmt.Sprintf("order %s is %q, want %q", got.ID, got.Status, want)
	})
	return got
}

// journeyResult is what a journey leaves behind for further checks.
type journeyResult struct {
	quoteID    string
	orderID    string
	acceptETag string
}

// journey runs a quote from creation to a completed order through d,
// checking optimistic concurrency, idempotent replays and error replies on
// the way.
func journey(t *testing.T, d door) journeyResult {
	t.Helper()
	offering := firstOffering(t, d)
	key := "create-" + testenv.RandomSuffix()

	// Create, and replay the create: same quote, same body, marked replayed.
	created := d.do(t, grains.KindQuote, "create", "", map[string]string{
		"customerId": "cust-42", "customerName": "Acme GmbH", "currency": "EUR",
	}, opts{idemKey: key}).expect(t, "create quote", 201)
	var q quoteView
	created.decode(t, &q)
	if q.Status != quote.StatusInProgress || created.ETag != `"1"` || created.Replayed {
		t.Fatalf("created quote: status %q etag %s replayed %v", q.Status, created.ETag, created.Replayed)
	}
	if created.ID != q.ID {
		t.Fatalf("create reply names id %q, body has %q", created.ID, q.ID)
	}
	id := q.ID
	again := d.do(t, grains.KindQuote, "create", "", map[string]string{
		"customerId": "cust-42", "customerName": "Acme GmbH", "currency": "EUR",
	}, opts{idemKey: key}).expect(t, "replayed create", 201)
	if !again.Replayed || !bytes.Equal(again.Body, created.Body) || again.ETag != created.ETag {
		t.Fatalf("replayed create: replayed %v etag %s, body\n%s\nwant\n%s", again.Replayed, again.ETag, again.Body, created.Body)
	}
	// The same key on a different request is refused.
	d.do(t, grains.KindQuote, "create", "", map[string]string{
		"customerId": "cust-43", "customerName": "Other", "currency": "EUR",
	}, opts{idemKey: key}).expectProblem(t, "create with a reused key", 422, "idempotency_key_reused")

	// addLine at the current revision, under an idempotency key.
	lineKey := "line-" + testenv.RandomSuffix()
	line := map[string]any{"offeringId": offering, "quantity": 2}
	added := d.do(t, grains.KindQuote, "addLine", id, line, opts{idemKey: lineKey, ifMatch: created.ETag}).expect(t, "addLine", 200)
	if added.ETag != `"2"` || added.Replayed {
		t.Fatalf("addLine: etag %s replayed %v", added.ETag, added.Replayed)
	}
	replayed := d.do(t, grains.KindQuote, "addLine", id, line, opts{idemKey: lineKey}).expect(t, "replayed addLine", 200)
	if !replayed.Replayed || !bytes.Equal(replayed.Body, added.Body) || replayed.ETag != added.ETag {
		t.Fatalf("replayed addLine: replayed %v etag %s, body\n%s\nwant\n%s", replayed.Replayed, replayed.ETag, replayed.Body, added.Body)
	}
	// A stale If-Match is refused and changes nothing.
	d.do(t, grains.KindQuote, "addLine", id, line, opts{ifMatch: created.ETag}).
		expectProblem(t, "addLine with a stale If-Match", 412, "revision_mismatch")
	got := d.do(t, grains.KindQuote, "get", id, nil, opts{}).expect(t, "get quote", 200)
	got.decode(t, &q)
	if got.ETag != `"2"` || len(q.Lines) != 1 || q.Lines[0].OfferingID != offering || q.Lines[0].Quantity != 2 {
		t.Fatalf("after replay and stale write: etag %s lines %+v, want one line of 2 %s at revision 2", got.ETag, q.Lines, offering)
	}

	// Accepting too early is an invalid transition, with the same problem on
	// both doors.
	d.do(t, grains.KindQuote, "accept", id, nil, opts{}).expectProblem(t, "early accept", 409, "invalid_transition")

	for _, c := range []string{"price", "submit", "approve"} {
		d.do(t, grains.KindQuote, c, id, nil, opts{}).expect(t, c, 200)
	}
	// The customer accepts the rendered document of the approved revision.
	d.do(t, grains.KindQuote, "accept", id, nil, opts{}).expectProblem(t, "accept without a document", 409, "document_required")
	sha := renderDocument(t, d, id)
	accepted := acceptDocument(t, d, id, sha)
	accepted.decode(t, &q)
	wantOrder := order.IDForQuote(id)
	if q.Status != quote.StatusAccepted || q.OrderID != wantOrder || q.ApprovedPriceHash == "" || q.Price == nil {
		t.Fatalf("accepted quote: status %q order %q hash %q price %v", q.Status, q.OrderID, q.ApprovedPriceHash, q.Price)
	}
	if q.Acceptance == nil || q.Acceptance.DocumentSHA256 != sha {
		t.Fatalf("acceptance %+v does not name document %s", q.Acceptance, sha)
	}
	if accepted.ETag != `"7"` {
		t.Fatalf("accepted quote etag %s, want \"7\" (create, addLine, price, submit, approve, attachDocument, accept)", accepted.ETag)
	}

	// The order appears, runs its tasks (plan v2, the default) and
	// completes.
	o := awaitOrder(t, d, id, order.StatusCompleted)
	if o.ID != wantOrder || o.QuoteID != id || o.PriceHash != q.ApprovedPriceHash || o.OneTimeTotal != q.Price.OneTimeTotal {
		t.Fatalf("order %+v does not match accepted quote %+v", o, q.State)
	}
	if o.PlanVersion != 2 || !allTasksDone(o) || o.CompletedAt == nil {
		t.Fatalf("completed order on plan %d, tasks %+v completedAt %v, want plan 2 with every task done", o.PlanVersion, o.Tasks, o.CompletedAt)
	}
	if len(o.Lines) != 1 || o.Lines[0].OfferingID != offering {
		t.Fatalf("order lines %+v, want the quote's one line", o.Lines)
	}
	og := d.do(t, grains.KindOrder, "get", wantOrder, nil, opts{}).expect(t, "get order", 200)
	var os order.State
	og.decode(t, &os)
	if os.Status != order.StatusCompleted || og.ETag == "" {
		t.Fatalf("GET order: status %q etag %q", os.Status, og.ETag)
	}
	checkAttempts(t, d, os)

	// The quote links its order and did not move.
	final := d.do(t, grains.KindQuote, "get", id, nil, opts{}).expect(t, "get accepted quote", 200)
	final.decode(t, &q)
	if q.Order == nil || q.Order.ID != wantOrder || q.Order.Href != "/v1/orders/"+wantOrder {
		t.Fatalf("accepted quote order link %+v, want %s: %s", q.Order, wantOrder, final.Body)
	}
	if final.ETag != accepted.ETag || q.Status != quote.StatusAccepted {
		t.Fatalf("quote after the order: etag %s status %q, want %s accepted", final.ETag, q.Status, accepted.ETag)
	}
	// A second acceptance is refused.
	d.do(t, grains.KindQuote, "accept", id, nil, opts{}).expectProblem(t, "second accept", 409, "invalid_transition")
	return journeyResult{quoteID: id, orderID: wantOrder, acceptETag: accepted.ETag}
}

// allTasksDone reports whether o has tasks and every one is done.
func allTasksDone(o order.State) bool {
	for _, t := range o.Tasks {
		if t.Status != order.TaskStatusDone {
			return false
		}
	}
	return len(o.Tasks) > 0
}

// orderTasks is the body of the order's task view.
type orderTasks struct {
	OrderID string `json:"orderId"`
	Items   []struct {
		TaskID   string `json:"taskId"`
		Status   string `json:"status"`
		Attempts []struct {
			N           int    `json:"n"`
			Operation   string `json:"operation"`
			ExternalKey string `json:"externalKey"`
			Outcome     string `json:"outcome"`
			EndedAt     string `json:"endedAt"`
		} `json:"attempts"`
	} `json:"items"`
}

// checkAttempts reads a completed order's tasks through d: every task is
// done after exactly one recorded call that succeeded (the simulators
// neither fail nor lose replies here).
func checkAttempts(t *testing.T, d door, o order.State) {
	t.Helper()
	r := d.do(t, grains.KindOrder, "tasks", o.ID, nil, opts{}).expect(t, "order tasks", 200)
	var ts orderTasks
	r.decode(t, &ts)
	if ts.OrderID != o.ID || len(ts.Items) != len(o.Tasks) {
		t.Fatalf("task view of %s: %s", o.ID, r.Body)
	}
	for i, it := range ts.Items {
		if it.TaskID != o.Tasks[i].TaskID || it.Status != "done" || len(it.Attempts) != 1 ||
			it.Attempts[0].N != 1 || it.Attempts[0].Outcome != "succeeded" || it.Attempts[0].EndedAt == "" ||
			it.Attempts[0].Operation == "query" || !strings.HasSuffix(it.Attempts[0].ExternalKey, ":"+it.TaskID) {
			t.Fatalf("task %d of the view: %+v\n%s", i, it, r.Body)
		}
	}
}

func TestJourneyHTTP(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{})
		d := newHTTPDoor(e.p.HTTPAddr, e.salesApprover())
		eventually(t, journeyTimeout, func() (bool, string) {
			r := d.request(t, "GET", "/readyz", nil, opts{})
			return r.Status == 200, fmt.Sprintf("/readyz %d: %s", r.Status, r.Body)
		})

		res := journey(t, d)

		// HTTP specifics: Location on create, 401 without a token, 403
		// for a role the token lacks, 404 for an unknown id.
		r := d.do(t, grains.KindQuote, "create", "", map[string]string{"customerId": "c", "currency": "EUR"}, opts{}).expect(t, "create", 201)
		if loc := r.Header["Location"]; !strings.HasPrefix(loc, "/v1/quotes/q-") {
			t.Fatalf("create Location %q", loc)
		}
		anon := newHTTPDoor(e.p.HTTPAddr, "")
		anon.do(t, grains.KindQuote, "get", res.quoteID, nil, opts{}).expectProblem(t, "no token", 401, "unauthenticated")
		salesOnly := newHTTPDoor(e.p.HTTPAddr, e.token("demo", "sales"))
		pending := toPending(t, salesOnly, firstOffering(t, d))
		salesOnly.do(t, grains.KindQuote, "approve", pending, nil, opts{}).expectProblem(t, "approve without approver role", 403, "forbidden")
		d.do(t, grains.KindQuote, "get", "q-doesnotexist", nil, opts{}).expectProblem(t, "unknown quote", 404, "not_found")
		d.request(t, "GET", "/v1/quotes/"+res.quoteID, nil, opts{}).expect(t, "get", 200)
	})
}

func TestJourneyNATS(t *testing.T) {
	eachMode(t, func(t *testing.T, m mode) {
		e := startPlatform(t, m, platformOpts{})
		d := newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, "demo", e.salesApprover())

		res := journey(t, d)

		// Replies name the aggregate and its revision in headers.
		r := d.do(t, grains.KindQuote, "get", res.quoteID, nil, opts{}).expect(t, "get quote", 200)
		if r.ID != res.quoteID || r.ETag != res.acceptETag || r.ContentType != "application/json" || r.Header["Status"] != "200" {
			t.Fatalf("NATS get reply headers %v", r.Header)
		}
		// Error replies carry Status, Grainline-Error-Code and a problem body.
		for _, c := range []struct {
			what    string
			d       door
			kind    grains.Kind
			command string
			id      string
			status  int
			code    string
		}{
			{"unknown quote", d, grains.KindQuote, "get", "q-doesnotexist", 404, "not_found"},
			{"unknown command", d, grains.KindQuote, "explode", res.quoteID, 404, "not_found"},
			{"bad id", d, grains.KindQuote, "get", "no spaces allowed", 400, "bad_request"},
			{"no token", newNATSDoor(t, e.p.NATSAddr, e.natsPrefix, "demo", ""), grains.KindQuote, "get", res.quoteID, 401, "unauthenticated"},
			{"cancel accepted quote", d, grains.KindQuote, "cancel", res.quoteID, 409, "invalid_transition"},
		} {
			r := c.d.do(t, c.kind, c.command, c.id, nil, opts{})
			r.expectProblem(t, c.what, c.status, c.code)
			if r.Header["Status"] != fmt.Sprint(c.status) || r.Header["Grainline-Error-Code"] != c.code {
				t.Fatalf("%s: reply headers %v", c.what, r.Header)
			}
		}
	})
}

// toPending drives a fresh quote to pending (submitted).
func toPending(t *testing.T, d door, offering string) string {
	t.Helper()
	id := createQuote(t, d, "")
	d.do(t, grains.KindQuote, "addLine", id, map[string]any{"offeringId": offering, "quantity": 1}, opts{}).expect(t, "addLine", 200)
	d.do(t, grains.KindQuote, "price", id, nil, opts{}).expect(t, "price", 200)
	d.do(t, grains.KindQuote, "submit", id, nil, opts{}).expect(t, "submit", 200)
	return id
}
