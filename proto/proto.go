// Package proto holds the protobuf definitions of messages that cross nodes.
// The generated Go code lives in wirepb and is committed; regenerate it with
// `go generate ./proto` (needs protoc and protoc-gen-go).
package proto

//go:generate protoc --go_out=.. --go_opt=module=github.com/grainline/grainline wire.proto
