package deadletter

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/IBM/sarama"
)

// Position is where a message sits in the dead-letter topic.
type Position struct {
	Partition int32
	Offset    int64
}

// String is "partition:offset", the form ParsePosition reads.
func (p Position) String() string { return fmt.Sprintf("%d:%d", p.Partition, p.Offset) }

// ParsePosition parses "partition:offset" (both non-negative integers).
func ParsePosition(s string) (Position, error) {
	ps, os, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Position{}, fmt.Errorf("deadletter: position %q is not partition:offset", s)
	}
	p, err1 := strconv.ParseInt(ps, 10, 32)
	o, err2 := strconv.ParseInt(os, 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return Position{}, fmt.Errorf("deadletter: position %q is not partition:offset", s)
	}
	return Position{Partition: int32(p), Offset: o}, nil
}

// Letter is one message of the dead-letter topic: its position and its
// record. Err is set, and Record zero, when the value is not a Record.
type Letter struct {
	Position
	Record Record
	Err    error
}

// Read calls fn for every message of the dead-letter topic, partition by
// partition in offset order, from the oldest retained offset up to the
// high-water mark each partition had when Read started, so that it ends
// while processors keep dead-lettering. An error from fn stops Read and is
// returned; ctx bounds the whole read (a partition that never delivers its
// last offset fails with ctx's error, naming the partition).
func Read(ctx context.Context, client sarama.Client, topic string, fn func(Letter) error) error {
	parts, err := client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("deadletter: partitions of %s: %w", topic, err)
	}
	type bounds struct{ low, high int64 }
	marks := make([]bounds, len(parts))
	// All high-water marks first: the listing is a snapshot of one moment.
	for i, p := range parts {
		high, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("deadletter: high-water mark of %s/%d: %w", topic, p, err)
		}
		low, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("deadletter: oldest offset of %s/%d: %w", topic, p, err)
		}
		marks[i] = bounds{low, high}
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("deadletter: consumer: %w", err)
	}
	defer consumer.Close()
	for i, p := range parts {
		if marks[i].high <= marks[i].low {
			continue
		}
		if err := readPartition(ctx, consumer, topic, p, marks[i].low, marks[i].high, fn); err != nil {
			return err
		}
	}
	return nil
}

func readPartition(ctx context.Context, consumer sarama.Consumer, topic string, p int32, low, high int64, fn func(Letter) error) error {
	pc, err := consumer.ConsumePartition(topic, p, low)
	if err != nil {
		return fmt.Errorf("deadletter: consume %s/%d from %d: %w", topic, p, low, err)
	}
	defer pc.Close()
	next := low
	for next < high {
		select {
		case m := <-pc.Messages():
			next = m.Offset + 1
			l := Letter{Position: Position{Partition: p, Offset: m.Offset}}
			l.Record, l.Err = Decode(m.Value)
			if l.Err != nil {
				l.Record = Record{}
				l.Err = fmt.Errorf("not a dead-letter record: %w", l.Err)
			}
			if err := fn(l); err != nil {
				return err
			}
		case err := <-pc.Errors():
			return fmt.Errorf("deadletter: read %s/%d: %w", topic, p, err)
		case <-ctx.Done():
			return fmt.Errorf("deadletter: read %s/%d: stopped at offset %d of %d: %w", topic, p, next, high, ctx.Err())
		}
	}
	return nil
}
