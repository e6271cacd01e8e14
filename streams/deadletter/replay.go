package deadletter

import (
	"errors"
	"fmt"
	"sort"

	"github.com/IBM/sarama"

	"github.com/grainline/grainline/connectors/kafka"
)

// Producer sends one message and waits for its acknowledgement;
// sarama.SyncProducer has this method. The producer must partition with
// goka's hasher (kafka.Config.Sarama does), so that a replayed key lands in
// the partition its processor reads it from.
type Producer interface {
	SendMessage(msg *sarama.ProducerMessage) (partition int32, offset int64, err error)
}

// ErrNotReplayable: the dead-letter message is not a record, or its record
// names no original topic.
var ErrNotReplayable = errors.New("deadletter: not replayable")

// ReplayHeaders returns the headers a replay of the record at pos carries:
// the original headers when the record kept them, otherwise the platform's
// headers rebuilt from the record and its value (tenant_id; for an event
// envelope event_type and event_id; for a command, event_id is the event
// that caused it, as intake and the worker set it), and in both cases
// HeaderReplayOf set to pos (replacing the mark of an earlier replay, whose
// HeaderReplayReason is dropped).
func ReplayHeaders(r Record, pos Position) map[string]string {
	h := map[string]string{}
	if r.Headers != nil {
		for k, v := range r.Headers {
			h[k] = v
		}
		delete(h, HeaderReplayReason)
	} else {
		if r.TenantID != "" {
			h[kafka.HeaderTenant] = r.TenantID
		}
		if env, err := kafka.DecodeEnvelope(r.Value); err == nil {
			h[kafka.HeaderTenant] = env.TenantID
			h[kafka.HeaderEventType] = env.EventType
			h[kafka.HeaderEventID] = env.EventID
		} else if cmd, err := kafka.DecodeCommand(r.Value); err == nil {
			h[kafka.HeaderTenant] = cmd.TenantID
			if cmd.CausationID != "" {
				h[kafka.HeaderEventID] = cmd.CausationID
			}
		}
	}
	h[HeaderReplayOf] = pos.String()
	return h
}

// Message returns the message that replays l: to the original topic, with
// the original key and value and ReplayHeaders (in name order).
func Message(l Letter) (*sarama.ProducerMessage, error) {
	if l.Err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotReplayable, l.Position, l.Err)
	}
	if l.Record.OriginalTopic == "" {
		return nil, fmt.Errorf("%w: %s: the record names no original topic", ErrNotReplayable, l.Position)
	}
	h := ReplayHeaders(l.Record, l.Position)
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	msg := &sarama.ProducerMessage{
		Topic: l.Record.OriginalTopic,
		Key:   sarama.StringEncoder(l.Record.Key),
		Value: sarama.ByteEncoder(l.Record.Value),
	}
	for _, k := range names {
		msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(h[k])})
	}
	return msg, nil
}

// Outcome is what became of one replayed dead letter.
type Outcome struct {
	Letter  Letter
	Message *sarama.ProducerMessage // nil when Err is ErrNotReplayable
	// Partition is where the message landed (or, in a dry run, would land).
	Partition int32
	// Offset is the message's offset on the original topic; -1 in a dry run
	// or on failure.
	Offset int64
	Err    error
}

// Moved reports whether the replay landed in another partition than the
// original message (the topic's partition count changed since).
func (o Outcome) Moved() bool { return o.Err == nil && o.Partition != o.Letter.Record.Partition }

// Replayer re-publishes dead letters to their original topics.
type Replayer struct {
	// Producer sends the messages. Unused (may be nil) in a dry run.
	Producer Producer
	// Partitions returns the partition count of a topic (sarama.Client's
	// Partitions does), for the dry run's prediction.
	Partitions func(topic string) ([]int32, error)
	// Partitioner is the producer's partitioner
	// (kafka.Config.Sarama().Producer.Partitioner).
	Partitioner sarama.PartitionerConstructor
	// DryRun computes every message and its partition and sends nothing.
	DryRun bool
	// Reason, when set, goes on every message as HeaderReplayReason.
	Reason string
}

// HeaderReplayReason carries the operator's reason for a replay, when given.
const HeaderReplayReason = "grainline-replay-reason"

// Replay re-publishes l (or, in a dry run, says where it would go).
func (r *Replayer) Replay(l Letter) Outcome {
	o := Outcome{Letter: l, Offset: -1, Partition: -1}
	msg, err := Message(l)
	if err != nil {
		o.Err = err
		return o
	}
	if r.Reason != "" {
		msg.Headers = append(msg.Headers, sarama.RecordHeader{Key: []byte(HeaderReplayReason), Value: []byte(r.Reason)})
	}
	o.Message = msg
	if r.DryRun {
		parts, err := r.Partitions(msg.Topic)
		if err != nil {
			o.Err = fmt.Errorf("deadletter: partitions of %s: %w", msg.Topic, err)
			return o
		}
		p, err := r.Partitioner(msg.Topic).Partition(msg, int32(len(parts)))
		if err != nil {
			o.Err = fmt.Errorf("deadletter: partition of %s: %w", msg.Topic, err)
			return o
		}
		o.Partition = p
		return o
	}
	p, off, err := r.Producer.SendMessage(msg)
	if err != nil {
		o.Err = fmt.Errorf("deadletter: send to %s: %w", msg.Topic, err)
		return o
	}
	o.Partition, o.Offset = p, off
	return o
}
