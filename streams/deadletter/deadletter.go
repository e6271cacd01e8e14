// Package deadletter is the record a stream processor writes to the
// dead-letter topic when it cannot process a message, and the helper that
// writes it from a goka callback. A record carries everything needed to
// understand and replay the message: its original topic, partition, offset,
// key and value, the error and its category, the consumer group and how often
// it was tried, and the original headers.
//
// Read lists the records of a dead-letter topic up to its high-water marks,
// Filter selects among them, and Replay re-publishes selected records to
// their original topics (`grainline deadletter list|replay`, ADR 0025).
package deadletter

import (
	"encoding/json"
	"time"

	"github.com/lovoo/goka"
)

// Category classifies why a message was dead-lettered.
type Category string

const (
	// CategoryDecode: the message could not be decoded (malformed value,
	// missing envelope fields, unreadable payload).
	CategoryDecode Category = "decode"
	// CategoryPermanent: the message was understood but its handling failed
	// with an error that retrying cannot fix (a domain rejection).
	CategoryPermanent Category = "permanent"
)

// ReplayInstruction tells an operator how to replay a dead-lettered message.
const ReplayInstruction = "grainline deadletter replay -dlq-offset <partition:offset of this record> re-publishes key, value and headers to original_topic"

// Record is the JSON value of a dead-letter message. The message key is the
// original key. Value is base64 in JSON (encoding/json's []byte encoding).
// Headers are the original message's headers, values taken as text (every
// header the platform writes is); records written before Headers existed
// lack them, and Replay rebuilds the platform's headers from the value.
type Record struct {
	OriginalTopic string    `json:"original_topic"`
	Partition     int32     `json:"partition"`
	Offset        int64     `json:"offset"`
	Key           string    `json:"key"`
	Value         []byte    `json:"value"`
	Error         string    `json:"error"`
	Category      Category  `json:"category"`
	Consumer      string    `json:"consumer"`
	Attempts      int       `json:"attempts"`
	Replay        string    `json:"replay"`
	TenantID      string    `json:"tenant_id,omitempty"`
	At            time.Time `json:"at"`
	// Headers are the original message's headers. Absent (nil) in records
	// written before this field existed.
	Headers map[string]string `json:"headers,omitempty"`
}

// ReplayOf returns the dead-letter position this record's message was a
// replay of ("partition:offset", from its HeaderReplayOf header), or "" when
// the message was not a replay.
func (r Record) ReplayOf() string { return r.Headers[HeaderReplayOf] }

// Decode parses a dead-letter message value.
func Decode(value []byte) (Record, error) {
	var r Record
	err := json.Unmarshal(value, &r)
	return r, err
}

// HeaderTenant is the header that carries the tenant id; dead-letter
// messages repeat it from the original message when it was present.
const HeaderTenant = "tenant_id"

// HeaderReplayOf is the header Replay puts on every message it re-publishes:
// the dead-letter position ("partition:offset") of the record replayed. A
// replayed message that is dead-lettered again keeps it in Record.Headers,
// so the chain of attempts can be followed back.
const HeaderReplayOf = "grainline-replay-of"

// Emit writes a dead-letter record for the message being processed in ctx to
// topic, with the message's headers. value is the raw message value;
// attempts is how often handling was tried; err is the reason. The processor's group graph must declare topic as
// an output with codec.Bytes. Emit is asynchronous like goka's Context.Emit:
// the input offset is committed only once the record is acknowledged.
func Emit(ctx goka.Context, topic goka.Stream, value []byte, category Category, attempts int, err error, now time.Time) {
	rec := Record{
		OriginalTopic: string(ctx.Topic()),
		Partition:     ctx.Partition(),
		Offset:        ctx.Offset(),
		Key:           ctx.Key(),
		Value:         value,
		Error:         err.Error(),
		Category:      category,
		Consumer:      string(ctx.Group()),
		Attempts:      attempts,
		Replay:        ReplayInstruction,
		At:            now.UTC(),
	}
	headers := goka.Headers{}
	if t, ok := ctx.Headers()[HeaderTenant]; ok {
		rec.TenantID = string(t)
		headers[HeaderTenant] = t
	}
	if h := ctx.Headers(); len(h) > 0 {
		rec.Headers = make(map[string]string, len(h))
		for k, v := range h {
			rec.Headers[k] = string(v)
		}
	}
	// Marshal cannot fail: every field is a plain value.
	b, _ := json.Marshal(rec)
	ctx.Emit(topic, ctx.Key(), b, goka.WithCtxEmitHeaders(headers))
}
