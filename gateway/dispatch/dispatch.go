// Package dispatch is what the gateway's front doors (HTTP and NATS) share:
// it turns an authenticated request (principal, kind, id, command, payload,
// headers) into one call.Command or read, and shapes the outcome, success or
// problem, into a Reply that both doors render the same way.
package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/problem"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/quote"
)

// Orders finds the order an accepted quote became. It reads a read model and
// must be safe for concurrent use. ok is false while no order exists.
type Orders interface {
	OrderForQuote(ctx context.Context, tenant grains.TenantID, quoteID string) (orderID string, ok bool, err error)
}

// Catalog serves a tenant's published catalog as JSON. It must be safe for
// concurrent use.
type Catalog interface {
	CatalogJSON(ctx context.Context, tenant grains.TenantID) ([]byte, error)
}

// KindCatalog addresses the catalog in Request.Kind: the active version, and
// the versions' lifecycle (catalog.go).
const KindCatalog grains.Kind = "catalog"

// Hub manages a tenant's event subscriptions (webhooks). Errors are
// *grains.Error where they concern the request. It must be safe for
// concurrent use.
type Hub interface {
	// Subscribe creates a subscription from a JSON body and returns its
	// JSON (with the signing secret, shown this once) and id. With an
	// idempotency key (already in the client namespace, ClientKey) a
	// repeat of the same body by the same actor answers the first reply,
	// secret included, with replayed set and creates nothing; the key used
	// before for another request is CodeIdempotencyKeyReused.
	Subscribe(ctx context.Context, tenant grains.TenantID, actor, idempotencyKey string, body []byte) (doc []byte, id string, replayed bool, err error)
	// SubscriptionsJSON returns {"items": [...]}, without secrets.
	SubscriptionsJSON(ctx context.Context, tenant grains.TenantID) ([]byte, error)
	// SubscriptionJSON returns one subscription with its delivery state.
	SubscriptionJSON(ctx context.Context, tenant grains.TenantID, id string) ([]byte, error)
	// Unsubscribe deletes a subscription.
	Unsubscribe(ctx context.Context, tenant grains.TenantID, actor, id string) error
}

// KindHub addresses event subscriptions in Request.Kind (not a grain).
const KindHub grains.Kind = "hub"

// The commands on KindHub besides CommandGet.
const (
	CommandList   = "list"
	CommandDelete = "delete"
)

// RoleIntegration is the role that manages event subscriptions: a
// subscription sends the tenant's order data to an outside URL, so it is
// not given to every sales or ops user.
const RoleIntegration = "integration"

// CommandGet is the read command, valid for every kind.
const CommandGet = "get"

// CommandCreate creates a quote; the gateway assigns its id.
const CommandCreate = "create"

// Commands lists the commands the front doors accept for kind besides
// "get", by the grains' wire names; nil for an unknown kind.
func Commands(kind grains.Kind) []string {
	switch kind {
	case grains.KindQuote:
		return []string{CommandCreate, "addLine", "removeLine", "price", "submit", "approve", "reject", "accept", "cancel",
			"setLineDiscount", "setQuoteDiscount", "clearQuoteDiscount", "attachDocument", "setCharacteristics", CommandPricePreview, CommandRevision,
			CommandRenderDocument, CommandDocument}
	case grains.KindOrder:
		return orderCommands
	case KindCancelProductOrder:
		return []string{CommandCreate}
	}
	return nil
}

func knownCommand(kind grains.Kind, name string) bool {
	for _, c := range Commands(kind) {
		if c == name {
			return true
		}
	}
	return false
}

// Authenticate verifies the value of an Authorization header
// ("Bearer <jwt>"). Failures are CodeUnauthenticated.
func Authenticate(v *auth.Verifier, header string) (auth.Principal, error) {
	scheme, token, found := strings.Cut(strings.TrimSpace(header), " ")
	if header == "" || !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return auth.Principal{}, grains.Errorf(grains.CodeUnauthenticated, "a bearer token is required (Authorization: Bearer <jwt>)")
	}
	p, err := v.Verify(strings.TrimSpace(token))
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		return auth.Principal{}, grains.Errorf(grains.CodeUnauthenticated, "the token has expired")
	case errors.Is(err, auth.ErrMissingTenant):
		return auth.Principal{}, grains.Errorf(grains.CodeUnauthenticated, "the token names no valid tenant")
	case err != nil:
		return auth.Principal{}, grains.Errorf(grains.CodeUnauthenticated, "the token is not valid")
	}
	return p, nil
}

