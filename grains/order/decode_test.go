package order_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
)

func TestIDForQuote(t *testing.T) {
	for in, want := range map[string]string{"q-XYZ": "o-XYZ", "q-": "o-", "XYZ": "o-XYZ", "quote-1": "o-quote-1", "": "o-"} {
		if got := order.IDForQuote(in); got != want {
			t.Errorf("IDForQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

const validCreate = `{"quoteId":"q-1","orderId":"o-1","customerId":"c-1","currency":"EUR","lines":[{"lineId":"1","offeringId":"x","quantity":1}],"oneTimeTotal":"1.00","monthlyTotal":"0.00","priceHash":"h","planVersion":1}`

func TestDecodeCommand(t *testing.T) {
	tests := []struct {
		name, cmd, payload string
		code               grains.Code // "" means success
		pointers           []string
	}{
		{"unknown command", "ship", `{}`, grains.CodeBadRequest, nil},
		{"empty name", "", `{}`, grains.CodeBadRequest, nil},
		{"bad JSON", "cancel", `{"reason":`, grains.CodeBadRequest, nil},
		{"not an object", "cancel", `["x"]`, grains.CodeBadRequest, []string{""}},
		{"trailing data", "cancel", `{"reason":"x"} {}`, grains.CodeBadRequest, nil},
		{"wrong type", "failTask", `{"taskId":7,"reason":"x"}`, grains.CodeBadRequest, []string{"/taskId"}},
		{"unknown field", "cancel", `{"reason":"x","force":true}`, grains.CodeBadRequest, []string{"/force"}},
		{"cancel without reason", "cancel", `{}`, grains.CodeValidation, []string{"/reason"}},
		{"cancel, empty payload", "cancel", ``, grains.CodeValidation, []string{"/reason"}},
		{"cancel", "cancel", `{"reason":"x"}`, "", nil},
		{"failTask missing all", "failTask", `{}`, grains.CodeValidation, []string{"/taskId", "/reason"}},
		{"completeTask missing task", "completeTask", `{"result":{}}`, grains.CodeValidation, []string{"/taskId"}},
		{"completeTask result not object", "completeTask", `{"taskId":"t","result":[1]}`, grains.CodeValidation, []string{"/result"}},
		{"completeTask result null", "completeTask", `{"taskId":"t","result":null}`, "", nil},
		{"completeTask", "completeTask", `{"taskId":"t","result":{"a":1}}`, "", nil},
		{"create", "create", validCreate, "", nil},
		{"create tolerates new fields", "create", strings.Replace(validCreate, `{"quoteId"`, `{"revision":3,"quoteId"`, 1), "", nil},
		{"create empty", "create", `{}`, grains.CodeValidation, []string{"/quoteId", "/orderId", "/customerId", "/currency", "/priceHash", "/oneTimeTotal", "/monthlyTotal", "/lines"}},
		{"create bad lines", "create", strings.Replace(validCreate, `{"lineId":"1","offeringId":"x","quantity":1}`, `{"lineId":"1","offeringId":"x","quantity":1},{"quantity":0}`, 1), grains.CodeValidation, []string{"/lines/1/lineId", "/lines/1/offeringId", "/lines/1/quantity"}},
		{"create order id of another quote", "create", strings.Replace(validCreate, `"o-1"`, `"o-2"`, 1), grains.CodeValidation, []string{"/orderId"}},
		{"create quantity as string", "create", strings.Replace(validCreate, `"quantity":1`, `"quantity":"1"`, 1), grains.CodeBadRequest, []string{"/lines/quantity"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := order.DecodeCommand(tt.cmd, []byte(tt.payload))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if cmd.CommandName() != tt.cmd {
					t.Fatalf("decoded %q, want %q", cmd.CommandName(), tt.cmd)
				}
				return
			}
			var de *grains.Error
			if !errors.As(err, &de) || de.Code != tt.code {
				t.Fatalf("err = %v, want code %s", err, tt.code)
			}
			if tt.pointers != nil {
				var got []string
				for _, v := range de.Violations {
					got = append(got, v.Pointer)
				}
				if strings.Join(got, ",") != strings.Join(tt.pointers, ",") {
					t.Fatalf("pointers %q, want %q", got, tt.pointers)
				}
			}
		})
	}
}

func TestDecodeEvent(t *testing.T) {
	if _, err := order.DecodeEvent("OrderShipped", []byte(`{}`)); grains.CodeOf(err) != grains.CodeBadRequest {
		t.Fatalf("unknown event: %v", err)
	}
	if _, err := order.DecodeEvent(order.EvCreated, []byte(`{"orderId":`)); grains.CodeOf(err) != grains.CodeBadRequest {
		t.Fatalf("bad JSON: %v", err)
	}
	ev, err := order.DecodeEvent(order.EvCancelled, []byte(`{"orderId":"o-1","quoteId":"q-1","status":"cancelled","reason":"r","extra":1}`))
	if err != nil {
		t.Fatal(err)
	}
	c, ok := ev.(order.Cancelled)
	if !ok || c.OrderID != "o-1" || c.Status != order.StatusCancelled {
		t.Fatalf("decoded %#v", ev)
	}
}

// TestEveryEventCarriesOrderQuoteAndStatus checks the projection contract:
// each order event payload has orderId, quoteId and status.
func TestEveryEventCarriesOrderQuoteAndStatus(t *testing.T) {
	events := []grains.Event{order.Created{}, order.TaskRequested{}, order.TaskCompleted{}, order.TaskFailed{},
		order.Completed{}, order.Failed{}, order.Cancelled{}, order.TaskSkipped{}, order.TaskReconciled{}, order.TaskAwaiting{},
		order.FalloutOpened{}, order.FalloutAssigned{}, order.FalloutResolved{}, order.CancellationRequested{},
		order.JeopardyRaised{}}
	for _, ev := range events {
		b, _ := json.Marshal(ev)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"orderId", "quoteId", "status"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s lacks %s", ev.EventName(), k)
			}
		}
		if _, err := order.DecodeEvent(ev.EventName(), b); err != nil {
			t.Errorf("%s does not decode: %v", ev.EventName(), err)
		}
	}
	b, _ := json.Marshal(order.TaskRequested{})
	want := []string{"orderId", "quoteId", "status", "taskId", "taskType", "attempt", "lines"}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if len(m) != len(want) {
		t.Errorf("FulfillmentTaskRequested has fields %v, want exactly %v", m, want)
	}
}
