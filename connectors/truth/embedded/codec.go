package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Keys are a one-byte record type followed by length-prefixed components, so
// that no choice of tenant, kind or id can collide with another ("a/b"+"c"
// and "a"+"b/c" encode differently) and a prefix scan over one aggregate
// never reaches a neighbour.
const (
	tagSnapshot byte = 's' // s lp(tenant) lp(kind) lp(id)            -> snapshot
	tagIdem     byte = 'i' // i lp(tenant) lp(key)                    -> idempotency
	tagOutbox   byte = 'o' // o be64(seq)                             -> outbox event (deleted on ack)
	tagAudit    byte = 'a' // a lp(tenant) lp(kind) lp(id) be64(seq)  -> audit record
	tagMeta     byte = 'm' // m name                                  -> be64 counter
	tagChain    byte = 'c' // c lp(tenant) be64(chain seq)            -> audit key of that record
	tagHead     byte = 'h' // h lp(tenant)                            -> be64(chain seq) hash
	tagArtifact byte = 'b' // b lp(tenant) lp(sha256)                 -> artifact (artifact.go)
	// tagAttempt 'f', tagTimer 't' and tagDue 'd': see attempts.go, timers.go.
)

var (
	metaOutboxSeq = []byte{tagMeta, 'o', 'u', 't', 'b', 'o', 'x'}
	metaAuditSeq  = []byte{tagMeta, 'a', 'u', 'd', 'i', 't'}
)

func appendLP(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func snapshotKey(tenant, kind, id string) []byte {
	b := make([]byte, 0, 4+len(tenant)+len(kind)+len(id))
	b = append(b, tagSnapshot)
	b = appendLP(b, tenant)
	b = appendLP(b, kind)
	return appendLP(b, id)
}

func idemKey(tenant, key string) []byte {
	b := make([]byte, 0, 3+len(tenant)+len(key))
	b = append(b, tagIdem)
	b = appendLP(b, tenant)
	return appendLP(b, key)
}

func outboxKey(seq int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{tagOutbox}, uint64(seq))
}

func auditPrefix(tenant, kind, id string) []byte {
	b := make([]byte, 0, 12+len(tenant)+len(kind)+len(id))
	b = append(b, tagAudit)
	b = appendLP(b, tenant)
	b = appendLP(b, kind)
	return appendLP(b, id)
}

func auditKey(tenant, kind, id string, seq int64) []byte {
	return binary.BigEndian.AppendUint64(auditPrefix(tenant, kind, id), uint64(seq))
}

func chainPrefix(tenant string) []byte {
	b := make([]byte, 0, 11+len(tenant))
	b = append(b, tagChain)
	return appendLP(b, tenant)
}

func chainKey(tenant string, seq int64) []byte {
	return binary.BigEndian.AppendUint64(chainPrefix(tenant), uint64(seq))
}

func headKey(tenant string) []byte {
	b := make([]byte, 0, 2+len(tenant))
	b = append(b, tagHead)
	return appendLP(b, tenant)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// enc appends fields to a value.
type enc struct{ b []byte }

func (e *enc) i64(v int64) { e.b = binary.BigEndian.AppendUint64(e.b, uint64(v)) }
func (e *enc) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

// bytes keeps nil and empty apart: nil is written as length 0 with a flag.
func (e *enc) bytes(p []byte) {
	if p == nil {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.str(string(p))
}

func (e *enc) time(t time.Time) {
	tb, err := t.MarshalBinary()
	if err != nil { // only for a zone offset that is not a whole minute
		tb, _ = t.UTC().MarshalBinary()
	}
	e.str(string(tb))
}

var errCorrupt = errors.New("embedded: corrupt record")

// dec reads fields in the order enc wrote them; the first error sticks.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: short %s", errCorrupt, what)
	}
}

func (d *dec) i64() int64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail("int")
		return 0
	}
	v := int64(binary.BigEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *dec) raw() []byte {
	if d.err != nil {
		return nil
	}
	n, k := binary.Uvarint(d.b)
	if k <= 0 || uint64(len(d.b)-k) < n {
		d.fail("string")
		return nil
	}
	p := d.b[k : k+int(n)]
	d.b = d.b[k+int(n):]
	return p
}

func (d *dec) str() string { return string(d.raw()) }

func (d *dec) bytes() []byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("bytes")
		return nil
	}
	present := d.b[0] == 1
	d.b = d.b[1:]
	if !present {
		return nil
	}
	return append([]byte{}, d.raw()...)
}

func (d *dec) time() time.Time {
	var t time.Time
	raw := d.raw()
	if d.err == nil {
		if err := t.UnmarshalBinary(raw); err != nil {
			d.err = fmt.Errorf("%w: time: %v", errCorrupt, err)
		}
	}
	return t
}
