package kafka

import (
	"encoding/json"
	"fmt"
	"time"
)

// Envelope is the value of every event message on Kafka: the event's
// metadata around its JSON payload. The message key is AggregateID; the
// headers repeat tenant_id, event_type and event_id for routing without
// decoding.
type Envelope struct {
	EventID       string          `json:"event_id"`
	EventType     string          `json:"event_type"`
	EventVersion  int             `json:"event_version"`
	OccurredAt    time.Time       `json:"occurred_at"`
	TenantID      string          `json:"tenant_id"`
	Producer      string          `json:"producer"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	CausationID   string          `json:"causation_id,omitempty"`
	AggregateKind string          `json:"aggregate_kind"`
	AggregateID   string          `json:"aggregate_id"`
	Revision      int64           `json:"revision"`
	Payload       json.RawMessage `json:"payload"`
}

// CommandMessage is the value of every message on a command topic
// (oms.order.commands.v1): a grain command in transit. The message key is ID.
type CommandMessage struct {
	TenantID       string          `json:"tenant_id"`
	Kind           string          `json:"kind"`    // grain kind, e.g. "order"
	ID             string          `json:"id"`      // aggregate id
	Command        string          `json:"command"` // command wire name
	Payload        json.RawMessage `json:"payload"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Actor          string          `json:"actor"`
	CorrelationID  string          `json:"correlation_id,omitempty"`
	CausationID    string          `json:"causation_id,omitempty"`
}

// Header names carried on every message.
const (
	HeaderTenant    = "tenant_id"
	HeaderEventType = "event_type"
	HeaderEventID   = "event_id"
)

// DecodeEnvelope parses an event message value.
func DecodeEnvelope(value []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(value, &e); err != nil {
		return Envelope{}, fmt.Errorf("kafka: decode envelope: %w", err)
	}
	if e.EventID == "" || e.EventType == "" || e.TenantID == "" || e.AggregateID == "" {
		return Envelope{}, fmt.Errorf("kafka: envelope lacks event_id, event_type, tenant_id or aggregate_id")
	}
	return e, nil
}

// DecodeCommand parses a command message value.
func DecodeCommand(value []byte) (CommandMessage, error) {
	var c CommandMessage
	if err := json.Unmarshal(value, &c); err != nil {
		return CommandMessage{}, fmt.Errorf("kafka: decode command: %w", err)
	}
	if c.TenantID == "" || c.Kind == "" || c.ID == "" || c.Command == "" {
		return CommandMessage{}, fmt.Errorf("kafka: command lacks tenant_id, kind, id or command")
	}
	return c, nil
}
