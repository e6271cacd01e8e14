// Package plan declares decomposition plans: the data that turns the lines of
// an order into fulfillment tasks with dependencies. Plans are versioned; an
// order pins the version it was created with and keeps it until it finishes,
// so a new version only ever applies to new orders.
//
// A plan is plain data (JSON and YAML tags, no I/O). Two kinds of task exist:
//
//   - order tasks run once per order and cover all of its lines; their id is
//     "<orderId>/<type>" (plan version 1's single "provision" task);
//   - line tasks run once per order line; their id is
//     "<orderId>/<lineId>/<type>". The tasks of a line come from the plan's
//     entry for the line's offering id, or from Default when the offering has
//     no entry of its own.
//
// Dependencies name task types. A line task depends on tasks of the same
// line; an order task depends on other order tasks, and on a line task type
// meaning "that task on every line that has it".
package plan

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
)

// Task types the built-in plans use. Workers subscribe by type.
const (
	TypeReserveInventory = "reserveInventory"
	TypeProvision        = "provision"
	TypeActivateBilling  = "activateBilling"
	TypeNotify           = "notify"
)

// Compensations the built-in plans declare; they undo a task on cancel.
const (
	CompensationReleaseReservation = "releaseReservation"
	CompensationDeprovision        = "deprovision"
	CompensationDeactivateBilling  = "deactivateBilling"
)

// Plan versions.
const (
	// V1 is one order task, "provision", covering every line.
	V1 = 1
	// V2 is per line: reserve inventory → provision → activate billing, then
	// one order task "notify" once every line's billing is active.
	V2 = 2
	// DefaultVersion is the version an order pins when its create command
	// names none.
	DefaultVersion = V2
)

// Sentinel errors. Every error Validate or Decompose returns wraps one.
var (
	// ErrInvalidPlan: a plan breaks one of the rules Validate lists.
	ErrInvalidPlan = errors.New("plan: invalid plan")
	// ErrUnknownVersion: the catalog has no plan with the asked version.
	ErrUnknownVersion = errors.New("plan: unknown plan version")
	// ErrInvalidLines: the lines cannot be decomposed (none, or an empty or
	// repeated line id).
	ErrInvalidLines = errors.New("plan: invalid order lines")
)

// TaskSpec declares one task of a plan.
type TaskSpec struct {
	// Type is what the task does, e.g. "provision"; unique within its list.
	Type string `json:"type" yaml:"type"`
	// DependsOn lists task types that must be done before this task is
	// requested.
	DependsOn []string `json:"dependsOn,omitempty" yaml:"dependsOn,omitempty"`
	// PointOfNoReturn: once this task is done, its line can no longer be
	// cancelled or amended by compensation.
	PointOfNoReturn bool `json:"pointOfNoReturn,omitempty" yaml:"pointOfNoReturn,omitempty"`
	// Compensation names the task that undoes this one ("" for none).
	Compensation string `json:"compensation,omitempty" yaml:"compensation,omitempty"`
}

// Plan is one version of the decomposition.
type Plan struct {
	// Version is positive and unique within a Catalog.
	Version int `json:"version" yaml:"version"`
	// Description says what the version does, for operators.
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// Order lists the tasks that run once per order.
	Order []TaskSpec `json:"order,omitempty" yaml:"order,omitempty"`
	// Offerings lists the tasks of each line, by offering id.
	Offerings map[string][]TaskSpec `json:"offerings,omitempty" yaml:"offerings,omitempty"`
	// Default lists the tasks of a line whose offering is not in Offerings.
	Default []TaskSpec `json:"default,omitempty" yaml:"default,omitempty"`
	// LeadTimeSeconds is how long after acceptance an order of this version
	// is committed to complete, when its create command requests no date
	// (see Commitment). 0 means DefaultLeadTime.
	LeadTimeSeconds int `json:"leadTimeSeconds,omitempty" yaml:"leadTimeSeconds,omitempty"`
	// JeopardyMarginSeconds is how long before its committed date an order
	// of this version is at risk, unless its create command sets a margin.
	// 0 means a quarter of the order's window (see Commitment).
	JeopardyMarginSeconds int `json:"jeopardyMarginSeconds,omitempty" yaml:"jeopardyMarginSeconds,omitempty"`
}

