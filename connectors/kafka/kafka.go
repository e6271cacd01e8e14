// Package kafka connects Grainline to Apache Kafka: the wire envelope of
// events and commands, the producer configuration shared with goka, the
// outbox relay, topology apply/diff, and the in-process broker of
// `grainline dev`.
package kafka
