package order

// The roll-up rules are documented in the package comment (state.go).

// itemTasks returns the tasks that count for item id: its line's tasks when
// the line has any, else the order tasks.
func (s State) itemTasks(id string) []Task {
	var line, order []Task
	for _, t := range s.Tasks {
		if t.Compensates != "" || t.retired() {
			continue // compensations and retired tasks do not fulfil an item
		}
		switch t.LineID {
		case id:
			line = append(line, t)
		case "":
			order = append(order, t)
		}
	}
	if len(line) > 0 {
		return line
	}
	return order
}

// itemState rolls the tasks of item it up into its state.
func (s State) itemState(it Item) Status {
	switch it.State {
	case StatusCancelled:
		return it.State
	}
	if st, ok := s.amendedItemState(it); ok {
		return st
	}
	ts := s.itemTasks(it.ID)
	if len(ts) == 0 {
		return it.State
	}
	done, skipped, started := 0, 0, false
	for _, t := range ts {
		switch t.Status {
		case TaskStatusFailed:
			return StatusFailed
		case TaskStatusSkipped:
			skipped++
			fallthrough
		case TaskStatusDone:
			done++
			started = true
		case TaskStatusPending:
			started = true
		}
	}
	switch {
	case done == len(ts) && skipped > 0:
		return StatusPartial
	case done == len(ts):
		return StatusCompleted
	case started:
		return StatusInProgress
	}
	return StatusAcknowledged
}

// rollUpItems returns s with every item's state recomputed from the tasks.
func (s State) rollUpItems() State {
	if len(s.Items) == 0 {
		return s
	}
	s.Items = cloneItems(s.Items)
	for i := range s.Items {
		s.Items[i].State = s.itemState(s.Items[i])
	}
	return s
}

// ready returns the indexes of the waiting tasks whose dependencies are all
// done, in task order.
func (s State) ready() []int {
	status := make(map[string]TaskStatus, len(s.Tasks))
	for _, t := range s.Tasks {
		status[t.TaskID] = t.Status
	}
	var out []int
	for i, t := range s.Tasks {
		if t.Status == TaskStatusWaiting && s.depsDone(t, status) && !s.blockedByUnwind(t) {
			out = append(out, i)
		}
	}
	return out
}

// depsDone reports whether every dependency of t is done.
func (s State) depsDone(t Task, status map[string]TaskStatus) bool {
	for _, d := range t.DependsOn {
		if !status[d].finished() {
			return false
		}
	}
	return true
}

// outcome says whether the order has finished once the tasks are as in s
// (nothing pending, nothing ready) and, if so, its final status and the
// first failed task.
func (s State) outcome() (final bool, status Status, failed *Task) {
	allDone := true
	for i, t := range s.Tasks {
		if t.Compensates != "" {
			continue
		}
		if t.retired() {
			if t.Status == TaskStatusPending {
				return false, "", nil
			}
			continue
		}
		switch t.Status {
		case TaskStatusPending:
			return false, "", nil
		case TaskStatusFailed:
			if failed == nil {
				failed = &s.Tasks[i]
			}
		}
		allDone = allDone && t.Status.finished()
	}
	if len(s.ready()) > 0 {
		return false, "", nil
	}
	if allDone {
		for _, it := range s.Items {
			if it.State == StatusPartial {
				return true, StatusPartial, nil
			}
		}
		return true, StatusCompleted, nil
	}
	if failed == nil {
		// Waiting tasks with nothing running and nothing failed cannot
		// happen with a valid plan; stay in progress rather than invent an
		// outcome.
		return false, "", nil
	}
	for _, it := range s.Items {
		if it.State == StatusCompleted {
			return true, StatusPartial, failed
		}
	}
	return true, StatusFailed, failed
}
