package truth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// The audit chain (ARCHITECTURE.md invariant 10, ADR 0014). Each tenant's
// audit records form one hash chain: record n carries Seq n, the Hash of
// record n-1 as PrevHash, and its own Hash:
//
//	Hash = SHA-256(encoding)
//
// where encoding is the concatenation of these fields, each written as a
// 4-byte big-endian unsigned length followed by that many bytes:
//
//  1. the literal "grainline.audit.v1"
//  2. tenant (UTF-8)
//  3. seq: 8 bytes, big-endian two's complement
//  4. prev hash: the previous record's 32-byte hash; 0 bytes for seq 1
//  5. aggregate kind (UTF-8)
//  6. aggregate id (UTF-8)
//  7. revision: 8 bytes, big-endian two's complement
//  8. actor (UTF-8)
//  9. action (UTF-8)
//  10. reason (UTF-8)
//  11. correlation id (UTF-8)
//  12. at: UTC, formatted "2006-01-02T15:04:05.000000Z" (always six
//     fractional digits; the time is first truncated to microseconds, the
//     precision every store keeps, see AuditTime)
//  13. detail: the raw bytes (0 bytes when absent)
//
// So an 8-byte integer field is 00 00 00 08 followed by the 8 bytes. The
// PostgreSQL function truth_audit_hash (migration 0003) computes the same.
const auditDomain = "grainline.audit.v1"

// auditTimeLayout is the fixed-precision form of At in the encoding.
const auditTimeLayout = "2006-01-02T15:04:05.000000Z"

// AuditTime truncates t to the precision every store keeps (microseconds),
// in UTC: the value stored, read back and hashed.
func AuditTime(t time.Time) time.Time { return TimerTime(t) }

