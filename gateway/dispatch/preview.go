package dispatch

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/pricing"
	"github.com/grainline/grainline/grains/quote"
)

// CommandPricePreview prices a quote's current lines without committing
// anything (quote.Preview over the state the Reader returns).
const CommandPricePreview = quote.CmdPricePreview

// PreviewBody is the reply to a price preview: the pricing result of the
// quote at Revision, as price would commit it now.
type PreviewBody struct {
	QuoteID  string `json:"quoteId"`
	Revision int64  `json:"revision"`
	pricing.View
}

// preview reads the quote and prices it in this process: no command reaches
// the grain, so no state, revision, outbox or audit record changes. The
// lines carry the list prices and tiers of the catalog version they were
// added from, so the tenant's current catalog is not consulted: the preview
// is exactly what the price command would commit.
func (d *Dispatcher) preview(ctx context.Context, req Request) Reply {
	if err := ValidID(req.ID); err != nil {
		return Fail(err, req.Instance)
	}
	if _, err := ObjectPayload(req.Payload); err != nil {
		return Fail(err, req.Instance)
	}
	res, err := d.deps.Reader.Get(ctx, req.Principal.Tenant, grains.KindQuote, req.ID)
	if err != nil {
		return Fail(err, req.Instance)
	}
	var s quote.State
	if err := json.Unmarshal(res.State, &s); err != nil {
		return Fail(grains.Errorf(grains.CodeInternal, "quote %s: state does not decode: %v", req.ID, err), req.Instance)
	}
	r, err := quote.Preview(s, grains.Env{
		Tenant: req.Principal.Tenant, ID: req.ID, Actor: req.Principal.Subject,
		Roles: req.Principal.Roles, CorrelationID: req.CorrelationID,
	})
	if err != nil {
		return Fail(err, req.Instance)
	}
	body, err := json.Marshal(PreviewBody{QuoteID: req.ID, Revision: res.Revision, View: r.View()})
	if err != nil {
		return Fail(err, req.Instance)
	}
	return ok(http.StatusOK, body, req.ID, res.Revision)
}
