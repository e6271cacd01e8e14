// Package e2e holds the end-to-end tests of Grainline: the whole journey
// from quote to completed order, over HTTP and NATS, against two set-ups of
// the same platform. "embedded" is the single-binary default (embedded truth
// store, in-process Kafka-protocol broker, in-process NATS server); "real"
// runs against PostgreSQL, Apache Kafka and nats-server as started by
// scripts/services.sh (see internal/testenv). Every test runs in both.
//
// The package has no code of its own outside the tests; run it with
//
//	go test -race -count=1 ./e2e/...
package e2e