// AuditEncoding returns the canonical encoding of a for hashing (see the
// field list above). a.Hash is not part of it.
func AuditEncoding(a *Audit) []byte {
	var b []byte
	field := func(p []byte) {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	str := func(s string) { field([]byte(s)) }
	num := func(n int64) { field(binary.BigEndian.AppendUint64(nil, uint64(n))) }
	str(auditDomain)
	str(a.Tenant)
	num(a.Seq)
	field(a.PrevHash)
	str(a.Aggregate.Kind)
	str(a.Aggregate.ID)
	num(a.Revision)
	str(a.Actor)
	str(a.Action)
	str(a.Reason)
	str(a.CorrelationID)
	str(AuditTime(a.At).Format(auditTimeLayout))
	field(a.Detail)
	return b
}

// AuditHash returns SHA-256 of AuditEncoding(a).
func AuditHash(a *Audit) []byte {
	h := sha256.Sum256(AuditEncoding(a))
	return h[:]
}

// ChainHead is the last link of a tenant's chain: Seq 0 and no Hash for a
// tenant without audit records.
type ChainHead struct {
	Seq  int64
	Hash []byte
}

// Link sets a's chain fields to follow head (tenant, At truncated, Seq,
// PrevHash, Hash) and returns the new head. Stores call it for each record
// of a commit, in order, while they hold the tenant's chain.
func (h ChainHead) Link(a *Audit) ChainHead {
	a.At = AuditTime(a.At)
	a.Seq = h.Seq + 1
	a.PrevHash = append([]byte{}, h.Hash...)
	a.Hash = AuditHash(a)
	return ChainHead{Seq: a.Seq, Hash: a.Hash}
}

// ErrChainBroken: an audit chain does not verify. VerifyChain returns it
// wrapped in a *ChainError that names the first bad record.
var ErrChainBroken = errors.New("truth: audit chain broken")

// ChainError names the first record of a chain that does not verify.
type ChainError struct {
	Tenant string
	Seq    int64  // the seq the record should have had (or has, for a bad hash)
	Reason string // what is wrong with it
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("truth: audit chain of tenant %q broken at seq %d: %s", e.Tenant, e.Seq, e.Reason)
}

// Unwrap makes errors.Is(err, ErrChainBroken) hold.
func (e *ChainError) Unwrap() error { return ErrChainBroken }

// VerifyChain checks records, which must be consecutive records of one
// tenant's chain in Seq order, the first following a record whose Hash is
// prev (empty prev, with records[0].Seq 1, for the start of the chain). It
// recomputes each Hash and checks Seq steps by one and PrevHash links, and
// returns the Seq of the last record that verifies (records[0].Seq-1 when
// none does; 0 for no records). The error, a *ChainError, names the first
// broken seq.
func VerifyChain(records []Audit, prev []byte) (lastGood int64, err error) {
	if len(records) == 0 {
		return 0, nil
	}
	tenant := records[0].Tenant
	want := records[0].Seq
	if len(prev) == 0 && want != 1 {
		return 0, &ChainError{Tenant: tenant, Seq: 1, Reason: fmt.Sprintf("chain starts at seq %d without a previous hash", want)}
	}
	lastGood = want - 1
	for i := range records {
		a := &records[i]
		switch {
		case a.Tenant != tenant:
			return lastGood, &ChainError{Tenant: tenant, Seq: want, Reason: fmt.Sprintf("record of tenant %q in the chain", a.Tenant)}
		case a.Seq != want:
			return lastGood, &ChainError{Tenant: tenant, Seq: want, Reason: fmt.Sprintf("found seq %d instead", a.Seq)}
		case !bytes.Equal(a.PrevHash, prev):
			return lastGood, &ChainError{Tenant: tenant, Seq: want, Reason: fmt.Sprintf("prev hash %s does not match the previous record's hash %s", short(a.PrevHash), short(prev))}
		}
		if got := AuditHash(a); !bytes.Equal(got, a.Hash) {
			return lastGood, &ChainError{Tenant: tenant, Seq: want, Reason: fmt.Sprintf("hash %s does not match the record (recomputed %s)", short(a.Hash), short(got))}
		}
		prev, lastGood, want = a.Hash, a.Seq, want+1
	}
	return lastGood, nil
}

func short(h []byte) string {
	if len(h) == 0 {
		return "(none)"
	}
	return hex.EncodeToString(h)
}

// ChainReader reads a tenant's audit chain. Both adapters implement it.
type ChainReader interface {
	// AuditChain returns up to limit records of tenant with Seq >= fromSeq,
	// in Seq order.
	AuditChain(ctx context.Context, tenant string, fromSeq int64, limit int) ([]Audit, error)
	// AuditHead returns the tenant's chain head (Seq 0 when it has none).
	AuditHead(ctx context.Context, tenant string) (ChainHead, error)
}

// VerifyTenant verifies tenant's whole chain as r holds it: it reads the
// stored head first, then the records up to the head's Seq in pages of
// pageSize (default 1000 when <= 0), so that records committed meanwhile
// are left for the next run. It returns the number of records checked and
// the verified head. A break, including records that stop short of the
// head or a head hash that does not match its record, is a *ChainError
// naming the first broken seq.
func VerifyTenant(ctx context.Context, r ChainReader, tenant string, pageSize int) (checked int64, head ChainHead, err error) {
	if pageSize <= 0 {
		pageSize = 1000
	}
	stored, err := r.AuditHead(ctx, tenant)
	if err != nil {
		return 0, head, fmt.Errorf("truth: read audit head of %q: %w", tenant, err)
	}
	for from := int64(1); from <= stored.Seq; {
		recs, err := r.AuditChain(ctx, tenant, from, pageSize)
		if err != nil {
			return checked, head, fmt.Errorf("truth: read audit chain of %q from seq %d: %w", tenant, from, err)
		}
		for len(recs) > 0 && recs[len(recs)-1].Seq > stored.Seq {
			recs = recs[:len(recs)-1]
		}
		if len(recs) == 0 || recs[0].Seq != from {
			return checked, head, &ChainError{Tenant: tenant, Seq: from, Reason: fmt.Sprintf("record missing (the stored head is at seq %d)", stored.Seq)}
		}
		last, verr := VerifyChain(recs, head.Hash)
		if verr != nil {
			return checked + (last - from + 1), head, verr
		}
		checked += int64(len(recs))
		head = ChainHead{Seq: last, Hash: recs[len(recs)-1].Hash}
		from = last + 1
	}
	if !bytes.Equal(stored.Hash, head.Hash) {
		return checked, head, &ChainError{Tenant: tenant, Seq: stored.Seq,
			Reason: fmt.Sprintf("stored head hash %s does not match the record's %s", short(stored.Hash), short(head.Hash))}
	}
	return checked, head, nil
}