// Deps are the collaborators of a Dispatcher.
type Deps struct {
	Sender call.Sender // required
	Reader call.Reader // required
	// Orders links accepted quotes to their order; nil leaves quotes
	// without an "order" link and lists no orders by quote.
	Orders Orders
	// Catalog serves catalog.get; nil answers it with "unavailable".
	Catalog Catalog
	// Attempts adds the worker's attempt records to order tasks; nil shows
	// tasks without them.
	Attempts Attempts
	// Hub serves the hub commands; nil answers them with "unavailable".
	Hub Hub
	// Policies serves the approvalPolicy commands; nil answers them with
	// "unavailable".
	Policies Policies
	// Evidence serves quote.evidence; nil answers it with "unavailable".
	Evidence Evidence
	// NewID assigns the id of a created quote without idempotency key.
	// Default NewQuoteID.
	NewID func() string
	// Artifacts stores rendered documents and serves artifacts; nil
	// answers the document and artifact requests with "unavailable".
	Artifacts Artifacts
	// Seller names a tenant on its documents; nil, or "", uses the tenant
	// id.
	Seller func(grains.TenantID) string
}

// Dispatcher carries requests to grains. It is safe for concurrent use.
type Dispatcher struct {
	deps Deps
}

// New returns a Dispatcher.
func New(deps Deps) (*Dispatcher, error) {
	if deps.Sender == nil || deps.Reader == nil {
		return nil, errors.New("dispatch: Sender and Reader are required")
	}
	if deps.NewID == nil {
		deps.NewID = NewQuoteID
	}
	return &Dispatcher{deps: deps}, nil
}

// Request is one authenticated request from either front door.
type Request struct {
	Principal      auth.Principal
	Kind           grains.Kind
	ID             string // empty for create
	Command        string // "get", "create", or a wire name from Commands
	Payload        []byte // a JSON object; nil means {}
	IdempotencyKey string // already validated (ParseIdempotencyKey)
	IfMatch        int64  // already validated (ParseIfMatch)
	CorrelationID  string
	Instance       string // the request path or subject, for problems
}

// Reply is the outcome of a request, ready to render.
type Reply struct {
	Status      int
	ContentType string // "application/json" or problem.ContentType
	Body        []byte
	ID          string // the aggregate id, when there is one
	Location    string // set for a created quote
	ETag        string // quoted revision, when there is one
	Replayed    bool   // the grain answered from its idempotency record
	Code        grains.Code
	// Headers are further response headers (e.g. Repr-Digest of an
	// artifact), set on HTTP and NATS replies alike.
	Headers map[string]string
	// Err is the error behind a problem reply, for the request log; it is
	// never shown to the client.
	Err error
}

// Fail renders err as a problem reply.
func Fail(err error, instance string) Reply {
	p := problem.From(err).WithInstance(instance)
	return Reply{Status: p.Status, ContentType: problem.ContentType, Body: p.JSON(), Code: p.Code, Err: err}
}

