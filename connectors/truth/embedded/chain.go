package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/grainline/grainline/connectors/truth"
)

var _ truth.ChainReader = (*Store)(nil)

func encodeHead(h truth.ChainHead) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(h.Seq)), h.Hash...)
}

func decodeHead(v []byte) (truth.ChainHead, error) {
	if len(v) < 8 {
		return truth.ChainHead{}, fmt.Errorf("%w: audit head of %d bytes", errCorrupt, len(v))
	}
	return truth.ChainHead{Seq: int64(binary.BigEndian.Uint64(v)), Hash: append([]byte{}, v[8:]...)}, nil
}

// head returns tenant's chain head, from the cache or the database. The
// caller holds s.mu.
func (s *Store) head(tenant string) (truth.ChainHead, error) {
	if h, ok := s.heads[tenant]; ok {
		return h, nil
	}
	h, err := s.readHead(tenant)
	if err != nil {
		return h, err
	}
	s.heads[tenant] = h
	return h, nil
}

func (s *Store) readHead(tenant string) (truth.ChainHead, error) {
	v, closer, err := s.db.Get(headKey(tenant))
	if errors.Is(err, pebble.ErrNotFound) {
		return truth.ChainHead{}, nil
	}
	if err != nil {
		return truth.ChainHead{}, fmt.Errorf("read audit head: %w", err)
	}
	defer closer.Close()
	return decodeHead(v)
}

// AuditHead implements truth.ChainReader: the head as stored.
func (s *Store) AuditHead(ctx context.Context, tenant string) (truth.ChainHead, error) {
	if err := s.enter(); err != nil {
		return truth.ChainHead{}, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return truth.ChainHead{}, err
	}
	h, err := s.readHead(tenant)
	if err != nil {
		return h, fmt.Errorf("embedded: %w", err)
	}
	return h, nil
}

// AuditChain implements truth.ChainReader: up to limit records of tenant's
// chain from fromSeq on, in Seq order, read from one consistent snapshot.
func (s *Store) AuditChain(ctx context.Context, tenant string, fromSeq int64, limit int) ([]truth.Audit, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	p := chainPrefix(tenant)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: chainKey(tenant, max(fromSeq, 0)), UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("embedded: audit chain scan: %w", err)
	}
	defer it.Close()
	var out []truth.Audit
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		if len(it.Key()) != len(p)+8 || !bytes.HasPrefix(it.Key(), p) {
			return nil, fmt.Errorf("%w: audit chain key %x", errCorrupt, it.Key())
		}
		v, closer, err := snap.Get(it.Value())
		if err != nil {
			return nil, fmt.Errorf("embedded: audit chain seq %d: %w", binary.BigEndian.Uint64(it.Key()[len(p):]), err)
		}
		a, err := decodeAudit(v)
		_ = closer.Close()
		if err != nil {
			return nil, fmt.Errorf("embedded: audit record: %w", err)
		}
		out = append(out, a)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("embedded: audit chain scan: %w", err)
	}
	return out, nil
}

// rewriteAudit replaces the reason of tenant's record at seq in place,
// leaving its hash: what an intruder with write access to the files would
// do. Tests use it (export_test.go) to check that verification catches it.
func (s *Store) rewriteAudit(tenant string, seq int64, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ak, closer, err := s.db.Get(chainKey(tenant, seq))
	if err != nil {
		return fmt.Errorf("embedded: find audit seq %d: %w", seq, err)
	}
	ak = append([]byte{}, ak...)
	_ = closer.Close()
	v, closer, err := s.db.Get(ak)
	if err != nil {
		return fmt.Errorf("embedded: read audit seq %d: %w", seq, err)
	}
	a, err := decodeAudit(v)
	_ = closer.Close()
	if err != nil {
		return err
	}
	a.Reason = reason
	return s.db.Set(ak, encodeAudit(&a), pebble.Sync)
}

var (
	_ truth.AuditAppender    = (*Store)(nil)
	_ truth.AuditTrailReader = (*Store)(nil)
)

// AppendAudit implements truth.AuditAppender: under the commit mutex, so
// the records take their place in the chains between two commit batches,
// in one synced pebble batch.
func (s *Store) AppendAudit(ctx context.Context, records []truth.Audit) ([]truth.Audit, error) {
	if len(records) == 0 {
		return nil, nil
	}
	out := make([]truth.Audit, len(records))
	for i := range records {
		if err := truth.ValidateAudit(&records[i]); err != nil {
			return nil, err
		}
		out[i] = records[i]
		out[i].Aggregate.Tenant = out[i].Tenant
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	audSeq := s.auditSeq
	heads := map[string]truth.ChainHead{}
	for i := range out {
		a := &out[i]
		head, ok := heads[a.Tenant]
		if !ok {
			var err error
			if head, err = s.head(a.Tenant); err != nil {
				return nil, fmt.Errorf("embedded: append audit: %w", err)
			}
		}
		heads[a.Tenant] = head.Link(a)
		audSeq++
		ak := auditKey(a.Tenant, a.Aggregate.Kind, a.Aggregate.ID, audSeq)
		if err := errors.Join(
			b.Set(ak, encodeAudit(a), nil),
			b.Set(chainKey(a.Tenant, a.Seq), ak, nil),
			b.Set(headKey(a.Tenant), encodeHead(heads[a.Tenant]), nil),
		); err != nil {
			return nil, fmt.Errorf("embedded: append audit: %w", err)
		}
	}
	if err := b.Set(metaAuditSeq, binary.BigEndian.AppendUint64(nil, uint64(audSeq)), nil); err != nil {
		return nil, fmt.Errorf("embedded: append audit: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("embedded: append audit: write batch: %w", err)
	}
	s.auditSeq = audSeq
	for t, h := range heads {
		s.heads[t] = h
	}
	return out, nil
}
