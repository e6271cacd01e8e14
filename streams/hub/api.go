package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/grainline/grainline/grains"
)

// View is a subscription as the API shows it: never with its secret, except
// in the reply to its creation.
type View struct {
	ID        string    `json:"id"`
	Href      string    `json:"href"`
	Callback  string    `json:"callback"`
	Query     string    `json:"query"`
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	CreatedBy string    `json:"createdBy"`
	// Delivery is the delivery state (GET /v1/hub/{id} only).
	Delivery *DeliveryState `json:"delivery,omitempty"`
}

func viewOf(s Subscription) View {
	return View{ID: s.ID, Href: "/v1/hub/" + s.ID, Callback: s.Callback, Query: s.Query, CreatedAt: s.CreatedAt, CreatedBy: s.CreatedBy}
}

// Subscribe creates a subscription from a JSON body ({callback, query,
// secret?}) and returns its view with the secret, and its id.
func (r *Registry) Subscribe(ctx context.Context, tenant grains.TenantID, actor string, body []byte) ([]byte, string, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, "", grains.Errorf(grains.CodeBadRequest, "the body must be {callback, query, secret?}: %v", err)
	}
	sub, err := r.Create(ctx, string(tenant), actor, req)
	if err != nil {
		return nil, "", err
	}
	v := viewOf(sub)
	v.Secret = sub.Secret
	out, err := json.Marshal(v)
	return out, sub.ID, err
}

// SubscriptionsJSON returns {"items": [...]} with a tenant's subscriptions,
// without secrets.
func (r *Registry) SubscriptionsJSON(ctx context.Context, tenant grains.TenantID) ([]byte, error) {
	subs, err := r.List(ctx, string(tenant))
	if err != nil {
		return nil, err
	}
	items := make([]View, 0, len(subs))
	for _, s := range subs {
		items = append(items, viewOf(s))
	}
	return json.Marshal(struct {
		Items []View `json:"items"`
	}{items})
}

// SubscriptionJSON returns one subscription's view with its delivery state,
// without the secret.
func (r *Registry) SubscriptionJSON(ctx context.Context, tenant grains.TenantID, id string) ([]byte, error) {
	sub, st, err := r.Get(ctx, string(tenant), id)
	if err != nil {
		return nil, err
	}
	v := viewOf(sub)
	v.Delivery = &st
	return json.Marshal(v)
}

// Unsubscribe deletes a subscription.
func (r *Registry) Unsubscribe(ctx context.Context, tenant grains.TenantID, actor, id string) error {
	return r.Delete(ctx, string(tenant), actor, id)
}
