// Package gateway holds what the gateway's front doors share as data: the
// OpenAPI description of the HTTP API. The doors themselves live in
// gateway/httpapi and gateway/natsapi.
package gateway

import _ "embed"

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the HTTP API (a copy).
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }
