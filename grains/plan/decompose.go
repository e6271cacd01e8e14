package plan

import (
	"fmt"
	"strconv"

	"github.com/grainline/grainline/grains"
)

// Task is one fulfillment task of one order, as a plan decomposes it.
type Task struct {
	// ID is "<orderId>/<lineId>/<type>" for a line task and
	// "<orderId>/<type>" for an order task.
	ID   string `json:"taskId"`
	Type string `json:"type"`
	// LineID is the line a line task fulfils; "" for an order task.
	LineID string `json:"lineId,omitempty"`
	// DependsOn lists the ids of the tasks that must be done first.
	DependsOn       []string `json:"dependsOn,omitempty"`
	PointOfNoReturn bool     `json:"pointOfNoReturn,omitempty"`
	Compensation    string   `json:"compensation,omitempty"`
}

// OrderTaskID is the id of an order task.
func OrderTaskID(orderID, taskType string) string { return orderID + "/" + taskType }

// LineTaskID is the id of a line task.
func LineTaskID(orderID, lineID, taskType string) string {
	return orderID + "/" + lineID + "/" + taskType
}

// GenerationSeparator joins a line id and its task generation in the id of
// a redone line task (see LineTaskIDAt).
const GenerationSeparator = "@"

// LineTaskIDAt is the id of a line task of generation gen: generation 1
// (and 0) is LineTaskID, a later one "<orderId>/<lineId>@<gen>/<type>".
// An amended order redoes a changed line's tasks under a new generation, so
// that a redone task has an id, and an external idempotency key, of its own.
func LineTaskIDAt(orderID, lineID string, gen int, taskType string) string {
	if gen <= 1 {
		return LineTaskID(orderID, lineID, taskType)
	}
	return LineTaskID(orderID, lineID+GenerationSeparator+strconv.Itoa(gen), taskType)
}

// Decompose decomposes lines with the built-in plan of version (see Builtin
// and Catalog.Decompose).
func Decompose(orderID string, version int, lines []grains.Line) ([]Task, error) {
	return Builtin().Decompose(orderID, version, lines)
}

// Decompose turns the lines of order orderID into the tasks of plan version.
// The result is deterministic: the same input gives the same tasks in the
// same order, a topological order of the dependencies in which ties keep
// declaration order (each line's tasks in line order, then the order
// tasks). An order task that depends on a line task type no line has does not
// wait for it.
func (c Catalog) Decompose(orderID string, version int, lines []grains.Line) ([]Task, error) {
	return c.DecomposeAt(orderID, version, lines, nil)
}

// DecomposeAt is Decompose with the task generation of each line (by line
// id; absent means 1): a line's tasks get the ids of LineTaskIDAt. An
// amended order decomposes its new set of lines with it, so that unchanged
// lines keep their tasks and changed ones get new ones.
func (c Catalog) DecomposeAt(orderID string, version int, lines []grains.Line, generations map[string]int) ([]Task, error) {
	p, ok := c.Plan(version)
	if !ok {
		return nil, fmt.Errorf("%w: %d (known: %v)", ErrUnknownVersion, version, c.Versions())
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if orderID == "" {
		return nil, fmt.Errorf("%w: no order id", ErrInvalidLines)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%w: order %s has no lines", ErrInvalidLines, orderID)
	}
	var tasks []Task
	byLineType := map[string][]string{} // line task type -> ids over all lines
	seen := map[string]bool{}
	for i, l := range lines {
		if l.LineID == "" {
			return nil, fmt.Errorf("%w: line %d of order %s has no id", ErrInvalidLines, i, orderID)
		}
		if seen[l.LineID] {
			return nil, fmt.Errorf("%w: order %s has line %q twice", ErrInvalidLines, orderID, l.LineID)
		}
		seen[l.LineID] = true
		specs, ok := p.Offerings[l.OfferingID]
		if !ok {
			specs = p.Default
		}
		for _, s := range specs {
			gen := generations[l.LineID]
			t := newTask(s, LineTaskIDAt(orderID, l.LineID, gen, s.Type), l.LineID)
			for _, d := range s.DependsOn {
				t.DependsOn = append(t.DependsOn, LineTaskIDAt(orderID, l.LineID, gen, d))
			}
			tasks = append(tasks, t)
			byLineType[s.Type] = append(byLineType[s.Type], t.ID)
		}
	}
	orderTypes := map[string]bool{}
	for _, s := range p.Order {
		orderTypes[s.Type] = true
	}
	for _, s := range p.Order {
		t := newTask(s, OrderTaskID(orderID, s.Type), "")
		for _, d := range s.DependsOn {
			if orderTypes[d] {
				t.DependsOn = append(t.DependsOn, OrderTaskID(orderID, d))
			} else {
				t.DependsOn = append(t.DependsOn, byLineType[d]...)
			}
		}
		tasks = append(tasks, t)
	}
	return topological(tasks)
}

func newTask(s TaskSpec, id, lineID string) Task {
	return Task{ID: id, Type: s.Type, LineID: lineID, PointOfNoReturn: s.PointOfNoReturn, Compensation: s.Compensation}
}

// topological orders tasks so that each comes after its dependencies,
// picking the first ready task in input order at each step.
func topological(tasks []Task) ([]Task, error) {
	ids := make(map[string]bool, len(tasks))
	for _, t := range tasks {
		if ids[t.ID] {
			return nil, fmt.Errorf("%w: task id %q is not unique", ErrInvalidLines, t.ID)
		}
		ids[t.ID] = true
	}
	out := make([]Task, 0, len(tasks))
	placed := make(map[string]bool, len(tasks))
	for len(out) < len(tasks) {
		progress := false
		for _, t := range tasks {
			if placed[t.ID] {
				continue
			}
			ready := true
			for _, d := range t.DependsOn {
				ready = ready && placed[d]
			}
			if ready {
				out, placed[t.ID], progress = append(out, t), true, true
				break
			}
		}
		if !progress {
			return nil, fmt.Errorf("%w: tasks depend on each other in a cycle", ErrInvalidPlan)
		}
	}
	return out, nil
}