// Do executes req.
func (d *Dispatcher) Do(ctx context.Context, req Request) Reply {
	if req.Kind == KindCatalog {
		return d.catalogDo(ctx, req)
	}
	if req.Kind == KindCancelProductOrder {
		return d.cancelProductOrder(ctx, req)
	}
	if req.Kind == KindHub {
		return d.hub(ctx, req)
	}
	if req.Kind == KindApprovalPolicy {
		return d.policy(ctx, req)
	}
	if req.Kind == grains.KindQuote && req.Command == CommandEvidence {
		return d.evidence(ctx, req)
	}
	if req.Command == CommandGet {
		return d.get(ctx, req)
	}
	if req.Kind == grains.KindOrder && req.Command == CommandBillingCallback {
		return d.billingCallback(ctx, req)
	}
	if req.Kind == grains.KindOrder && req.Command == CommandFallout {
		return d.fallout(ctx, req)
	}
	if req.Kind == grains.KindOrder && req.Command == CommandMilestones {
		return d.milestones(ctx, req)
	}
	if req.Kind == grains.KindQuote && req.Command == CommandPricePreview {
		return d.preview(ctx, req)
	}
	if req.Kind == grains.KindQuote && req.Command == CommandRevision {
		return d.revision(ctx, req)
	}
	if req.Kind == grains.KindQuote && req.Command == CommandRenderDocument {
		return d.renderDocument(ctx, req)
	}
	if req.Kind == grains.KindQuote && req.Command == CommandDocument {
		return d.document(ctx, req)
	}
	if !knownCommand(req.Kind, req.Command) {
		return Fail(grains.Errorf(grains.CodeNotFound, "no command %q on %q", req.Command, req.Kind), req.Instance)
	}
	payload, err := ObjectPayload(req.Payload)
	if err != nil {
		return Fail(err, req.Instance)
	}
	if req.Kind == grains.KindQuote && req.Command == quote.CmdAttachDocument {
		if err := d.checkAttached(ctx, req.Principal, payload); err != nil {
			return Fail(err, req.Instance)
		}
	}
	id := req.ID
	status := http.StatusOK
	if req.Command == CommandCreate {
		if id != "" {
			return Fail(grains.Errorf(grains.CodeBadRequest, "create assigns the id; do not send one"), req.Instance)
		}
		if req.IdempotencyKey != "" {
			id = DeriveQuoteID(req.Principal.Tenant, req.IdempotencyKey)
		} else {
			id = d.deps.NewID()
		}
		status = http.StatusCreated
	} else if err := ValidID(id); err != nil {
		return Fail(err, req.Instance)
	}
	res, err := d.deps.Sender.Send(ctx, call.Command{
		Tenant:         req.Principal.Tenant,
		Kind:           req.Kind,
		ID:             id,
		Name:           req.Command,
		Payload:        payload,
		IdempotencyKey: ClientKey(req.IdempotencyKey),
		IfMatch:        req.IfMatch,
		Actor:          req.Principal.Subject,
		Roles:          req.Principal.Roles,
		CorrelationID:  req.CorrelationID,
	})
	if err != nil {
		return Fail(err, req.Instance)
	}
	r := ok(status, res.State, id, res.Revision)
	r.Replayed = res.Replayed
	if req.Command == CommandCreate {
		r.Location = Href(req.Kind, id)
	}
	return r
}

func (d *Dispatcher) get(ctx context.Context, req Request) Reply {
	if Commands(req.Kind) == nil {
		return Fail(grains.Errorf(grains.CodeNotFound, "no kind %q", req.Kind), req.Instance)
	}
	if err := ValidID(req.ID); err != nil {
		return Fail(err, req.Instance)
	}
	res, err := d.deps.Reader.Get(ctx, req.Principal.Tenant, req.Kind, req.ID)
	if err != nil {
		return Fail(err, req.Instance)
	}
	body := res.State
	if req.Kind == grains.KindQuote {
		body = d.linkOrder(ctx, req.Principal.Tenant, req.ID, body)
	}
	return ok(http.StatusOK, body, req.ID, res.Revision)
}

