package platform

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/connectors/truth/embedded"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/catalogbook"
)

// mapCache is an in-memory VersionCache that counts lookups.
type mapCache struct {
	mu         sync.Mutex
	m          map[versionKey][]byte
	gets, sets int
}

func (c *mapCache) Get(_ context.Context, t grains.TenantID, v int) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets++
	raw, ok := c.m[versionKey{t, v}]
	return raw, ok
}

func (c *mapCache) Set(_ context.Context, t grains.TenantID, v int, raw []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sets++
	c.m[versionKey{t, v}] = raw
}

func openStore(t *testing.T) truth.Store {
	t.Helper()
	st, err := embedded.Open(embedded.Config{Dir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A tenant whose catalog predates versions (one "current" snapshot) gets it
// as published, active version N on first read; quotes pinned to N load it.
func TestLegacyCatalogMigrates(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	legacy := catalog.Demo()
	legacy.Version = 3
	raw, _ := json.Marshal(legacy)
	k := catalogKey("old", legacyCatalogID)
	if res, err := st.Commit(ctx, []truth.Commit{{Snapshot: truth.Snapshot{Key: k, Revision: 1, State: raw, UpdatedAt: time.Now()}}}); err != nil || res[0] != nil {
		t.Fatalf("store legacy catalog: %v %v", err, res)
	}
	cats := newCatalogs(st, nil, time.Minute)
	for _, v := range []int{0, 3} {
		c, err := cats.Catalog(ctx, "old", v)
		if err != nil || c == nil || c.Version != 3 {
			t.Fatalf("Catalog(old, %d) = %v, %v", v, c, err)
		}
	}
	if c, err := cats.Catalog(ctx, "old", 1); err != nil || c != nil {
		t.Fatalf("version 1 of a tenant migrated to 3: %v, %v", c, err)
	}
	idx, err := loadIndex(ctx, st, "old")
	if err != nil || idx.Latest != 3 || idx.Active != 3 {
		t.Fatalf("index after migration %+v, %v", idx, err)
	}
	// Migrating again, or seeding, changes nothing.
	if err := SeedCatalog(ctx, st, "old", catalog.Demo(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if idx2, _ := loadIndex(ctx, st, "old"); idx2 != idx {
		t.Fatalf("index changed: %+v", idx2)
	}
	// A tenant with nothing has no catalog.
	if c, err := cats.Catalog(ctx, "nobody", 0); err != nil || c != nil {
		t.Fatalf("tenant without catalog: %v, %v", c, err)
	}
	if _, err := cats.CatalogJSON(ctx, "nobody"); grains.CodeOf(err) != grains.CodeNotFound {
		t.Fatalf("CatalogJSON of nobody: %v", err)
	}
}

// Versions are read from memory, then the shared cache, then the store; a
// store read fills the shared cache; a draft is never served.
func TestCatalogReadPath(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	if err := SeedCatalog(ctx, st, "t", catalog.Demo(), time.Now()); err != nil {
		t.Fatal(err)
	}
	shared := &mapCache{m: map[versionKey][]byte{}}
	cats := newCatalogs(st, shared, time.Minute)
	if c, err := cats.Catalog(ctx, "t", 1); err != nil || c.Version != 1 {
		t.Fatalf("first read: %v %v", c, err)
	}
	if shared.gets != 1 || shared.sets != 1 {
		t.Fatalf("first read: gets %d sets %d", shared.gets, shared.sets)
	}
	cats.Catalog(ctx, "t", 1)
	if shared.gets != 1 {
		t.Fatalf("memory hit went to the shared cache: gets %d", shared.gets)
	}
	// Another process: memory empty, the shared cache answers, the store is
	// not read (the answer has content only the cache holds).
	other := newCatalogs(st, shared, -1)
	shared.m[versionKey{"t", 1}] = []byte(`{"version":1,"currency":"EUR","offerings":[{"id":"only-in-cache"}]}`)
	c, err := other.Catalog(ctx, "t", 1)
	if err != nil || len(c.Offerings) != 1 || c.Offerings[0].ID != "only-in-cache" {
		t.Fatalf("shared cache hit: %+v, %v", c, err)
	}
	// A cached entry of the wrong version is a miss.
	shared.m[versionKey{"t", 1}] = []byte(`{"version":2}`)
	if c, _ := other.Catalog(ctx, "t", 1); c == nil || c.Version != 1 || len(c.Offerings) < 2 {
		t.Fatalf("bad cache entry served: %+v", c)
	}
	// A draft under v2 is no catalog.
	draft, _ := json.Marshal(catalogbook.State{Version: &catalogbook.Version{Number: 2, Status: catalogbook.StatusDraft, Catalog: catalog.Demo()}})
	if res, err := st.Commit(ctx, []truth.Commit{{Snapshot: truth.Snapshot{Key: catalogKey("t", "v2"), Revision: 1, State: draft, UpdatedAt: time.Now()}}}); err != nil || res[0] != nil {
		t.Fatal(err, res)
	}
	if c, err := other.Catalog(ctx, "t", 2); err != nil || c != nil {
		t.Fatalf("draft served: %v, %v", c, err)
	}
	// Memory entries expire after the TTL.
	now := time.Now()
	cats.now = func() time.Time { return now.Add(2 * time.Minute) }
	before := shared.gets
	cats.Catalog(ctx, "t", 1)
	if shared.gets != before+1 {
		t.Fatal("expired memory entry still served")
	}
}
