// Package orderstatus keeps the current status of every order as a keyed
// table: the "oms-order-status" goka processor folds the order event topic
// into its group table (key = order id), and Reader serves that table from a
// goka view, with a go-memdb index to find an order by its quote.
//
// The fold is idempotent: a row moves only to a strictly newer event
// (aggregate revision, then the event's index within its commit), so
// duplicated deliveries and a replay of the topic from offset 0 change no
// row.
package orderstatus

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Status is one row of the table: the latest known state of one order.
type Status struct {
	TenantID  string    `json:"tenantId"`
	OrderID   string    `json:"orderId"`
	QuoteID   string    `json:"quoteId"`
	Status    string    `json:"status"`
	Revision  int64     `json:"revision"`
	UpdatedAt time.Time `json:"updatedAt"`
	EventID   string    `json:"eventId"`
}

// newer reports whether an event at (revision, eventID) is newer than the
// one that produced s. Events of one commit share a revision; their event
// ids end in "/<index>" (truth.Event), which orders them.
func (s Status) newer(revision int64, eventID string) bool {
	if revision != s.Revision {
		return revision > s.Revision
	}
	return eventIndex(eventID) > eventIndex(s.EventID)
}

// eventIndex is the trailing "/<n>" of an event id, or -1 without one.
func eventIndex(id string) int {
	i := strings.LastIndexByte(id, '/')
	if i < 0 {
		return -1
	}
	n, err := strconv.Atoi(id[i+1:])
	if err != nil {
		return -1
	}
	return n
}

// codec encodes table rows as JSON.
type codec struct{}

func (codec) Encode(value any) ([]byte, error) {
	switch v := value.(type) {
	case Status:
		return json.Marshal(v)
	case *Status:
		return json.Marshal(v)
	}
	return nil, fmt.Errorf("orderstatus: cannot encode %T", value)
}

func (codec) Decode(data []byte) (any, error) {
	var s Status
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("orderstatus: decode row: %w", err)
	}
	return s, nil
}