// Validate checks the plan:
//
//   - Version is positive;
//   - it declares at least one task;
//   - every task has a type, unique within its list;
//   - a line task depends only on types of its own list;
//   - an order task depends on order task types or on line task types that
//     some list of the plan declares;
//   - no task depends on itself, and the dependencies have no cycle;
//   - LeadTimeSeconds and JeopardyMarginSeconds are not negative, and a
//     margin is shorter than the lead time.
func (p Plan) Validate() error {
	if p.Version < 1 {
		return fmt.Errorf("%w: version %d is not positive", ErrInvalidPlan, p.Version)
	}
	if err := p.validateCommitment(); err != nil {
		return err
	}
	lineTypes := map[string]bool{}
	lists := []struct {
		name  string
		specs []TaskSpec
	}{{"default", p.Default}}
	for _, id := range sortedKeys(p.Offerings) {
		lists = append(lists, struct {
			name  string
			specs []TaskSpec
		}{"offering " + strconv.Quote(id), p.Offerings[id]})
	}
	total := len(p.Order)
	for _, l := range lists {
		total += len(l.specs)
		if err := validateList(p.Version, l.name, l.specs, nil); err != nil {
			return err
		}
		for _, s := range l.specs {
			lineTypes[s.Type] = true
		}
	}
	if total == 0 {
		return fmt.Errorf("%w: version %d declares no task", ErrInvalidPlan, p.Version)
	}
	return validateList(p.Version, "order", p.Order, lineTypes)
}

// validateList checks one list of specs. External names the types outside
// the list a spec may also depend on (nil: none).
func validateList(version int, name string, specs []TaskSpec, external map[string]bool) error {
	index := map[string]int{}
	for i, s := range specs {
		if s.Type == "" {
			return fmt.Errorf("%w: version %d, %s task %d has no type", ErrInvalidPlan, version, name, i)
		}
		if _, dup := index[s.Type]; dup {
			return fmt.Errorf("%w: version %d, %s declares %q twice", ErrInvalidPlan, version, name, s.Type)
		}
		index[s.Type] = i
	}
	for _, s := range specs {
		for _, d := range s.DependsOn {
			if d == s.Type {
				return fmt.Errorf("%w: version %d, %s task %q depends on itself", ErrInvalidPlan, version, name, s.Type)
			}
			if _, ok := index[d]; !ok && !external[d] {
				return fmt.Errorf("%w: version %d, %s task %q depends on unknown task %q", ErrInvalidPlan, version, name, s.Type, d)
			}
		}
	}
	// Kahn's algorithm over the list's own edges; what is left is a cycle.
	deps := make([][]string, len(specs))
	for i, s := range specs {
		for _, d := range s.DependsOn {
			if _, ok := index[d]; ok {
				deps[i] = append(deps[i], d)
			}
		}
	}
	if cyc := cycle(specs, deps); len(cyc) > 0 {
		return fmt.Errorf("%w: version %d, %s tasks %q depend on each other in a cycle", ErrInvalidPlan, version, name, cyc)
	}
	return nil
}

// cycle returns the types that Kahn's algorithm cannot order (sorted), or nil.
func cycle(specs []TaskSpec, deps [][]string) []string {
	done := map[string]bool{}
	for progress := true; progress; {
		progress = false
		for i, s := range specs {
			if done[s.Type] {
				continue
			}
			ready := true
			for _, d := range deps[i] {
				ready = ready && done[d]
			}
			if ready {
				done[s.Type], progress = true, true
			}
		}
	}
	var left []string
	for _, s := range specs {
		if !done[s.Type] {
			left = append(left, s.Type)
		}
	}
	sort.Strings(left)
	return left
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
