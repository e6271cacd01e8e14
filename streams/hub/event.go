package hub

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/grainline/grainline/connectors/kafka"
)

// Event is the JSON body of a delivery: a TMF-style notification whose
// event.productOrder is the order event's payload with the TMF fields id,
// href, state and @type added.
type Event struct {
	EventID       string    `json:"eventId"`
	EventTime     time.Time `json:"eventTime"`
	EventType     string    `json:"eventType"`
	CorrelationID string    `json:"correlationId,omitempty"`
	// SourceEventType is the order event behind the notification
	// (e.g. "OrderCompleted").
	SourceEventType string    `json:"sourceEventType"`
	Event           EventBody `json:"event"`
}

// EventBody carries the resource of an Event.
type EventBody struct {
	ProductOrder json.RawMessage `json:"productOrder"`
}

// notification is one order event made ready to deliver.
type notification struct {
	eventID   string
	eventType string // TMF
	state     string
	orderID   string
	at        time.Time
	body      []byte
}

// ErrNotPublished marks an order event the hub does not publish.
var errNotPublished = fmt.Errorf("hub: event type not published")

// notify turns an order event into the body delivered to subscribers.
func notify(env kafka.Envelope) (notification, error) {
	typ := TMFEventType(env.EventType)
	if typ == "" {
		return notification{}, errNotPublished
	}
	var order map[string]json.RawMessage
	if err := json.Unmarshal(env.Payload, &order); err != nil || order == nil {
		return notification{}, fmt.Errorf("hub: order event payload is not a JSON object")
	}
	var state string
	if raw, ok := order["status"]; ok {
		_ = json.Unmarshal(raw, &state) // a non-string status leaves state empty
	}
	orderID := env.AggregateID
	if raw, ok := order["orderId"]; ok {
		var id string
		if json.Unmarshal(raw, &id) == nil && id != "" {
			orderID = id
		}
	}
	order["id"], _ = json.Marshal(orderID)
	order["href"], _ = json.Marshal("/v1/orders/" + orderID)
	order["@type"] = json.RawMessage(`"ProductOrder"`)
	if state != "" {
		order["state"], _ = json.Marshal(state)
	}
	po, err := json.Marshal(order)
	if err != nil {
		return notification{}, fmt.Errorf("hub: encode productOrder: %w", err)
	}
	body, err := json.Marshal(Event{
		EventID:         env.EventID,
		EventTime:       env.OccurredAt.UTC(),
		EventType:       typ,
		CorrelationID:   env.CorrelationID,
		SourceEventType: env.EventType,
		Event:           EventBody{ProductOrder: po},
	})
	if err != nil {
		return notification{}, fmt.Errorf("hub: encode event: %w", err)
	}
	return notification{eventID: env.EventID, eventType: typ, state: state, orderID: orderID, at: env.OccurredAt, body: body}, nil
}
