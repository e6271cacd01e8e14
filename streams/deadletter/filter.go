package deadletter

import (
	"slices"
	"time"
)

// Filter selects dead letters. Every set field must match; the zero Filter
// selects everything.
type Filter struct {
	// Tenant is the record's tenant id.
	Tenant string
	// Consumer is the consumer group that dead-lettered the message.
	Consumer string
	// Category is the record's category.
	Category Category
	// Topic is the original topic.
	Topic string
	// Since keeps records dead-lettered at or after it.
	Since time.Time
	// Positions keeps only the messages at these dead-letter positions.
	Positions []Position
}

// IsZero reports whether f selects everything.
func (f Filter) IsZero() bool {
	return f.Tenant == "" && f.Consumer == "" && f.Category == "" && f.Topic == "" &&
		f.Since.IsZero() && len(f.Positions) == 0
}

// Match reports whether f selects l. A message that is not a record (l.Err)
// matches only a filter without record criteria (positions aside).
func (f Filter) Match(l Letter) bool {
	if len(f.Positions) > 0 && !slices.Contains(f.Positions, l.Position) {
		return false
	}
	if l.Err != nil {
		return f.Tenant == "" && f.Consumer == "" && f.Category == "" && f.Topic == "" && f.Since.IsZero()
	}
	r := l.Record
	switch {
	case f.Tenant != "" && r.TenantID != f.Tenant:
		return false
	case f.Consumer != "" && r.Consumer != f.Consumer:
		return false
	case f.Category != "" && r.Category != f.Category:
		return false
	case f.Topic != "" && r.OriginalTopic != f.Topic:
		return false
	case !f.Since.IsZero() && r.At.Before(f.Since):
		return false
	}
	return true
}
