package dispatch

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/quote"
)

// CommandRevision reads one revision of a quote: the current one or a
// frozen earlier one (quote.RevisionOf). Its payload is {"revision": n}.
const CommandRevision = "revision"

// RevisionBody is the reply to a revision read: revision Number of quote
// QuoteID (see quote.Revision).
type RevisionBody struct {
	QuoteID string `json:"quoteId"`
	quote.Revision
}

// revision reads the quote and picks revision n from its state; no command
// reaches the grain. A revision the quote does not have is not_found.
func (d *Dispatcher) revision(ctx context.Context, req Request) Reply {
	if err := ValidID(req.ID); err != nil {
		return Fail(err, req.Instance)
	}
	payload, err := ObjectPayload(req.Payload)
	if err != nil {
		return Fail(err, req.Instance)
	}
	var q struct {
		Revision int `json:"revision"`
	}
	if err := grains.DecodePayload(CommandRevision, payload, &q, true); err != nil {
		return Fail(err, req.Instance)
	}
	if q.Revision < 1 {
		return Fail(&grains.Error{Code: grains.CodeBadRequest, Message: "revision must be a number from 1",
			Violations: []grains.Violation{{Pointer: "/revision", Code: "range", Message: "revision must be at least 1"}}}, req.Instance)
	}
	res, err := d.deps.Reader.Get(ctx, req.Principal.Tenant, grains.KindQuote, req.ID)
	if err != nil {
		return Fail(err, req.Instance)
	}
	var s quote.State
	if err := json.Unmarshal(res.State, &s); err != nil {
		return Fail(grains.Errorf(grains.CodeInternal, "quote %s: state does not decode: %v", req.ID, err), req.Instance)
	}
	r, found := quote.RevisionOf(s, q.Revision)
	if !found {
		return Fail(grains.Errorf(grains.CodeNotFound, "quote %s has no revision %d", req.ID, q.Revision), req.Instance)
	}
	body, err := json.Marshal(RevisionBody{QuoteID: req.ID, Revision: r})
	if err != nil {
		return Fail(err, req.Instance)
	}
	return ok(http.StatusOK, body, req.ID, res.Revision)
}
