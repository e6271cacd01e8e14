package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/grainline/grainline/gateway/dispatch"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/order"
)

// route is one endpoint. The table below is the single list of endpoints:
// the mux registers it and a test compares it with openapi.yaml.
type route struct {
	Method string
	Path   string // Go ServeMux / OpenAPI path template
	Public bool   // no token needed
	serve  func(*server, http.ResponseWriter, *http.Request)
}

func routes() []route {
	cmd := func(kind grains.Kind, name string) func(*server, http.ResponseWriter, *http.Request) {
		return func(s *server, w http.ResponseWriter, r *http.Request) { s.command(w, r, kind, name) }
	}
	return []route{
		{Method: "POST", Path: "/v1/quotes", serve: cmd(grains.KindQuote, dispatch.CommandCreate)},
		{Method: "GET", Path: "/v1/quotes/{id}", serve: getAggregate(grains.KindQuote)},
		{Method: "POST", Path: "/v1/quotes/{id}/lines", serve: cmd(grains.KindQuote, "addLine")},
		{Method: "DELETE", Path: "/v1/quotes/{id}/lines/{lineId}", serve: (*server).removeLine},
		{Method: "POST", Path: "/v1/quotes/{id}/price", serve: cmd(grains.KindQuote, "price")},
		{Method: "POST", Path: "/v1/quotes/{id}/price-preview", serve: cmd(grains.KindQuote, dispatch.CommandPricePreview)},
		{Method: "POST", Path: "/v1/quotes/{id}/lines/{lineId}/discount", serve: lineCommand("setLineDiscount")},
		{Method: "POST", Path: "/v1/quotes/{id}/lines/{lineId}/characteristics", serve: lineCommand("setCharacteristics")},
		{Method: "POST", Path: "/v1/quotes/{id}/discount", serve: cmd(grains.KindQuote, "setQuoteDiscount")},
		{Method: "DELETE", Path: "/v1/quotes/{id}/discount", serve: cmd(grains.KindQuote, "clearQuoteDiscount")},
		{Method: "POST", Path: "/v1/quotes/{id}/submit", serve: cmd(grains.KindQuote, "submit")},
		{Method: "POST", Path: "/v1/quotes/{id}/approve", serve: cmd(grains.KindQuote, "approve")},
		{Method: "POST", Path: "/v1/quotes/{id}/reject", serve: cmd(grains.KindQuote, "reject")},
		{Method: "POST", Path: "/v1/quotes/{id}/accept", serve: cmd(grains.KindQuote, "accept")},
		{Method: "POST", Path: "/v1/quotes/{id}/cancel", serve: cmd(grains.KindQuote, "cancel")},
		{Method: "POST", Path: "/v1/quotes/{id}/attach-document", serve: cmd(grains.KindQuote, "attachDocument")},
		{Method: "GET", Path: "/v1/quotes/{id}/revisions/{n}", serve: (*server).quoteRevision},
		{Method: "POST", Path: "/v1/quotes/{id}/document", serve: cmd(grains.KindQuote, dispatch.CommandRenderDocument)},
		{Method: "GET", Path: "/v1/quotes/{id}/document", serve: (*server).quoteDocument},
		{Method: "GET", Path: "/v1/artifacts/{sha256}", serve: (*server).artifact},
		{Method: "GET", Path: "/v1/orders", serve: (*server).listOrders},
		{Method: "GET", Path: "/v1/orders/{id}", serve: getAggregate(grains.KindOrder)},
		{Method: "POST", Path: "/v1/orders/{id}/cancel", serve: cmd(grains.KindOrder, "cancel")},
		{Method: "POST", Path: "/v1/orders/{id}/amend", serve: cmd(grains.KindOrder, order.CmdAmend)},
		{Method: "GET", Path: "/v1/orders/{id}/fallout", serve: aggregateRead(grains.KindOrder, dispatch.CommandFallout)},
		{Method: "GET", Path: "/v1/orders/{id}/milestones", serve: aggregateRead(grains.KindOrder, dispatch.CommandMilestones)},
		{Method: "POST", Path: "/v1/orders/{id}/fallout/{caseId}/assign", serve: (*server).assignFallout},
		{Method: "POST", Path: "/v1/orders/{id}/tasks/{taskId}/retry", serve: taskCmd(order.CmdRetryTask)},
		{Method: "POST", Path: "/v1/orders/{id}/tasks/{taskId}/complete", serve: taskCmd(order.CmdCompleteTaskManually)},
		{Method: "POST", Path: "/v1/orders/{id}/tasks/{taskId}/skip", serve: taskCmd(order.CmdSkipTask)},
		{Method: "POST", Path: "/v1/orders/{id}/tasks/{taskId}/reconcile", serve: taskCmd(order.CmdReconcileTask)},
		{Method: "POST", Path: "/v1/cancelProductOrder", serve: cmd(dispatch.KindCancelProductOrder, dispatch.CommandCreate)},
		{Method: "GET", Path: "/v1/cancelProductOrder/{id}", serve: getAggregate(dispatch.KindCancelProductOrder)},
		{Method: "GET", Path: "/v1/orders/{id}/tasks", serve: (*server).orderTasks},
		{Method: "POST", Path: "/v1/callbacks/billing", serve: cmd(grains.KindOrder, dispatch.CommandBillingCallback)},
		{Method: "GET", Path: "/v1/catalog", serve: (*server).catalog},
		{Method: "GET", Path: "/v1/catalog/versions", serve: catalogCmd(dispatch.CatalogVersions)},
		{Method: "POST", Path: "/v1/catalog/versions", serve: catalogCmd(dispatch.CatalogCreateDraft)},
		{Method: "GET", Path: "/v1/catalog/versions/{version}", serve: catalogCmd(dispatch.CatalogVersion)},
		{Method: "PUT", Path: "/v1/catalog/versions/{version}", serve: catalogCmd(dispatch.CatalogUpdateDraft)},
		{Method: "POST", Path: "/v1/catalog/versions/{version}/validate", serve: catalogCmd(dispatch.CatalogValidate)},
		{Method: "POST", Path: "/v1/catalog/versions/{version}/publish", serve: catalogCmd(dispatch.CatalogPublish)},
		{Method: "POST", Path: "/v1/catalog/versions/{version}/activate", serve: catalogCmd(dispatch.CatalogActivate)},
		{Method: "POST", Path: "/v1/hub", serve: hubCmd(dispatch.CommandCreate)},
		{Method: "GET", Path: "/v1/hub", serve: hubCmd(dispatch.CommandList)},
		{Method: "GET", Path: "/v1/hub/{id}", serve: hubCmd(dispatch.CommandGet)},
		{Method: "DELETE", Path: "/v1/hub/{id}", serve: hubCmd(dispatch.CommandDelete)},
		{Method: "GET", Path: "/v1/quotes/{id}/evidence", serve: aggregateRead(grains.KindQuote, dispatch.CommandEvidence)},
		{Method: "GET", Path: "/v1/approval-policies", serve: policy(dispatch.CommandList)},
		{Method: "GET", Path: "/v1/approval-policies/{version}", serve: policy(dispatch.CommandGet)},
		{Method: "POST", Path: "/v1/approval-policies", serve: policy(dispatch.CommandPublish)},
		{Method: "GET", Path: "/livez", Public: true, serve: (*server).livez},
		{Method: "GET", Path: "/readyz", Public: true, serve: (*server).readyz},
		{Method: "GET", Path: "/metrics", Public: true, serve: (*server).serveMetrics},
		{Method: "GET", Path: "/openapi.yaml", Public: true, serve: (*server).openapi},
	}
}

// quoteRevision reads revision n of a quote (dispatch.CommandRevision).
func (s *server) quoteRevision(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 || strconv.Itoa(n) != r.PathValue("n") {
		s.fail(w, r, grains.Errorf(grains.CodeBadRequest, "the revision in the path must be a number from 1"))
		return
	}
	s.do(w, r, dispatch.Request{
		Principal:     info(r).principal,
		Kind:          grains.KindQuote,
		ID:            r.PathValue("id"),
		Command:       dispatch.CommandRevision,
		Payload:       []byte(`{"revision":` + strconv.Itoa(n) + `}`),
		CorrelationID: correlation(r),
		Instance:      r.URL.Path,
	})
}

// taskCmd sends an order's manual recovery command with the path's task
// (its id URL-escaped, e.g. o-1%2F3%2Fprovision, or relative to the order,
// 3%2Fprovision) merged into the body.
func taskCmd(name string) func(*server, http.ResponseWriter, *http.Request) {
	return func(s *server, w http.ResponseWriter, r *http.Request) {
		s.mergedCommand(w, r, name, func(orderID string, body []byte) ([]byte, error) {
			return dispatch.TaskPayload(orderID, r.PathValue("taskId"), body)
		})
	}
}

// assignFallout sends assignFallout with the path's caseId merged into the
// body.
func (s *server) assignFallout(w http.ResponseWriter, r *http.Request) {
	s.mergedCommand(w, r, order.CmdAssignFallout, func(_ string, body []byte) ([]byte, error) {
		return dispatch.CasePayload(r.PathValue("caseId"), body)
	})
}

