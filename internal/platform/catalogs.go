package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
)

// catalogKind and catalogID address a tenant's current catalog in the truth
// store: one snapshot per tenant.
const (
	catalogKind = "catalog"
	catalogID   = "current"
)

func catalogKey(tenant grains.TenantID) truth.Key {
	return truth.Key{Tenant: string(tenant), Kind: catalogKind, ID: catalogID}
}

// catalogs serves tenants' catalogs from the truth store, decoded once per
// tenant and kept in memory (a published catalog does not change in place).
type catalogs struct {
	store truth.Store
	mu    sync.Mutex
	cache map[grains.TenantID]cachedCatalog
}

type cachedCatalog struct {
	raw []byte
	cat *catalog.Catalog
}

func newCatalogs(store truth.Store) *catalogs {
	return &catalogs{store: store, cache: map[grains.TenantID]cachedCatalog{}}
}

func (c *catalogs) get(ctx context.Context, tenant grains.TenantID) (cachedCatalog, error) {
	c.mu.Lock()
	cc, ok := c.cache[tenant]
	c.mu.Unlock()
	if ok {
		return cc, nil
	}
	snap, err := c.store.Load(ctx, catalogKey(tenant))
	if errors.Is(err, truth.ErrNotFound) {
		// Not cached: the tenant may publish one.
		return cachedCatalog{}, errNoCatalog
	}
	if err != nil {
		return cachedCatalog{}, fmt.Errorf("platform: load catalog: %w", err)
	}
	var cat catalog.Catalog
	if err := json.Unmarshal(snap.State, &cat); err != nil {
		return cachedCatalog{}, fmt.Errorf("platform: decode catalog of %s: %w", tenant, err)
	}
	cc = cachedCatalog{raw: snap.State, cat: &cat}
	c.mu.Lock()
	c.cache[tenant] = cc
	c.mu.Unlock()
	return cc, nil
}

// errNoCatalog: the tenant has published no catalog.
var errNoCatalog = errors.New("platform: no published catalog")

// Catalog implements actors.CatalogSource: nil when the tenant has none.
func (c *catalogs) Catalog(ctx context.Context, tenant grains.TenantID) (*catalog.Catalog, error) {
	cc, err := c.get(ctx, tenant)
	if errors.Is(err, errNoCatalog) {
		return nil, nil
	}
	return cc.cat, err
}

// CatalogJSON implements dispatch.Catalog.
func (c *catalogs) CatalogJSON(ctx context.Context, tenant grains.TenantID) ([]byte, error) {
	cc, err := c.get(ctx, tenant)
	if errors.Is(err, errNoCatalog) {
		return nil, grains.Errorf(grains.CodeNotFound, "tenant %s has no published catalog", tenant)
	}
	return cc.raw, err
}

// SeedCatalog stores cat as tenant's catalog unless the tenant has one.
func SeedCatalog(ctx context.Context, store truth.Store, tenant grains.TenantID, cat *catalog.Catalog, now time.Time) error {
	if _, err := store.Load(ctx, catalogKey(tenant)); err == nil {
		return nil
	} else if !errors.Is(err, truth.ErrNotFound) {
		return fmt.Errorf("platform: seed catalog: %w", err)
	}
	state, err := json.Marshal(cat)
	if err != nil {
		return err
	}
	res, err := store.Commit(ctx, []truth.Commit{{
		Snapshot: truth.Snapshot{Key: catalogKey(tenant), Revision: 1, State: state, UpdatedAt: now},
		Audit: []truth.Audit{{
			Tenant: string(tenant), Aggregate: catalogKey(tenant), Revision: 1,
			Actor: "seed", Action: "publishCatalog", Reason: "demo tenant seed", At: now,
		}},
	}})
	if err != nil {
		return fmt.Errorf("platform: seed catalog: %w", err)
	}
	if res[0] != nil && !errors.Is(res[0], truth.ErrRevisionConflict) {
		return fmt.Errorf("platform: seed catalog: %w", res[0])
	}
	return nil
}
