package order

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/grainline/grainline/grains"
)

// Command wire names.
const (
	CmdCreate       = "create"
	CmdCompleteTask = "completeTask"
	CmdFailTask     = "failTask"
	CmdCancel       = "cancel"
)

// Create creates the order of an accepted quote. Its payload is exactly the
// payload of the quote's QuoteAccepted event. PlanVersion, optional, pins a
// decomposition plan version; absent or 0 means the plan catalog's default.
type Create struct {
	QuoteID      string        `json:"quoteId"`
	OrderID      string        `json:"orderId"`
	CustomerID   string        `json:"customerId"`
	CustomerName string        `json:"customerName"`
	Currency     string        `json:"currency"`
	Lines        []grains.Line `json:"lines"`
	OneTimeTotal string        `json:"oneTimeTotal"`
	MonthlyTotal string        `json:"monthlyTotal"`
	PriceHash    string        `json:"priceHash"`
	AcceptedBy   string        `json:"acceptedBy"`
	AcceptedAt   time.Time     `json:"acceptedAt"`
	PlanVersion  int           `json:"planVersion,omitempty"`
	// Channel, Revision and DocumentSHA256 are the rest of the quote's
	// acceptance evidence: how the acceptance reached us, which quote
	// revision was accepted and the SHA-256 of the document the customer
	// accepted. Absent in quotes accepted before they existed.
	Channel        string `json:"channel,omitempty"`
	Revision       int    `json:"revision,omitempty"`
	DocumentSHA256 string `json:"documentSha256,omitempty"`
}

// CompleteTask reports a task done, with the worker's result (a JSON object).
type CompleteTask struct {
	TaskID string          `json:"taskId"`
	Result json.RawMessage `json:"result,omitempty"`
}

// FailTask reports a task failed for good.
type FailTask struct {
	TaskID string `json:"taskId"`
	Reason string `json:"reason"`
}

// Cancel cancels an order that has not finished.
type Cancel struct {
	Reason string `json:"reason"`
}

// CommandName implements grains.Command.
func (Create) CommandName() string { return CmdCreate }

// CommandName implements grains.Command.
func (CompleteTask) CommandName() string { return CmdCompleteTask }

// CommandName implements grains.Command.
func (FailTask) CommandName() string { return CmdFailTask }

// CommandName implements grains.Command.
func (Cancel) CommandName() string { return CmdCancel }

// DecodeCommand decodes a wire command. Unknown names and malformed JSON are
// CodeBadRequest; missing or invalid fields are CodeValidation with one
// violation per field. create tolerates unknown fields (it is fed from the
// QuoteAccepted event, whose schema may grow); the others reject them.
func DecodeCommand(name string, payload []byte) (grains.Command, error) {
	switch name {
	case CmdCreate:
		var c Create
		if err := grains.DecodePayload(name, payload, &c, false); err != nil {
			return nil, err
		}
		return c, c.validate()
	case CmdCompleteTask:
		var c CompleteTask
		if err := grains.DecodePayload(name, payload, &c, true); err != nil {
			return nil, err
		}
		var v grains.Violations
		if c.TaskID == "" {
			v.Add("/taskId", "required", "taskId is required")
		}
		if len(c.Result) > 0 && string(c.Result) != "null" && c.Result[0] != '{' {
			v.Add("/result", "type", "result must be a JSON object")
		}
		return c, v.Err(name)
	case CmdFailTask:
		var c FailTask
		if err := grains.DecodePayload(name, payload, &c, true); err != nil {
			return nil, err
		}
		var v grains.Violations
		if c.TaskID == "" {
			v.Add("/taskId", "required", "taskId is required")
		}
		if c.Reason == "" {
			v.Add("/reason", "required", "reason is required")
		}
		return c, v.Err(name)
	case CmdCancel:
		var c Cancel
		if err := grains.DecodePayload(name, payload, &c, true); err != nil {
			return nil, err
		}
		var v grains.Violations
		if c.Reason == "" {
			v.Add("/reason", "required", "reason is required")
		}
		return c, v.Err(name)
	}
	return nil, grains.Errorf(grains.CodeBadRequest, "unknown order command %q", name)
}

func (c Create) validate() error {
	var v grains.Violations
	if c.QuoteID == "" {
		v.Add("/quoteId", "required", "quoteId is required")
	}
	if c.OrderID == "" {
		v.Add("/orderId", "required", "orderId is required")
	} else if c.QuoteID != "" && c.OrderID != IDForQuote(c.QuoteID) {
		v.Add("/orderId", "mismatch", "orderId must be "+IDForQuote(c.QuoteID)+" for quote "+c.QuoteID)
	}
	if c.CustomerID == "" {
		v.Add("/customerId", "required", "customerId is required")
	}
	if c.Currency == "" {
		v.Add("/currency", "required", "currency is required")
	}
	if c.PriceHash == "" {
		v.Add("/priceHash", "required", "priceHash is required")
	}
	if c.OneTimeTotal == "" {
		v.Add("/oneTimeTotal", "required", "oneTimeTotal is required")
	}
	if c.MonthlyTotal == "" {
		v.Add("/monthlyTotal", "required", "monthlyTotal is required")
	}
	if len(c.Lines) == 0 {
		v.Add("/lines", "required", "an order needs at least one line")
	}
	if c.PlanVersion < 0 {
		v.Add("/planVersion", "min", "planVersion must be positive, or absent for the default")
	}
	seen := map[string]bool{}
	for i, l := range c.Lines {
		at := "/lines/" + strconv.Itoa(i)
		if l.LineID == "" {
			v.Add(at+"/lineId", "required", "lineId is required")
		} else if seen[l.LineID] {
			v.Add(at+"/lineId", "duplicate", "lineId "+l.LineID+" appears twice")
		}
		seen[l.LineID] = true
		if l.OfferingID == "" {
			v.Add(at+"/offeringId", "required", "offeringId is required")
		}
		if l.Quantity < 1 {
			v.Add(at+"/quantity", "min", "quantity must be at least 1")
		}
	}
	return v.Err(CmdCreate)
}
