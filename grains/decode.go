package grains

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DecodePayload unmarshals the JSON payload of command into v, which must be
// a pointer to a struct. An empty payload decodes as {}. With strict set,
// fields v does not declare are rejected. Every failure is an *Error with
// CodeBadRequest and, where the decoder says which field, a Violation whose
// pointer names it.
func DecodePayload(command string, payload []byte, v any, strict bool) error {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 {
		trimmed = []byte("{}")
	}
	if trimmed[0] != '{' {
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("%s: payload must be a JSON object", command),
			Violations: []Violation{{Pointer: "", Code: "type", Message: "expected a JSON object"}}}
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return payloadError(command, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("%s: unexpected data after the JSON object", command)}
	}
	return nil
}

func payloadError(command string, err error) *Error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("%s: malformed JSON at offset %d: %v", command, syn.Offset, syn)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("%s: truncated JSON", command)}
	case errors.As(err, &typ):
		ptr := fieldPointer(typ.Field)
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("%s: %s must be %s, not %s", command, displayField(ptr), typ.Type, typ.Value),
			Violations: []Violation{{Pointer: ptr, Code: "type", Message: fmt.Sprintf("expected %s, got %s", typ.Type, typ.Value)}}}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("%s: unknown field %q", command, name),
			Violations: []Violation{{Pointer: "/" + escapePointer(name), Code: "unknown", Message: "unknown field"}}}
	}
	return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("%s: %v", command, err)}
}

// fieldPointer turns encoding/json's dotted field path into a JSON pointer.
func fieldPointer(field string) string {
	if field == "" {
		return ""
	}
	parts := strings.Split(field, ".")
	for i, p := range parts {
		parts[i] = escapePointer(p)
	}
	return "/" + strings.Join(parts, "/")
}

func displayField(ptr string) string {
	if ptr == "" {
		return "payload"
	}
	return ptr
}

func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// Violations collects input problems; Err turns them into one
// CodeValidation error.
type Violations []Violation

// Add records a problem at pointer.
func (v *Violations) Add(pointer, code, message string) {
	*v = append(*v, Violation{Pointer: pointer, Code: code, Message: message})
}

// Err returns nil when nothing was recorded, else a CodeValidation *Error
// carrying every violation.
func (v Violations) Err(command string) error {
	if len(v) == 0 {
		return nil
	}
	msgs := make([]string, len(v))
	for i, x := range v {
		msgs[i] = x.Pointer + ": " + x.Message
	}
	return &Error{Code: CodeValidation, Message: command + ": " + strings.Join(msgs, "; "), Violations: []Violation(v)}
}
