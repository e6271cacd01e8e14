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
	"github.com/grainline/grainline/grains/catalogbook"
)

// legacyCatalogID addresses the one catalog snapshot per tenant kept before
// catalogs were versioned: (tenant, "catalog", "current"), a bare catalog
// document. migrateCatalog turns it into published version N.
const legacyCatalogID = "current"

func catalogKey(tenant grains.TenantID, id string) truth.Key {
	return truth.Key{Tenant: string(tenant), Kind: string(catalogbook.Kind), ID: id}
}

// VersionCache is a shared cache of published catalog versions, e.g. Redis.
// Published versions never change, so an entry never needs invalidating.
// Get reports a miss for any failure (a cache that is down is a cache that
// misses) and Set may drop the entry; neither may block for long. Both must
// be safe for concurrent use.
type VersionCache interface {
	Get(ctx context.Context, tenant grains.TenantID, version int) ([]byte, bool)
	Set(ctx context.Context, tenant grains.TenantID, version int, raw []byte)
}

// catalogs serves tenants' published catalog versions. A version is read
// from memory, then the shared cache (when there is one), then the truth
// store, and kept in memory for memTTL (a published version never changes;
// the TTL only bounds memory). A version read from the store is put in the
// shared cache.
// The active pointer is read from the truth store every time (see ADR
// 0021): it changes on activate, and only quote creation and GET
// /v1/catalog need it.
type catalogs struct {
	store  truth.Store
	shared VersionCache  // nil: none
	memTTL time.Duration // < 0: keep nothing in memory
	now    func() time.Time

	mu       sync.Mutex
	versions map[versionKey]cachedCatalog
}

type versionKey struct {
	tenant  grains.TenantID
	version int
}

type cachedCatalog struct {
	raw   []byte // the catalog document, as GET /v1/catalog serves it
	cat   *catalog.Catalog
	until time.Time // kept in memory until then
}

func newCatalogs(store truth.Store, shared VersionCache, memTTL time.Duration) *catalogs {
	return &catalogs{store: store, shared: shared, memTTL: memTTL, now: time.Now, versions: map[versionKey]cachedCatalog{}}
}

// errNoCatalog: the tenant has no active catalog, or no such published
// version.
var errNoCatalog = errors.New("platform: no published catalog")

// get returns published version of tenant; version 0 is the active one.
func (c *catalogs) get(ctx context.Context, tenant grains.TenantID, version int) (cachedCatalog, error) {
	if version == 0 {
		active, err := c.active(ctx, tenant)
		if err != nil {
			return cachedCatalog{}, err
		}
		version = active
	}
	k := versionKey{tenant, version}
	c.mu.Lock()
	cc, ok := c.versions[k]
	if ok && !c.now().Before(cc.until) {
		delete(c.versions, k)
		ok = false
	}
	c.mu.Unlock()
	if ok {
		return cc, nil
	}
	if c.shared != nil {
		if raw, ok := c.shared.Get(ctx, tenant, version); ok {
			if cc, err := decodeCatalog(raw, version); err == nil {
				c.remember(k, cc)
				return cc, nil
			}
			// A bad entry is a miss; the store has the truth.
		}
	}
	snap, err := c.store.Load(ctx, catalogKey(tenant, catalogbook.VersionID(version)))
	if errors.Is(err, truth.ErrNotFound) {
		return cachedCatalog{}, errNoCatalog
	}
	if err != nil {
		return cachedCatalog{}, fmt.Errorf("platform: load catalog version %d: %w", version, err)
	}
	var s catalogbook.State
	if err := json.Unmarshal(snap.State, &s); err != nil {
		return cachedCatalog{}, fmt.Errorf("platform: decode catalog version %d of %s: %w", version, tenant, err)
	}
	cat, ok := s.Published()
	if !ok {
		return cachedCatalog{}, errNoCatalog // a draft is no catalog to sell from
	}
	raw, err := json.Marshal(cat)
	if err != nil {
		return cachedCatalog{}, err
	}
	cc = cachedCatalog{raw: raw, cat: cat}
	c.remember(k, cc)
	if c.shared != nil {
		c.shared.Set(ctx, tenant, version, raw)
	}
	return cc, nil
}

func (c *catalogs) remember(k versionKey, cc cachedCatalog) {
	if c.memTTL < 0 {
		return
	}
	cc.until = c.now().Add(c.memTTL)
	c.mu.Lock()
	c.versions[k] = cc
	c.mu.Unlock()
}

func decodeCatalog(raw []byte, version int) (cachedCatalog, error) {
	var cat catalog.Catalog
	if err := json.Unmarshal(raw, &cat); err != nil {
		return cachedCatalog{}, err
	}
	if cat.Version != version {
		return cachedCatalog{}, fmt.Errorf("platform: cached catalog is version %d, not %d", cat.Version, version)
	}
	return cachedCatalog{raw: raw, cat: &cat}, nil
}

// active returns the tenant's active version from the index, migrating a
// legacy catalog on first use.
func (c *catalogs) active(ctx context.Context, tenant grains.TenantID) (int, error) {
	idx, err := loadIndex(ctx, c.store, tenant)
	if errors.Is(err, truth.ErrNotFound) {
		migrated, merr := migrateCatalog(ctx, c.store, tenant, c.now())
		if merr != nil {
			return 0, merr
		}
		if !migrated {
			return 0, errNoCatalog
		}
		idx, err = loadIndex(ctx, c.store, tenant)
	}
	if err != nil {
		return 0, err
	}
	if idx.Active == 0 {
		return 0, errNoCatalog
	}
	return idx.Active, nil
}

