// Package deadletter is the record a stream processor writes to the
// dead-letter topic when it cannot process a message, and the helper that
// writes it from a goka callback. A record carries everything needed to
// understand and replay the message: its original topic, partition, offset,
// key and value, the error and its category, the consumer group and how often
// it was tried.
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
const ReplayInstruction = "re-publish value to original_topic"

// Record is the JSON value of a dead-letter message. The message key is the
// original key. Value is base64 in JSON (encoding/json's []byte encoding).
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
}

// Decode parses a dead-letter message value.
func Decode(value []byte) (Record, error) {
	var r Record
	err := json.Unmarshal(value, &r)
	return r, err
}

// HeaderTenant is the header that carries the tenant id; dead-letter
// messages repeat it from the original message when it was present.
const HeaderTenant = "tenant_id"

// Emit writes a dead-letter record for the message being processed in ctx to
// topic. value is the raw message value; attempts is how often handling was
// tried; err is the reason. The processor's group graph must declare topic as
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
	// Marshal cannot fail: every field is a plain value.
	b, _ := json.Marshal(rec)
	ctx.Emit(topic, ctx.Key(), b, goka.WithCtxEmitHeaders(headers))
}
