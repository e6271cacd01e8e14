package grains

// Behavior is the pure behaviour of one grain kind. S is its snapshot state,
// JSON-encodable; the zero S means "does not exist yet".
//
// The runtime drives it as follows: DecodeCommand turns the wire command into
// a typed Command, Decide turns (state, command, env) into events or an
// *Error, and Apply folds each event, in order, into the next state. Decide
// and Apply are pure: same inputs, same outputs.
type Behavior[S any] struct {
	Kind Kind
	// Decide returns the events cmd produces against state, or an *Error.
	// No events and no error means "nothing to do": the runtime replies with the
	// current state and commits nothing (this is how repeats stay idempotent).
	Decide func(state S, cmd Command, env Env) ([]Event, error)
	// Apply folds one event into state. It never fails.
	Apply func(state S, ev Event) S
	// DecodeCommand turns a wire command (name + JSON payload) into a typed
	// Command; unknown names and bad JSON are CodeBadRequest errors, with
	// Violations for bad fields where practical.
	DecodeCommand func(name string, payload []byte) (Command, error)
	// Exists reports whether state holds a created aggregate.
	Exists func(state S) bool
	// CatalogVersion, optional, returns the catalog version state is pinned
	// to; 0, or a nil func, means the tenant's active version. For kinds that
	// need a catalog the runtime passes that version in Env.Catalog, so an
	// aggregate keeps deciding against the version it was created with.
	CatalogVersion func(state S) int
}

// Fold applies events to state in order.
func (b Behavior[S]) Fold(state S, events []Event) S {
	for _, ev := range events {
		state = b.Apply(state, ev)
	}
	return state
}