func loadIndex(ctx context.Context, store truth.Store, tenant grains.TenantID) (catalogbook.Index, error) {
	snap, err := store.Load(ctx, catalogKey(tenant, catalogbook.IndexID))
	if err != nil {
		if errors.Is(err, truth.ErrNotFound) {
			return catalogbook.Index{}, err
		}
		return catalogbook.Index{}, fmt.Errorf("platform: load catalog index: %w", err)
	}
	var s catalogbook.State
	if err := json.Unmarshal(snap.State, &s); err != nil || s.Index == nil {
		return catalogbook.Index{}, fmt.Errorf("platform: decode catalog index of %s: %v", tenant, err)
	}
	return *s.Index, nil
}

// Catalog implements actors.CatalogSource: nil when the tenant has no active
// catalog or no such published version.
func (c *catalogs) Catalog(ctx context.Context, tenant grains.TenantID, version int) (*catalog.Catalog, error) {
	cc, err := c.get(ctx, tenant, version)
	if errors.Is(err, errNoCatalog) {
		return nil, nil
	}
	return cc.cat, err
}

// CatalogJSON implements dispatch.Catalog: the active published version.
func (c *catalogs) CatalogJSON(ctx context.Context, tenant grains.TenantID) ([]byte, error) {
	cc, err := c.get(ctx, tenant, 0)
	if errors.Is(err, errNoCatalog) {
		return nil, grains.Errorf(grains.CodeNotFound, "tenant %s has no published catalog", tenant)
	}
	return cc.raw, err
}

// PrepareCatalogs implements dispatch.CatalogPreparer: it migrates a legacy
// catalog before the first version is allocated, so the legacy catalog
// keeps its version number.
func (c *catalogs) PrepareCatalogs(ctx context.Context, tenant grains.TenantID) error {
	_, err := migrateCatalog(ctx, c.store, tenant, c.now())
	return err
}

// migrateCatalog turns the tenant's legacy catalog (one snapshot under
// "current") into published version N (N = its version, at least 1) and an
// index with Latest = Active = N, unless the tenant has an index already.
// It reports whether the tenant has an index afterwards. Concurrent
// migrations are safe: each write expects the key to be absent, and losing
// that race means another one wrote the same.
func migrateCatalog(ctx context.Context, store truth.Store, tenant grains.TenantID, now time.Time) (bool, error) {
	if _, err := loadIndex(ctx, store, tenant); err == nil {
		return true, nil
	} else if !errors.Is(err, truth.ErrNotFound) {
		return false, err
	}
	snap, err := store.Load(ctx, catalogKey(tenant, legacyCatalogID))
	if errors.Is(err, truth.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("platform: load legacy catalog: %w", err)
	}
	var cat catalog.Catalog
	if err := json.Unmarshal(snap.State, &cat); err != nil {
		return false, fmt.Errorf("platform: decode legacy catalog of %s: %w", tenant, err)
	}
	return true, publishDirect(ctx, store, tenant, &cat, "migrate", "legacy catalog becomes a published version", now)
}

// publishDirect stores cat as a published version (cat.Version, at least 1)
// and an index pointing at it, bypassing the grain: for seeding and
// migration only, when the tenant has no index yet. Writes that find their
// key taken are not errors.
func publishDirect(ctx context.Context, store truth.Store, tenant grains.TenantID, cat *catalog.Catalog, actor, reason string, now time.Time) error {
	n := cat.Version
	if n < 1 {
		n = 1
	}
	cp := *cat
	cp.Version = n
	now = now.UTC()
	version, err := json.Marshal(catalogbook.State{Version: &catalogbook.Version{
		Number: n, Status: catalogbook.StatusPublished, Catalog: &cp,
		CreatedBy: actor, CreatedAt: now, UpdatedAt: now, PublishedBy: actor, PublishedAt: now,
	}})
	if err != nil {
		return err
	}
	index, err := json.Marshal(catalogbook.State{Index: &catalogbook.Index{Latest: n, Active: n, ActivatedBy: actor, ActivatedAt: now}})
	if err != nil {
		return err
	}
	commit := func(id, action string, state []byte) truth.Commit {
		k := catalogKey(tenant, id)
		return truth.Commit{
			Snapshot: truth.Snapshot{Key: k, Revision: 1, State: state, UpdatedAt: now},
			Audit:    []truth.Audit{{Tenant: string(tenant), Aggregate: k, Revision: 1, Actor: actor, Action: action, Reason: reason, At: now}},
		}
	}
	// The version first: an index never points at a missing version.
	for _, c := range []truth.Commit{
		commit(catalogbook.VersionID(n), catalogbook.CmdPublish, version),
		commit(catalogbook.IndexID, catalogbook.CmdActivate, index),
	} {
		res, err := store.Commit(ctx, []truth.Commit{c})
		if err != nil {
			return fmt.Errorf("platform: store catalog version %d of %s: %w", n, tenant, err)
		}
		if res[0] != nil && !errors.Is(res[0], truth.ErrRevisionConflict) {
			return fmt.Errorf("platform: store catalog version %d of %s: %w", n, tenant, res[0])
		}
	}
	return nil
}

// SeedCatalog makes cat the tenant's published, active catalog (version
// cat.Version) unless the tenant has catalog versions already; a legacy
// catalog is migrated instead.
func SeedCatalog(ctx context.Context, store truth.Store, tenant grains.TenantID, cat *catalog.Catalog, now time.Time) error {
	migrated, err := migrateCatalog(ctx, store, tenant, now)
	if err != nil || migrated {
		return err
	}
	if err := cat.Validate(); err != nil {
		return fmt.Errorf("platform: seed catalog: %w", err)
	}
	return publishDirect(ctx, store, tenant, cat, "seed", "demo tenant seed", now)
}
