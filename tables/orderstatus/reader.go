package orderstatus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/hashicorp/go-memdb"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
)

// ErrNotReady: the reader's view has not caught up with the table yet.
var ErrNotReady = errors.New("orderstatus: table not recovered yet")

// ReaderConfig configures a Reader.
type ReaderConfig struct {
	// Brokers are the Kafka bootstrap brokers. Required.
	Brokers []string
	// Table is the table topic. Default "oms-order-status-table".
	Table goka.Table
	// StorageDir, when set, keeps the view's local copy in LevelDB below it.
	// Default "": in memory, rebuilt from the table topic on every start.
	StorageDir string
}

// WithDefaults returns c with zero fields set to their defaults.
func (c ReaderConfig) WithDefaults() ReaderConfig {
	if c.Table == "" {
		c.Table = Table("oms-order-status")
	}
	return c
}

// Validate checks that brokers are set.
func (c ReaderConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%w: no brokers", ErrConfig)
	}
	return nil
}

// Reader serves the order status table: Get by order id from a goka view,
// ForQuote by quote id from a go-memdb index the view's updates keep. Both
// are scoped by tenant: another tenant's row is reported as not found. A
// Reader is safe for concurrent use.
type Reader struct {
	cfg  ReaderConfig
	log  *slog.Logger
	opts []goka.ViewOption

	mu    sync.RWMutex
	view  *goka.View
	index *memdb.MemDB
	ready chan struct{} // closed when the current view has recovered
}

const indexTable = "status"

var indexSchema = &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
	indexTable: {
		Name: indexTable,
		Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.StringFieldIndex{Field: "TenantID"}, &memdb.StringFieldIndex{Field: "OrderID"},
			}}},
			"quote": {Name: "quote", AllowMissing: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.StringFieldIndex{Field: "TenantID"}, &memdb.StringFieldIndex{Field: "QuoteID"},
			}}},
			"order": {Name: "order", Indexer: &memdb.StringFieldIndex{Field: "OrderID"}},
		},
	},
}}

// NewReader builds a reader. opts configure the goka view: pass
// kafka.Config.GokaViewOptions(). The reader installs its own update
// callback; a goka.WithViewCallback in opts is overridden.
func NewReader(cfg ReaderConfig, log *slog.Logger, opts ...goka.ViewOption) (*Reader, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Reader{
		cfg:   cfg,
		log:   log.With("table", string(cfg.Table)),
		opts:  opts,
		ready: make(chan struct{}),
	}, nil
}

// Run keeps the view current until ctx ends (nil) or the view fails (its
// error). Each Run starts from a fresh index and recovers the view.
func (r *Reader) Run(ctx context.Context) error {
	index, err := memdb.NewMemDB(indexSchema)
	if err != nil {
		return fmt.Errorf("orderstatus: index: %w", err)
	}
	store := storage.MemoryBuilder()
	if r.cfg.StorageDir != "" {
		store = storage.DefaultBuilder(r.cfg.StorageDir)
	}
	opts := append([]goka.ViewOption{goka.WithViewStorageBuilder(store)}, r.opts...)
	opts = append(opts, goka.WithViewCallback(func(uctx goka.UpdateContext, s storage.Storage, key string, value []byte) error {
		if err := goka.DefaultUpdate(uctx, s, key, value); err != nil {
			return err
		}
		return r.reindex(index, key, value)
	}))
	view, err := goka.NewView(r.cfg.Brokers, r.cfg.Table, codec{}, opts...)
	if err != nil {
		return fmt.Errorf("orderstatus: new view: %w", err)
	}

	r.mu.Lock()
	select {
	case <-r.ready:
		r.ready = make(chan struct{})
	default:
	}
	ready := r.ready
	r.view, r.index = view, index
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.view, r.index = nil, nil
		r.mu.Unlock()
	}()

	go func() {
		select {
		case <-view.WaitRunning():
			close(ready)
			r.log.Info("order status view recovered")
		case <-ctx.Done():
		}
	}()
	err = view.Run(ctx)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("orderstatus: view: %w", err)
	}
	return nil
}

// reindex mirrors one table update into the index. Rows in the index are
// never mutated: every update inserts a fresh value.
func (r *Reader) reindex(index *memdb.MemDB, key string, value []byte) error {
	txn := index.Txn(true)
	defer txn.Abort()
	if _, err := txn.DeleteAll(indexTable, "order", key); err != nil {
		return fmt.Errorf("orderstatus: index delete %s: %w", key, err)
	}
	if value != nil {
		v, err := codec{}.Decode(value)
		if err != nil {
			// A row the index cannot read stays out of the index; Get still
			// reports the view's error for it.
			r.log.Error("unreadable table row", "order_id", key, "error", err)
			txn.Commit()
			return nil
		}
		s := v.(Status)
		if err := txn.Insert(indexTable, &s); err != nil {
			return fmt.Errorf("orderstatus: index insert %s: %w", key, err)
		}
	}
	txn.Commit()
	return nil
}

// Ready reports whether the view has caught up with the table.
func (r *Reader) Ready() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	select {
	case <-r.ready:
		return r.view != nil
	default:
		return false
	}
}

// WaitReady blocks until the view has caught up with the table or ctx ends.
func (r *Reader) WaitReady(ctx context.Context) error {
	r.mu.RLock()
	ready := r.ready
	r.mu.RUnlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("orderstatus: wait for recovery: %w", ctx.Err())
	}
}

// Get returns the status of an order of tenant. A missing order, or one of
// another tenant, is (Status{}, false, nil). Before recovery it returns
// ErrNotReady.
func (r *Reader) Get(tenant, orderID string) (Status, bool, error) {
	if !r.Ready() {
		return Status{}, false, ErrNotReady
	}
	r.mu.RLock()
	view := r.view
	r.mu.RUnlock()
	if view == nil {
		return Status{}, false, ErrNotReady
	}
	v, err := view.Get(orderID)
	if err != nil {
		return Status{}, false, fmt.Errorf("orderstatus: get %s: %w", orderID, err)
	}
	s, ok := v.(Status)
	if !ok || s.TenantID != tenant {
		return Status{}, false, nil
	}
	return s, true, nil
}

// ForQuote returns the order of tenant created from quoteID, if the index
// holds one. It answers from whatever the view has seen so far.
func (r *Reader) ForQuote(tenant, quoteID string) (Status, bool) {
	r.mu.RLock()
	index := r.index
	r.mu.RUnlock()
	if index == nil || quoteID == "" {
		return Status{}, false
	}
	raw, err := index.Txn(false).First(indexTable, "quote", tenant, quoteID)
	if err != nil || raw == nil {
		return Status{}, false
	}
	return *raw.(*Status), true
}
