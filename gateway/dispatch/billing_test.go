package dispatch

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/internal/fakegrains"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
)

func TestBillingCallback(t *testing.T) {
	g := fakegrains.New()
	g.Put("acme", grains.KindOrder, "o-1", map[string]any{"id": "o-1", "status": "inProgress", "tasks": []any{
		map[string]any{"taskId": "o-1/1/provision", "type": "provision", "status": "done"},
		map[string]any{"taskId": "o-1/1/activateBilling", "type": "activateBilling", "status": "pending"},
		map[string]any{"taskId": "o-1/2/activateBilling", "type": "activateBilling", "status": "pending"},
	}})
	g.Put("other", grains.KindOrder, "o-9", map[string]any{"id": "o-9", "status": "inProgress", "tasks": []any{
		map[string]any{"taskId": "o-9/1/activateBilling", "type": "activateBilling", "status": "pending"},
	}})
	d, err := New(Deps{Sender: g, Reader: g})
	if err != nil {
		t.Fatal(err)
	}
	billing := auth.Principal{Tenant: "acme", Subject: "billing-system", Roles: []string{RoleBilling}}
	do := func(p auth.Principal, body string) Reply {
		return d.Do(context.Background(), Request{Principal: p, Kind: grains.KindOrder, Command: CommandBillingCallback,
			Payload: []byte(body), Instance: "/v1/callbacks/billing"})
	}
	problems := []struct {
		name     string
		p        auth.Principal
		body     string
		status   int
		code     grains.Code
		pointers []string
	}{
		{"no billing role", auth.Principal{Tenant: "acme", Roles: []string{"ops", "system"}}, `{"orderId":"o-1","taskId":"1/activateBilling","status":"active","billingRef":"b"}`, 403, grains.CodeForbidden, nil},
		{"not JSON", billing, `[1]`, 400, grains.CodeBadRequest, nil},
		{"unknown field", billing, `{"taskId":"o-1/1/activateBilling","status":"active","billingRef":"b","amount":1}`, 400, grains.CodeBadRequest, nil},
		{"empty", billing, `{}`, 422, grains.CodeValidation, []string{"/status", "/taskId"}},
		{"bad status", billing, `{"taskId":"o-1/1/activateBilling","status":"done"}`, 422, grains.CodeValidation, []string{"/status"}},
		{"active without ref", billing, `{"taskId":"o-1/1/activateBilling","status":"active"}`, 422, grains.CodeValidation, []string{"/billingRef"}},
		{"rejected without reason", billing, `{"taskId":"o-1/1/activateBilling","status":"rejected"}`, 422, grains.CodeValidation, []string{"/reason"}},
		{"bad key", billing, `{"externalKey":"k-1","status":"active","billingRef":"b"}`, 422, grains.CodeValidation, []string{"/externalKey"}},
		{"key and task disagree", billing, `{"taskId":"o-1/2/activateBilling","externalKey":"grainline:acme:o-1/1/activateBilling","status":"active","billingRef":"b"}`, 422, grains.CodeValidation, []string{"/taskId"}},
		{"order and key disagree", billing, `{"orderId":"o-2","externalKey":"grainline:acme:o-1/1/activateBilling","status":"active","billingRef":"b"}`, 422, grains.CodeValidation, []string{"/orderId"}},
		{"not a billing task", billing, `{"taskId":"o-1/1/provision","status":"active","billingRef":"b"}`, 422, grains.CodeValidation, []string{"/taskId"}},
		{"unknown task", billing, `{"orderId":"o-1","taskId":"7/activateBilling","status":"active","billingRef":"b"}`, 404, grains.CodeNotFound, nil},
		{"unknown order", billing, `{"orderId":"o-404","taskId":"1/activateBilling","status":"active","billingRef":"b"}`, 404, grains.CodeNotFound, nil},
		{"another tenant's order", billing, `{"orderId":"o-9","taskId":"1/activateBilling","status":"active","billingRef":"b"}`, 404, grains.CodeNotFound, nil},
		{"another tenant's key", billing, `{"externalKey":"grainline:other:o-9/1/activateBilling","status":"active","billingRef":"b"}`, 404, grains.CodeNotFound, nil},
	}
	for _, tc := range problems {
		rep := do(tc.p, tc.body)
		if rep.Status != tc.status || rep.Code != tc.code || rep.ContentType != "application/problem+json" {
			t.Errorf("%s: %d %s %s, want %d %s", tc.name, rep.Status, rep.Code, rep.Body, tc.status, tc.code)
			continue
		}
		if tc.pointers != nil {
			var pb struct {
				Violations []struct{ Pointer string } `json:"violations"`
			}
			_ = json.Unmarshal(rep.Body, &pb)
			var got []string
			for _, v := range pb.Violations {
				got = append(got, v.Pointer)
			}
			if !slices.Equal(got, tc.pointers) {
				t.Errorf("%s: violations at %v, want %v (%s)", tc.name, got, tc.pointers, rep.Body)
			}
		}
	}
	if n := len(g.Sent()); n != 0 {
		t.Fatalf("refused callbacks sent %d commands: %+v", n, g.Sent())
	}

	// Active, by order and relative task: completeTask as the system, with
	// the reference, under the callback's key. Repeated: replayed.
	body := `{"orderId":"o-1","taskId":"1/activateBilling","status":"active","billingRef":"billing-7"}`
	rep := do(billing, body)
	var ack BillingCallbackReply
	if err := json.Unmarshal(rep.Body, &ack); err != nil || rep.Status != http.StatusOK ||
		ack != (BillingCallbackReply{OrderID: "o-1", TaskID: "o-1/1/activateBilling", TaskStatus: "done", OrderStatus: "inProgress"}) {
		t.Fatalf("active: %d %s", rep.Status, rep.Body)
	}
	sent := g.Sent()[0]
	var cp order.CompleteTask
	_ = json.Unmarshal(sent.Payload, &cp)
	var result map[string]string
	_ = json.Unmarshal(cp.Result, &result)
	if sent.Name != order.CmdCompleteTask || sent.ID != "o-1" || sent.Tenant != "acme" || !slices.Equal(sent.Roles, []string{order.RoleSystem}) ||
		sent.Actor != "billing-system" || sent.IdempotencyKey != BillingCallbackKey("o-1/1/activateBilling", BillingActive) ||
		result["externalRef"] != "billing-7" || result["via"] != "callback" {
		t.Fatalf("sent %+v payload %s", sent, sent.Payload)
	}
	if again := do(billing, body); again.Status != http.StatusOK || !again.Replayed {
		t.Fatalf("repeated callback: %d replayed=%v", again.Status, again.Replayed)
	}

	// Rejected, by external key: failTask, a business rejection.
	rep = do(billing, `{"externalKey":"grainline:acme:o-1/2/activateBilling","status":"rejected","reason":"account closed"}`)
	if rep.Status != http.StatusOK {
		t.Fatalf("rejected: %d %s", rep.Status, rep.Body)
	}
	sent = g.Sent()[len(g.Sent())-1]
	var fp order.FailTask
	_ = json.Unmarshal(sent.Payload, &fp)
	if sent.Name != order.CmdFailTask || fp.TaskID != "o-1/2/activateBilling" || fp.Cause != order.CauseBusinessRejection || fp.Reason == "" {
		t.Fatalf("sent %+v payload %s", sent, sent.Payload)
	}
	// A contradicting callback for a finished task is the grain's conflict.
	if rep := do(billing, `{"taskId":"o-1/2/activateBilling","status":"active","billingRef":"b"}`); rep.Code != grains.CodeInvalidTransition {
		t.Fatalf("active after rejected: %d %s", rep.Status, rep.Body)
	}
}
