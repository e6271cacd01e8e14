package grains

import (
	"encoding/json"
	"time"
)

// Timer is a durable timer of one aggregate: when At comes, the runtime sends
// Command (with Payload) to the aggregate, as actor "timer" with role
// "system". Timers survive restarts; a timer due while no node ran fires as
// soon as one does. Firing is at least once: the command arrives with an
// idempotency key unique to this timer and its At, so a repeat is answered
// from the first result.
type Timer struct {
	// ID names the timer within its aggregate, e.g. "expire". Setting a timer
	// with the ID of an existing one replaces it.
	ID string
	// At is when the command is due. Kept to the microsecond.
	At time.Time
	// Command is the wire name of the command sent when due.
	Command string
	// Payload is the command's JSON body; empty means {}.
	Payload json.RawMessage
}

// TimerEffects is implemented by events that set or cancel timers of their
// aggregate. The runtime writes the changes in the same atomic commit as the
// events; events are applied in order, so a later event's change to a timer
// ID wins over an earlier one's.
type TimerEffects interface {
	// Timers returns the timers to set (or replace) and the IDs to cancel.
	Timers() (set []Timer, cancel []string)
}
