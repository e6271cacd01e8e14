package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/grainline/grainline/connectors/truth"
)

// Timers live under two record types, written in the same pebble batch:
//
//	t lp(tenant) lp(kind) lp(id) lp(timer)          -> at, command, payload
//	d be64(due) lp(tenant) lp(kind) lp(id) lp(timer) -> (empty): the due index
//
// due is the timer's unix nanoseconds with the sign bit flipped, so that the
// index sorts by time. One process owns the directory, so there is no lease:
// DueTimers returns every due timer each time it is called, earliest first.
// The poller (actors.Timers.FireDue) skips the timers it is backing off and
// reads further pages past them, so failing timers at the front do not hold
// back the later ones.
const (
	tagTimer byte = 't'
	tagDue   byte = 'd'
)

var _ truth.TimerStore = (*Store)(nil)

type timerRec struct {
	at      time.Time
	command string
	payload []byte
}

func timerSuffix(tenant, kind, id, timerID string) []byte {
	b := make([]byte, 0, 4+len(tenant)+len(kind)+len(id)+len(timerID))
	b = appendLP(b, tenant)
	b = appendLP(b, kind)
	b = appendLP(b, id)
	return appendLP(b, timerID)
}

func timerKey(suffix []byte) []byte { return append([]byte{tagTimer}, suffix...) }

func dueKey(at time.Time, suffix []byte) []byte {
	b := binary.BigEndian.AppendUint64([]byte{tagDue}, uint64(at.UnixNano())^(1<<63))
	return append(b, suffix...)
}

func encodeTimer(r *timerRec) []byte {
	var e enc
	e.time(r.at)
	e.str(r.command)
	e.bytes(r.payload)
	return e.b
}

func decodeTimer(v []byte) (timerRec, error) {
	d := dec{b: v}
	r := timerRec{at: d.time(), command: d.str(), payload: d.bytes()}
	return r, d.err
}

// parseSuffix reads tenant, kind, id and timer id back from a key suffix.
func parseSuffix(b []byte) (truth.Key, string, error) {
	d := dec{b: b}
	k := truth.Key{Tenant: d.str(), Kind: d.str(), ID: d.str()}
	timerID := d.str()
	if d.err != nil || len(d.b) != 0 {
		return truth.Key{}, "", fmt.Errorf("%w: timer key %x", errCorrupt, b)
	}
	return k, timerID, nil
}

// timerOverlay is the view of timers during one Commit: the stored ones plus
// the changes of the batch's earlier commits.
type timerOverlay struct {
	s       *Store
	changed map[string]*timerRec // nil value: removed in this batch
}

func (o *timerOverlay) get(suffix []byte) (*timerRec, error) {
	if r, ok := o.changed[string(suffix)]; ok {
		return r, nil
	}
	v, closer, err := o.s.db.Get(timerKey(suffix))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	r, err := decodeTimer(v)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// apply writes one commit's timer changes to b.
func (o *timerOverlay) apply(b *pebble.Batch, key truth.Key, changes []truth.TimerChange) error {
	for _, tc := range changes {
		suffix := timerSuffix(key.Tenant, key.Kind, key.ID, tc.TimerID)
		cur, err := o.get(suffix)
		if err != nil {
			return fmt.Errorf("read timer %q: %w", tc.TimerID, err)
		}
		if tc.Cancel {
			if cur == nil || (!tc.IfAt.IsZero() && !cur.at.Equal(truth.TimerTime(tc.IfAt))) {
				continue
			}
			if err := errors.Join(b.Delete(timerKey(suffix), nil), b.Delete(dueKey(cur.at, suffix), nil)); err != nil {
				return err
			}
			o.changed[string(suffix)] = nil
			continue
		}
		if cur != nil {
			if err := b.Delete(dueKey(cur.at, suffix), nil); err != nil {
				return err
			}
		}
		next := &timerRec{at: truth.TimerTime(tc.At), command: tc.Command, payload: tc.Payload}
		if err := errors.Join(b.Set(timerKey(suffix), encodeTimer(next), nil), b.Set(dueKey(next.at, suffix), nil, nil)); err != nil {
			return err
		}
		o.changed[string(suffix)] = next
	}
	return nil
}

// DueTimers implements truth.TimerStore.
func (s *Store) DueTimers(ctx context.Context, now time.Time, limit int) ([]truth.DueTimer, error) {
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
	// Everything due at or before now sorts below the index key of now+1ns.
	upper := binary.BigEndian.AppendUint64([]byte{tagDue}, uint64(truth.TimerTime(now).UnixNano()+1)^(1<<63))
	snap := s.db.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{tagDue}, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("embedded: timer scan: %w", err)
	}
	defer it.Close()
	var out []truth.DueTimer
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		k := it.Key()
		if len(k) < 9 {
			return nil, fmt.Errorf("%w: due key %x", errCorrupt, k)
		}
		suffix := k[9:]
		key, timerID, err := parseSuffix(suffix)
		if err != nil {
			return nil, err
		}
		v, closer, err := snap.Get(timerKey(suffix))
		if err != nil {
			return nil, fmt.Errorf("embedded: timer %q of %v: %w", timerID, key, err)
		}
		r, err := decodeTimer(v)
		closer.Close()
		if err != nil {
			return nil, fmt.Errorf("embedded: timer %q of %v: %w", timerID, key, err)
		}
		out = append(out, truth.DueTimer{Key: key, TimerID: timerID, At: r.at, Command: r.command, Payload: r.payload})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("embedded: timer scan: %w", err)
	}
	return out, nil
}

// CancelTimer implements truth.TimerStore (synced).
func (s *Store) CancelTimer(ctx context.Context, key truth.Key, timerID string, at time.Time) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	o := &timerOverlay{s: s, changed: map[string]*timerRec{}}
	if err := o.apply(b, key, []truth.TimerChange{{TimerID: timerID, Cancel: true, IfAt: at}}); err != nil {
		return fmt.Errorf("embedded: cancel timer: %w", err)
	}
	if len(o.changed) == 0 {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("embedded: cancel timer: %w", err)
	}
	return nil
}

// Timers returns the timers of one aggregate in timer id order, without
// leasing them (for tests and operators).
func (s *Store) Timers(ctx context.Context, key truth.Key) ([]truth.DueTimer, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := append([]byte{tagTimer}, appendLP(appendLP(appendLP(nil, key.Tenant), key.Kind), key.ID)...)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("embedded: timer scan: %w", err)
	}
	defer it.Close()
	var out []truth.DueTimer
	for ok := it.First(); ok; ok = it.Next() {
		k, timerID, err := parseSuffix(it.Key()[1:])
		if err != nil {
			return nil, err
		}
		r, err := decodeTimer(it.Value())
		if err != nil {
			return nil, fmt.Errorf("embedded: timer %q of %v: %w", timerID, k, err)
		}
		out = append(out, truth.DueTimer{Key: k, TimerID: timerID, At: r.at, Command: r.command, Payload: r.payload})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("embedded: timer scan: %w", err)
	}
	// Length-prefixed ids sort by length first.
	sort.Slice(out, func(i, j int) bool { return out[i].TimerID < out[j].TimerID })
	return out, nil
}
