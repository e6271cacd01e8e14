package postgres

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grainline/grainline/connectors/truth"
)

var (
	_ truth.AuditAppender    = (*Store)(nil)
	_ truth.AuditTrailReader = (*Store)(nil)
)

// AppendAudit implements truth.AuditAppender: one transaction that creates
// and locks the tenants' head rows (in tenant order, as Commit does, so the
// two queue rather than deadlock), chains the records after them, inserts
// them and moves the heads. It is retried like a commit batch.
func (s *Store) AppendAudit(ctx context.Context, records []truth.Audit) ([]truth.Audit, error) {
	if len(records) == 0 {
		return nil, nil
	}
	recs := make([]truth.Audit, len(records))
	tenantSet := map[string]bool{}
	for i := range records {
		if err := truth.ValidateAudit(&records[i]); err != nil {
			return nil, err
		}
		recs[i] = records[i]
		recs[i].Aggregate.Tenant = recs[i].Tenant
		tenantSet[recs[i].Tenant] = true
	}
	tenants := make([]string, 0, len(tenantSet))
	for t := range tenantSet {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants)
	var err error
	for attempt := 1; ; attempt++ {
		var out []truth.Audit
		out, err = s.appendOnce(ctx, recs, tenants)
		if err == nil {
			return out, nil
		}
		if !retryable(err) || attempt >= s.cfg.CommitAttempts || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("postgres: append %d audit records: %w", len(recs), err)
}

func (s *Store) appendOnce(ctx context.Context, records []truth.Audit, tenants []string) ([]truth.Audit, error) {
	out := make([]truth.Audit, len(records))
	copy(out, records)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, headsSQL, tenants); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, headLockSQL, tenants)
		if err != nil {
			return err
		}
		heads := make(map[string]truth.ChainHead, len(tenants))
		for rows.Next() {
			var t string
			var h truth.ChainHead
			if err := rows.Scan(&t, &h.Seq, &h.Hash); err != nil {
				rows.Close()
				return err
			}
			heads[t] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		audit, moved := linkAudits(out, heads)
		if _, err := tx.Exec(ctx, auditSQL, audit...); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, headMoveSQL, moved...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// linkAudits chains records in order after heads, setting their chain
// fields in place, and returns the arguments of auditSQL and headMoveSQL.
// Each record's Aggregate.Tenant must be its Tenant.
func linkAudits(records []truth.Audit, heads map[string]truth.ChainHead) (audit, moved []any) {
	var (
		tenant, kind, id, actor, action, reason, corr []string
		rev, seq                                      []int64
		at                                            []time.Time
		detail, prev, hash                            [][]byte
	)
	touched := map[string]bool{}
	for i := range records {
		a := &records[i]
		heads[a.Tenant] = heads[a.Tenant].Link(a)
		touched[a.Tenant] = true
		tenant, kind, id, rev = append(tenant, a.Tenant), append(kind, a.Aggregate.Kind), append(id, a.Aggregate.ID), append(rev, a.Revision)
		actor, action, reason, corr = append(actor, a.Actor), append(action, a.Action), append(reason, a.Reason), append(corr, a.CorrelationID)
		at, detail, seq = append(at, a.At), append(detail, a.Detail), append(seq, a.Seq)
		prev, hash = append(prev, a.PrevHash), append(hash, a.Hash)
	}
	var ht []string
	var hs []int64
	var hh [][]byte
	for t := range touched {
		ht, hs, hh = append(ht, t), append(hs, heads[t].Seq), append(hh, heads[t].Hash)
	}
	return []any{tenant, kind, id, rev, actor, action, reason, corr, at, detail, seq, prev, hash},
		[]any{ht, hs, hh}
}