// mergedCommand sends the order command name with the body merge makes.
func (s *server) mergedCommand(w http.ResponseWriter, r *http.Request, name string, merge func(orderID string, body []byte) ([]byte, error)) {
	req, err := s.request(r, grains.KindOrder, r.PathValue("id"), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Payload, err = merge(req.ID, body); err != nil {
		s.fail(w, r, err)
		return
	}
	s.do(w, r, req)
}

// aggregateRead serves a read of the path's aggregate of kind that is not
// its state: an order's fallout cases or milestones, a quote's evidence.
func aggregateRead(kind grains.Kind, name string) func(*server, http.ResponseWriter, *http.Request) {
	return func(s *server, w http.ResponseWriter, r *http.Request) {
		s.do(w, r, dispatch.Request{
			Principal:     info(r).principal,
			Kind:          kind,
			ID:            r.PathValue("id"),
			Command:       name,
			CorrelationID: correlation(r),
			Instance:      r.URL.Path,
		})
	}
}

// catalogCmd serves a catalog command; the path's {version}, if any, is the
// request's id.
func catalogCmd(name string) func(*server, http.ResponseWriter, *http.Request) {
	return func(s *server, w http.ResponseWriter, r *http.Request) {
		req, err := s.request(r, dispatch.KindCatalog, r.PathValue("version"), name)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if r.Method != http.MethodGet {
			if req.Payload, err = s.readBody(w, r); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		s.do(w, r, req)
	}
}

// lineCommand sends the quote command name with the path's lineId merged
// into the body; a body lineId that differs from the path's is a bad
// request.
func lineCommand(name string) func(*server, http.ResponseWriter, *http.Request) {
	return func(s *server, w http.ResponseWriter, r *http.Request) { s.lineCommand(w, r, name) }
}

func (s *server) lineCommand(w http.ResponseWriter, r *http.Request, name string) {
	req, err := s.request(r, grains.KindQuote, r.PathValue("id"), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	lineID := r.PathValue("lineId")
	if err := dispatch.ValidID(lineID); err != nil {
		s.fail(w, r, err)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		s.fail(w, r, grains.Errorf(grains.CodeBadRequest, "the body must be one JSON object"))
		return
	}
	if raw, ok := m["lineId"]; ok {
		var inBody string
		if json.Unmarshal(raw, &inBody) != nil || inBody != lineID {
			s.fail(w, r, grains.Errorf(grains.CodeBadRequest, "lineId in the body must match the path"))
			return
		}
	}
	m["lineId"], _ = json.Marshal(lineID)
	if req.Payload, err = json.Marshal(m); err != nil {
		s.fail(w, r, err)
		return
	}
	s.do(w, r, req)
}

// quoteDocument serves the PDF attached to the quote's current revision.
func (s *server) quoteDocument(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	s.replyBytes(w, r, s.disp.DocumentBytes(ctx, info(r).principal, r.PathValue("id"), r.URL.Path))
}

// artifact serves one artifact of the caller's tenant.
func (s *server) artifact(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	s.replyBytes(w, r, s.disp.Artifact(ctx, info(r).principal, r.PathValue("sha256"), r.URL.Path))
}

// replyBytes writes an artifact reply, or 304 when If-None-Match names its
// ETag (an artifact never changes).
func (s *server) replyBytes(w http.ResponseWriter, r *http.Request, rep dispatch.Reply) {
	if rep.Status == http.StatusOK && rep.ETag != "" && etagMatches(r.Header.Get("If-None-Match"), rep.ETag) {
		h := w.Header()
		h.Set("ETag", rep.ETag)
		for k, v := range rep.Headers {
			h.Set(k, v)
		}
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.reply(w, r, rep)
}

// etagMatches reports whether an If-None-Match value lists etag (or is *).
func etagMatches(header, etag string) bool {
	for _, v := range strings.Split(header, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == "*" || v == etag {
			return true
		}
	}
	return false
}

// hubCmd serves one command on the event hub's subscriptions.
func hubCmd(name string) func(*server, http.ResponseWriter, *http.Request) {
	return func(s *server, w http.ResponseWriter, r *http.Request) {
		req := dispatch.Request{
			Principal:     info(r).principal,
			Kind:          dispatch.KindHub,
			ID:            r.PathValue("id"),
			Command:       name,
			CorrelationID: correlation(r),
			Instance:      r.URL.Path,
		}
		if name == dispatch.CommandCreate {
			key, err := dispatch.ParseIdempotencyKey(r.Header.Get(HeaderIdempotencyKey))
			if err != nil {
				s.fail(w, r, err)
				return
			}
			req.IdempotencyKey = key
			if req.Payload, err = s.readBody(w, r); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		s.do(w, r, req)
	}
}

// policy serves the approval policy endpoints: list, get {version} and
// publish (with the request body).
func policy(command string) func(*server, http.ResponseWriter, *http.Request) {
	return func(s *server, w http.ResponseWriter, r *http.Request) {
		req := dispatch.Request{
			Principal:     info(r).principal,
			Kind:          dispatch.KindApprovalPolicy,
			ID:            r.PathValue("version"),
			Command:       command,
			CorrelationID: correlation(r),
			Instance:      r.URL.Path,
		}
		if command == dispatch.CommandPublish {
			key, err := dispatch.ParseIdempotencyKey(r.Header.Get(HeaderIdempotencyKey))
			if err != nil {
				s.fail(w, r, err)
				return
			}
			req.IdempotencyKey = key
			if req.Payload, err = s.readBody(w, r); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		s.do(w, r, req)
	}
}
