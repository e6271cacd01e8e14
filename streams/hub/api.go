package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"time"

	"github.com/grainline/grainline/connectors/truth"
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
//
// With an idempotency key (in the client namespace) the commit that stores
// the subscription records the key, the request hash and that reply (ADR
// 0004), so a repeat answers the first reply, secret included, with
// replayed set and creates nothing; the key reused for another request is
// CodeIdempotencyKeyReused. The hash covers the actor, so only the
// principal that made the subscription gets its secret back. Concurrent
// first attempts with one key create one subscription: the store records
// the key once, and the others replay it.
func (r *Registry) Subscribe(ctx context.Context, tenant grains.TenantID, actor, idempotencyKey string, body []byte) (doc []byte, id string, replayed bool, err error) {
	t := string(tenant)
	hash := subscribeHash(actor, body)
	if idempotencyKey != "" {
		if doc, id, found, err := r.replay(ctx, t, idempotencyKey, hash); err != nil || found {
			return doc, id, err == nil, err
		}
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, "", false, grains.Errorf(grains.CodeBadRequest, "the body must be {callback, query, secret?}: %v", err)
	}
	var idem *truth.Idempotency
	if idempotencyKey != "" {
		idem = &truth.Idempotency{Key: idempotencyKey, RequestHash: hash}
	}
	sub, doc, err := r.create(ctx, t, actor, req, idem)
	if errors.Is(err, truth.ErrIdempotencyConflict) {
		// A concurrent attempt with the same key recorded it first.
		doc, id, found, err := r.replay(ctx, t, idempotencyKey, hash)
		if err == nil && !found {
			err = grains.Errorf(grains.CodeUnavailable, "hub subscribe: idempotency key %q is recorded but cannot be read yet; retry", idempotencyKey)
		}
		return doc, id, err == nil, err
	}
	if err != nil {
		return nil, "", false, err
	}
	return doc, sub.ID, false, nil
}

// commandCreate is the command name of a subscribe in idempotency records.
const commandCreate = "create"

// subscribeHash is the request hash of a subscribe: SHA-256 over kind, id,
// command and actor (NUL-separated) and the raw body, as the grains hash
// theirs but with the actor, whose replies carry the secret.
func subscribeHash(actor string, body []byte) []byte {
	h := sha256.New()
	for _, part := range []string{KindSubscriptions, "", commandCreate, actor} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(body)
	return h.Sum(nil)
}

// replay answers a subscribe whose key is recorded: the first reply and its
// subscription id when the record is of the same request,
// CodeIdempotencyKeyReused when it is not. found is false when the key is
// not recorded.
func (r *Registry) replay(ctx context.Context, tenant, key string, hash []byte) (doc []byte, id string, found bool, err error) {
	rec, err := r.store.Idempotency(ctx, tenant, key)
	if errors.Is(err, truth.ErrNotFound) {
		return nil, "", false, nil
	}
	if err != nil {
		return nil, "", false, grains.Errorf(grains.CodeUnavailable, "hub subscribe: reading idempotency key: %v", err)
	}
	var v View
	if rec.Aggregate != subsKey(tenant) || rec.Command != commandCreate || !bytes.Equal(rec.RequestHash, hash) ||
		json.Unmarshal(rec.Response, &v) != nil || v.ID == "" {
		return nil, "", true, grains.Errorf(grains.CodeIdempotencyKeyReused, "idempotency key was used for a different request")
	}
	return rec.Response, v.ID, true, nil
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