// linkOrder adds "order": {"id", "href"} to an accepted quote's state once
// its order exists. A read-model failure leaves the quote unlinked: the
// quote itself is still correct.
func (d *Dispatcher) linkOrder(ctx context.Context, tenant grains.TenantID, quoteID string, state []byte) []byte {
	if d.deps.Orders == nil {
		return state
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(state, &m); err != nil {
		return state
	}
	var status string
	if err := json.Unmarshal(m["status"], &status); err != nil || status != "accepted" {
		return state
	}
	orderID, found, err := d.deps.Orders.OrderForQuote(ctx, tenant, quoteID)
	if err != nil || !found {
		return state
	}
	link, _ := json.Marshal(struct {
		ID   string `json:"id"`
		Href string `json:"href"`
	}{orderID, Href(grains.KindOrder, orderID)})
	m["order"] = link
	out, err := json.Marshal(m)
	if err != nil {
		return state
	}
	return out
}

// OrdersForQuote answers {"items": [...]} with the order the quote became,
// if any.
func (d *Dispatcher) OrdersForQuote(ctx context.Context, p auth.Principal, quoteID, instance string) Reply {
	if err := ValidID(quoteID); err != nil {
		return Fail(grains.Errorf(grains.CodeBadRequest, "quoteId: %s", err.(*grains.Error).Message), instance)
	}
	items := []json.RawMessage{}
	if d.deps.Orders != nil {
		orderID, found, err := d.deps.Orders.OrderForQuote(ctx, p.Tenant, quoteID)
		if err != nil {
			return Fail(err, instance)
		}
		if found {
			res, err := d.deps.Reader.Get(ctx, p.Tenant, grains.KindOrder, orderID)
			switch {
			case grains.CodeOf(err) == grains.CodeNotFound:
			case err != nil:
				return Fail(err, instance)
			default:
				items = append(items, json.RawMessage(res.State))
			}
		}
	}
	body, err := json.Marshal(struct {
		Items []json.RawMessage `json:"items"`
	}{items})
	if err != nil {
		return Fail(err, instance)
	}
	return ok(http.StatusOK, body, "", 0)
}

func (d *Dispatcher) catalog(ctx context.Context, req Request) Reply {
	if d.deps.Catalog == nil {
		return Fail(grains.Errorf(grains.CodeUnavailable, "no catalog is configured"), req.Instance)
	}
	body, err := d.deps.Catalog.CatalogJSON(ctx, req.Principal.Tenant)
	if err != nil {
		return Fail(err, req.Instance)
	}
	return ok(http.StatusOK, body, "", 0)
}

// hub serves the hub commands: create (201), list, get, delete (204).
func (d *Dispatcher) hub(ctx context.Context, req Request) Reply {
	switch req.Command {
	case CommandCreate, CommandList, CommandGet, CommandDelete:
	default:
		return Fail(grains.Errorf(grains.CodeNotFound, "no command %q on the hub", req.Command), req.Instance)
	}
	if !slices.Contains(req.Principal.Roles, RoleIntegration) {
		return Fail(grains.Errorf(grains.CodeForbidden, "managing event subscriptions needs role %q", RoleIntegration), req.Instance)
	}
	if d.deps.Hub == nil {
		return Fail(grains.Errorf(grains.CodeUnavailable, "the event hub is not configured"), req.Instance)
	}
	tenant := req.Principal.Tenant
	if req.Command != CommandCreate && req.Command != CommandList {
		if err := ValidID(req.ID); err != nil {
			return Fail(err, req.Instance)
		}
	}
	switch req.Command {
	case CommandCreate:
		payload, err := ObjectPayload(req.Payload)
		if err != nil {
			return Fail(err, req.Instance)
		}
		body, id, replayed, err := d.deps.Hub.Subscribe(ctx, tenant, req.Principal.Subject, ClientKey(req.IdempotencyKey), payload)
		if err != nil {
			return Fail(err, req.Instance)
		}
		r := ok(http.StatusCreated, body, id, 0)
		r.Location = "/v1/hub/" + id
		r.Replayed = replayed
		return r
	case CommandList:
		body, err := d.deps.Hub.SubscriptionsJSON(ctx, tenant)
		if err != nil {
			return Fail(err, req.Instance)
		}
		return ok(http.StatusOK, body, "", 0)
	case CommandGet:
		body, err := d.deps.Hub.SubscriptionJSON(ctx, tenant, req.ID)
		if err != nil {
			return Fail(err, req.Instance)
		}
		return ok(http.StatusOK, body, req.ID, 0)
	default: // CommandDelete
		if err := d.deps.Hub.Unsubscribe(ctx, tenant, req.Principal.Subject, req.ID); err != nil {
			return Fail(err, req.Instance)
		}
		return Reply{Status: http.StatusNoContent, ContentType: "application/json", ID: req.ID}
	}
}

func ok(status int, body []byte, id string, revision int64) Reply {
	r := Reply{Status: status, ContentType: "application/json", Body: body, ID: id}
	if revision > 0 {
		r.ETag = ETag(revision)
	}
	return r
}

// Href is the HTTP path of an aggregate.
func Href(kind grains.Kind, id string) string {
	return "/v1/" + string(kind) + "s/" + id
}

// ObjectPayload checks that a request body is one JSON object and returns
// it; an empty body is {}.
func ObjectPayload(body []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return []byte("{}"), nil
	}
	if trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, grains.Errorf(grains.CodeBadRequest, "the body must be one JSON object")
	}
	return trimmed, nil
}
