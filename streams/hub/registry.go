package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
)

// Where the hub keeps its records in the truth store: one snapshot per
// tenant with the tenant's subscriptions, and one per subscription with its
// delivery state.
const (
	KindSubscriptions = "hub"
	IDSubscriptions   = "subscriptions"
	KindDelivery      = "hubdelivery"
)

// RegistryConfig configures a Registry.
type RegistryConfig struct {
	// RefreshInterval is how long a tenant's subscriptions are served from
	// memory before they are read again. Creates and deletes through this
	// Registry take effect at once; those made by another process, within
	// RefreshInterval. Default 2s.
	RefreshInterval time.Duration
	// MaxPerTenant caps a tenant's subscriptions. Default 100.
	MaxPerTenant int
	// AllowPrivate accepts callbacks at localhost or a literal loopback,
	// private or link-local address (see ErrAddressNotAllowed); off, such a
	// create is refused with violation invalid_callback. Match it with
	// Config.AllowPrivate.
	AllowPrivate bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// WithDefaults returns c with zero fields set to their defaults.
func (c RegistryConfig) WithDefaults() RegistryConfig {
	if c.RefreshInterval == 0 {
		c.RefreshInterval = 2 * time.Second
	}
	if c.MaxPerTenant == 0 {
		c.MaxPerTenant = 100
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Registry keeps subscriptions and delivery states in the truth store. It
// is safe for concurrent use.
type Registry struct {
	cfg   RegistryConfig
	store truth.Store
	mu    sync.Mutex
	cache map[string]cachedSubs
}

type cachedSubs struct {
	subs []Subscription
	at   time.Time
}

// subscriptions is the state of the per-tenant snapshot.
type subscriptions struct {
	Subscriptions []Subscription `json:"subscriptions"`
}

// NewRegistry returns a Registry on store.
func NewRegistry(store truth.Store, cfg RegistryConfig) (*Registry, error) {
	if store == nil {
		return nil, errors.New("hub: a truth store is required")
	}
	cfg = cfg.WithDefaults()
	if cfg.RefreshInterval < 0 || cfg.MaxPerTenant < 0 {
		return nil, fmt.Errorf("%w: negative RefreshInterval or MaxPerTenant", ErrConfig)
	}
	return &Registry{cfg: cfg, store: store, cache: map[string]cachedSubs{}}, nil
}

func subsKey(tenant string) truth.Key {
	return truth.Key{Tenant: tenant, Kind: KindSubscriptions, ID: IDSubscriptions}
}

func deliveryKey(tenant, id string) truth.Key {
	return truth.Key{Tenant: tenant, Kind: KindDelivery, ID: id}
}

// load reads a tenant's subscriptions and their snapshot revision (0: none).
func (r *Registry) load(ctx context.Context, tenant string) ([]Subscription, int64, error) {
	snap, err := r.store.Load(ctx, subsKey(tenant))
	if errors.Is(err, truth.ErrNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, grains.Errorf(grains.CodeUnavailable, "reading subscriptions: %v", err)
	}
	var s subscriptions
	if err := json.Unmarshal(snap.State, &s); err != nil {
		return nil, 0, fmt.Errorf("hub: decode subscriptions of %s: %w", tenant, err)
	}
	return s.Subscriptions, snap.Revision, nil
}

// Subscriptions returns a tenant's subscriptions, from memory when read
// within RefreshInterval. The slice must not be modified.
func (r *Registry) Subscriptions(ctx context.Context, tenant string) ([]Subscription, error) {
	now := r.cfg.Now()
	r.mu.Lock()
	c, ok := r.cache[tenant]
	r.mu.Unlock()
	if ok && now.Sub(c.at) < r.cfg.RefreshInterval {
		return c.subs, nil
	}
	subs, _, err := r.load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.cache[tenant] = cachedSubs{subs: subs, at: now}
	r.mu.Unlock()
	return subs, nil
}

// Lookup returns one subscription through the cache of Subscriptions.
func (r *Registry) Lookup(ctx context.Context, tenant, id string) (Subscription, bool, error) {
	subs, err := r.Subscriptions(ctx, tenant)
	if err != nil {
		return Subscription{}, false, err
	}
	for _, s := range subs {
		if s.ID == id {
			return s, true, nil
		}
	}
	return Subscription{}, false, nil
}

func (r *Registry) invalidate(tenant string) {
	r.mu.Lock()
	delete(r.cache, tenant)
	r.mu.Unlock()
}

// change applies f to a tenant's subscriptions and commits the result with
// an audit record, retrying a lost revision race a few times. With idem (not
// nil) the commit also records that idempotency record, on the tenant's
// subscriptions at the new revision; an error wrapping
// truth.ErrIdempotencyConflict when its key is recorded already.
func (r *Registry) change(ctx context.Context, tenant, actor, action, reason string, idem *truth.Idempotency, f func([]Subscription) ([]Subscription, error)) error {
	defer r.invalidate(tenant)
	for try := 0; try < 5; try++ {
		subs, rev, err := r.load(ctx, tenant)
		if err != nil {
			return err
		}
		next, err := f(slices.Clone(subs))
		if err != nil {
			return err
		}
		state, err := json.Marshal(subscriptions{Subscriptions: next})
		if err != nil {
			return err
		}
		now := r.cfg.Now().UTC()
		key := subsKey(tenant)
		if idem != nil {
			idem.Tenant, idem.Aggregate, idem.Revision, idem.CreatedAt = tenant, key, rev+1, now
		}
		res, err := r.store.Commit(ctx, []truth.Commit{{
			ExpectedRevision: rev,
			Snapshot:         truth.Snapshot{Key: key, Revision: rev + 1, State: state, UpdatedAt: now},
			Idempotency:      idem,
			Audit: []truth.Audit{{
				Tenant: tenant, Aggregate: key, Revision: rev + 1,
				Actor: actor, Action: action, Reason: reason, At: now,
			}},
		}})
		if err != nil {
			return grains.Errorf(grains.CodeUnavailable, "storing subscriptions: %v", err)
		}
		if errors.Is(res[0], truth.ErrRevisionConflict) {
			continue
		}
		if res[0] != nil {
			return fmt.Errorf("hub: store subscriptions: %w", res[0])
		}
		return nil
	}
	return grains.Errorf(grains.CodeConflict, "subscriptions of this tenant changed concurrently; retry")
}

// Create validates req and stores a new subscription of tenant. The secret
// is generated when req has none. The returned subscription carries it.
func (r *Registry) Create(ctx context.Context, tenant, actor string, req Request) (Subscription, error) {
	sub, _, err := r.create(ctx, tenant, actor, req, nil)
	return sub, err
}

// create is Create that also returns the reply to the creation (the view
// with the secret, as Subscribe answers it). With idem (Key and RequestHash
// set) the subscription's commit records the key and that reply; an error
// wrapping truth.ErrIdempotencyConflict when the key is recorded already.
func (r *Registry) create(ctx context.Context, tenant, actor string, req Request, idem *truth.Idempotency) (Subscription, []byte, error) {
	if err := req.Validate(); err != nil {
		return Subscription{}, nil, err
	}
	if !r.cfg.AllowPrivate {
		if err := checkCallbackHost(req.Callback); err != nil {
			return Subscription{}, nil, &grains.Error{Code: grains.CodeValidation, Message: "invalid subscription",
				Violations: []grains.Violation{{Pointer: "/callback", Code: "invalid_callback", Message: err.Error()}}}
		}
	}
	sub := Subscription{
		ID: newID(), Callback: req.Callback, Query: req.Query, Secret: req.Secret,
		CreatedAt: r.cfg.Now().UTC(), CreatedBy: actor,
	}
	if sub.Secret == "" {
		sub.Secret = NewSecret()
	}
	v := viewOf(sub)
	v.Secret = sub.Secret
	doc, err := json.Marshal(v)
	if err != nil {
		return Subscription{}, nil, err
	}
	if idem != nil {
		idem.Command, idem.Response = commandCreate, doc
	}
	err = r.change(ctx, tenant, actor, "subscribeHub", sub.ID, idem, func(subs []Subscription) ([]Subscription, error) {
		if len(subs) >= r.cfg.MaxPerTenant {
			return nil, &grains.Error{Code: grains.CodeValidation, Message: "too many subscriptions",
				Violations: []grains.Violation{{Pointer: "", Code: "limit_reached",
					Message: fmt.Sprintf("a tenant has at most %d subscriptions", r.cfg.MaxPerTenant)}}}
		}
		return append(subs, sub), nil
	})
	if err != nil {
		return Subscription{}, nil, err
	}
	return sub, doc, nil
}

// Delete removes a subscription of tenant; not_found when it has none by
// that id. Deliveries still queued for it are dropped.
func (r *Registry) Delete(ctx context.Context, tenant, actor, id string) error {
	return r.change(ctx, tenant, actor, "unsubscribeHub", id, nil, func(subs []Subscription) ([]Subscription, error) {
		i := slices.IndexFunc(subs, func(s Subscription) bool { return s.ID == id })
		if i < 0 {
			return nil, grains.Errorf(grains.CodeNotFound, "no subscription %s", id)
		}
		return slices.Delete(subs, i, i+1), nil
	})
}

// Get returns one subscription of tenant read from the store (not the
// cache) and its delivery state.
func (r *Registry) Get(ctx context.Context, tenant, id string) (Subscription, DeliveryState, error) {
	subs, _, err := r.load(ctx, tenant)
	if err != nil {
		return Subscription{}, DeliveryState{}, err
	}
	i := slices.IndexFunc(subs, func(s Subscription) bool { return s.ID == id })
	if i < 0 {
		return Subscription{}, DeliveryState{}, grains.Errorf(grains.CodeNotFound, "no subscription %s", id)
	}
	st, _, err := r.delivery(ctx, tenant, id)
	if err != nil {
		return Subscription{}, DeliveryState{}, err
	}
	return subs[i], st, nil
}

// List returns tenant's subscriptions read from the store.
func (r *Registry) List(ctx context.Context, tenant string) ([]Subscription, error) {
	subs, _, err := r.load(ctx, tenant)
	return subs, err
}

// Delivery states.
const (
	StatusOK       = "ok"       // the last delivery succeeded, or none was tried yet
	StatusRetrying = "retrying" // an event is being retried
	StatusFailing  = "failing"  // the last event was given up; until the next success
)

// DeliveryState is what the hub knows about deliveries to one subscriber,
// summed over every hub process.
type DeliveryState struct {
	Status string `json:"status"`
	// LastEventID is the last event delivered (2xx), at LastDeliveredAt.
	LastEventID     string     `json:"lastEventId,omitempty"`
	LastDeliveredAt *time.Time `json:"lastDeliveredAt,omitempty"`
	// EventID is the event of the latest attempt, Attempts its attempts so
	// far (1 for a first-time success).
	EventID  string `json:"eventId,omitempty"`
	Attempts int    `json:"attempts"`
	// LastError describes the latest failed attempt, at LastErrorAt.
	LastError      string     `json:"lastError,omitempty"`
	LastStatusCode int        `json:"lastStatusCode,omitempty"`
	LastErrorAt    *time.Time `json:"lastErrorAt,omitempty"`
	// Counts. Delivered events, failed attempts that were retried, and
	// events given up: Rejected (a 4xx other than 429), Exhausted (out of
	// attempts), Dropped (the subscriber's queue was full).
	Delivered int64 `json:"delivered"`
	Retried   int64 `json:"retried"`
	Rejected  int64 `json:"rejected"`
	Exhausted int64 `json:"exhausted"`
	Dropped   int64 `json:"dropped"`
	// LastGivenUpEventID is the last event given up.
	LastGivenUpEventID string     `json:"lastGivenUpEventId,omitempty"`
	UpdatedAt          *time.Time `json:"updatedAt,omitempty"`
}

func (r *Registry) delivery(ctx context.Context, tenant, id string) (DeliveryState, int64, error) {
	snap, err := r.store.Load(ctx, deliveryKey(tenant, id))
	if errors.Is(err, truth.ErrNotFound) {
		return DeliveryState{Status: StatusOK}, 0, nil
	}
	if err != nil {
		return DeliveryState{}, 0, grains.Errorf(grains.CodeUnavailable, "reading delivery state: %v", err)
	}
	var st DeliveryState
	if err := json.Unmarshal(snap.State, &st); err != nil {
		return DeliveryState{}, 0, fmt.Errorf("hub: decode delivery state %s/%s: %w", tenant, id, err)
	}
	return st, snap.Revision, nil
}

// Delivery returns the delivery state of one subscription.
func (r *Registry) Delivery(ctx context.Context, tenant, id string) (DeliveryState, error) {
	st, _, err := r.delivery(ctx, tenant, id)
	return st, err
}

// record applies f to a subscription's delivery state and commits it,
// re-reading and re-applying f when another process committed first.
func (r *Registry) record(ctx context.Context, tenant, id string, f func(*DeliveryState)) error {
	for try := 0; try < 10; try++ {
		st, rev, err := r.delivery(ctx, tenant, id)
		if err != nil {
			return err
		}
		f(&st)
		now := r.cfg.Now().UTC()
		st.UpdatedAt = &now
		state, err := json.Marshal(st)
		if err != nil {
			return err
		}
		res, err := r.store.Commit(ctx, []truth.Commit{{
			ExpectedRevision: rev,
			Snapshot:         truth.Snapshot{Key: deliveryKey(tenant, id), Revision: rev + 1, State: state, UpdatedAt: now},
		}})
		if err != nil {
			return fmt.Errorf("hub: store delivery state: %w", err)
		}
		if errors.Is(res[0], truth.ErrRevisionConflict) {
			continue
		}
		return res[0]
	}
	return fmt.Errorf("hub: delivery state of %s/%s: %w", tenant, id, truth.ErrRevisionConflict)
}
