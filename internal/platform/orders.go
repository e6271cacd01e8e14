package platform

import (
	"context"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
	"github.com/grainline/grainline/tables/orderstatus"
)

// orderIndex finds the order an accepted quote became: first in the
// order-status table (the read model), then, while the table has not caught
// up, at the order grain whose id the quote id determines.
type orderIndex struct {
	reader *orderstatus.Reader // nil without streams
	grains call.Reader
}

func (o *orderIndex) OrderForQuote(ctx context.Context, tenant grains.TenantID, quoteID string) (string, bool, error) {
	if o.reader != nil {
		if st, ok := o.reader.ForQuote(string(tenant), quoteID); ok {
			return st.OrderID, true, nil
		}
	}
	id := order.IDForQuote(quoteID)
	if _, err := o.grains.Get(ctx, tenant, grains.KindOrder, id); err != nil {
		if grains.CodeOf(err) == grains.CodeNotFound {
			return "", false, nil
		}
		return "", false, err
	}
	return id, true, nil
}
