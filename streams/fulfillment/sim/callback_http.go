package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// CallbackBody is the JSON body of a billing callback as the gateway's
// POST /v1/callbacks/billing takes it.
type CallbackBody struct {
	OrderID     string `json:"orderId,omitempty"`
	TaskID      string `json:"taskId,omitempty"`
	ExternalKey string `json:"externalKey,omitempty"`
	Status      string `json:"status"`
	BillingRef  string `json:"billingRef,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// HTTPTarget returns where a callback of tenant goes: the endpoint's URL and
// a bearer token of that tenant with the billing role.
type HTTPTarget func(tenant string) (url, token string, err error)

// HTTPSink delivers callbacks as HTTP POSTs (the billing callback endpoint
// of the gateway). A reply other than 2xx is an error wrapping
// ErrCallbackRefused. hc nil uses http.DefaultClient.
func HTTPSink(target HTTPTarget, hc *http.Client) CallbackSink {
	if hc == nil {
		hc = http.DefaultClient
	}
	return func(ctx context.Context, cb Callback) error {
		url, token, err := target(cb.Tenant)
		if err != nil {
			return fmt.Errorf("sim: callback target: %w", err)
		}
		body, _ := json.Marshal(CallbackBody{OrderID: cb.OrderID, TaskID: cb.TaskID, ExternalKey: cb.Key,
			Status: cb.Status, BillingRef: cb.Ref, Reason: cb.Reason}) // strings only
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("sim: callback request: %w", err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Idempotency-Key", "billing-callback:"+cb.Key+":"+cb.Status)
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("sim: callback: %w", err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%w: %s: %s", ErrCallbackRefused, resp.Status, msg)
		}
		return nil
	}
}
