// Package grainline is the root of the module: it embeds the files that
// describe the deployment (topology.yaml).
package grainline

import _ "embed"

// TopologyYAML is topology.yaml: the topics, keys, retention, owners and
// consumer groups of Grainline, decoded by connectors/kafka.Load.
//
//go:embed topology.yaml
var TopologyYAML []byte
