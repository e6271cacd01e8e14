package grains

import (
	"fmt"
	"strings"
)

// RequireRole returns nil when env holds one of roles, else a CodeForbidden
// *Error naming the command and the roles it needs.
func RequireRole(env Env, command string, roles ...string) error {
	for _, r := range roles {
		if env.HasRole(r) {
			return nil
		}
	}
	return Errorf(CodeForbidden, "%s requires role %s", command, strings.Join(roles, " or "))
}

// InvalidTransition is the CodeInvalidTransition *Error for command in state
// of a kind, e.g. `quote q-1 is accepted: accept is not allowed`. why, when
// not empty, is appended as the explanation.
func InvalidTransition(kind Kind, id, state, command, why string) *Error {
	msg := fmt.Sprintf("%s %s is %s: %s is not allowed", kind, id, state, command)
	if why != "" {
		msg += " (" + why + ")"
	}
	return &Error{Code: CodeInvalidTransition, Message: msg}
}

// NotFound is the CodeNotFound *Error for a command on an aggregate that does
// not exist.
func NotFound(kind Kind, id, command string) *Error {
	return Errorf(CodeNotFound, "%s %s does not exist: %s is not allowed", kind, id, command)
}
