// Package natsapi is the NATS request-reply front door of Grainline. A
// request on <prefix>.<tenant>.<kind>.<command> (e.g. grainline.demo.quote.submit)
// carries the same bearer token, headers and JSON body as the HTTP API; the
// reply carries the same JSON, with the HTTP status in a "Status" header and,
// on failure, the problem code in "Grainline-Error-Code". The subject's
// tenant must be the token's.
package natsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/dispatch"
	"github.com/grainline/grainline/grains"
)

// Headers of requests and replies.
const (
	HeaderAuthorization  = "Authorization"
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderIfMatch        = "If-Match"
	HeaderCorrelationID  = "X-Correlation-Id"
	HeaderID             = "Grainline-Id"         // the aggregate id (request and reply)
	HeaderStatus         = "Status"               // reply: the HTTP status
	HeaderErrorCode      = "Grainline-Error-Code" // reply: the problem code
	HeaderETag           = "ETag"
	HeaderReplayed       = "Idempotent-Replayed"
	HeaderContentType    = "Content-Type"
)

// CommandListByQuote lists the orders of a quote: order.list with body
// {"quoteId": "..."}.
const CommandListByQuote = "list"

// CommandTasks reads an order's tasks with their attempt records:
// order.tasks with the order id in the Grainline-Id header.
const CommandTasks = "tasks"

// Config tunes the NATS front door. The zero value is usable: New fills in
// the defaults.
type Config struct {
	// Prefix is the first subject token. Default "grainline"; the server
	// subscribes to "<Prefix>.*.*.*".
	Prefix string
	// QueueGroup spreads requests over gateway instances. Default
	// "grainline-gateway".
	QueueGroup string
	// MaxInFlight bounds requests handled at once; further requests wait in
	// the subscription's buffer. Default 256.
	MaxInFlight int
	// RequestTimeout bounds one request's call into the grains. Default 15s.
	RequestTimeout time.Duration
	// DrainTimeout bounds the drain of the subscription when Run's context
	// ends. Default 30s.
	DrainTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = "grainline"
	}
	if c.QueueGroup == "" {
		c.QueueGroup = "grainline-gateway"
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 256
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 15 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Prefix == "" || strings.ContainsAny(c.Prefix, ".*> \t") {
		errs = append(errs, fmt.Errorf("natsapi: Prefix %q must be one subject token", c.Prefix))
	}
	if c.QueueGroup == "" || strings.ContainsAny(c.QueueGroup, " \t") {
		errs = append(errs, fmt.Errorf("natsapi: QueueGroup %q is not a valid queue name", c.QueueGroup))
	}
	if c.MaxInFlight <= 0 {
		errs = append(errs, errors.New("natsapi: MaxInFlight must be positive"))
	}
	if c.RequestTimeout <= 0 || c.DrainTimeout <= 0 {
		errs = append(errs, errors.New("natsapi: RequestTimeout and DrainTimeout must be positive"))
	}
	return errors.Join(errs...)
}

// Deps are the collaborators of the NATS front door.
type Deps struct {
	Sender   call.Sender    // required
	Reader   call.Reader    // required
	Verifier *auth.Verifier // required
	Orders   dispatch.Orders
	Catalog  dispatch.Catalog
	Hub      dispatch.Hub
	Policies dispatch.Policies // approvalPolicy.list, .get, .publish
	Evidence dispatch.Evidence // quote.evidence
	// NewID assigns created quotes' ids. Default dispatch.NewQuoteID.
	NewID func() string
	// Artifacts keeps rendered quote documents (quote.renderDocument,
	// quote.document); nil answers those with "unavailable".
	Artifacts dispatch.Artifacts
	// Seller names a tenant on its documents; nil uses the tenant id.
	Seller func(grains.TenantID) string
	// Attempts shows the worker's attempt records with the order tasks;
	// nil shows tasks without them.
	Attempts dispatch.Attempts
}

// Server answers requests on NATS.
type Server struct {
	cfg      Config
	nc       *nats.Conn
	log      *slog.Logger
	verifier *auth.Verifier
	disp     *dispatch.Dispatcher
	sem      chan struct{}
	inflight sync.WaitGroup
	// reqCtx is the parent of request contexts; it outlives Run's context
	// so that requests accepted before a drain still finish.
	reqCtx context.Context
	ready  chan struct{} // closed once the subscription is in place
}

// Ready is closed once Run's subscription is registered with the server:
// from then on requests are answered.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// New returns a Server on nc.
func New(cfg Config, nc *nats.Conn, deps Deps, log *slog.Logger) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc == nil || log == nil || deps.Verifier == nil {
		return nil, errors.New("natsapi: a connection, a logger and Deps.Verifier are required")
	}
	disp, err := dispatch.New(dispatch.Deps{Sender: deps.Sender, Reader: deps.Reader, Orders: deps.Orders, Catalog: deps.Catalog, Hub: deps.Hub, NewID: deps.NewID,
		Artifacts: deps.Artifacts, Seller: deps.Seller, Attempts: deps.Attempts,
		Policies: deps.Policies, Evidence: deps.Evidence})
	if err != nil {
		return nil, fmt.Errorf("natsapi: %w", err)
	}
	return &Server{cfg: cfg, nc: nc, log: log, verifier: deps.Verifier, disp: disp, sem: make(chan struct{}, cfg.MaxInFlight), ready: make(chan struct{})}, nil
}

// Subject is the subject of a request.
func Subject(prefix string, tenant grains.TenantID, kind grains.Kind, command string) string {
	return prefix + "." + string(tenant) + "." + string(kind) + "." + command
}

// Run serves until ctx ends, then drains the subscription (requests already
// received are answered) and waits for in-flight requests.
func (s *Server) Run(ctx context.Context) error {
	s.reqCtx = context.WithoutCancel(ctx)
	sub, err := s.nc.QueueSubscribe(s.cfg.Prefix+".*.*.*", s.cfg.QueueGroup, s.receive)
	if err != nil {
		return fmt.Errorf("natsapi: subscribe: %w", err)
	}
	if err := s.nc.Flush(); err != nil {
		sub.Unsubscribe()
		return fmt.Errorf("natsapi: subscribe: %w", err)
	}
	s.log.Info("nats gateway serving", slog.String("subject", sub.Subject), slog.String("queue", s.cfg.QueueGroup))
	close(s.ready)
	<-ctx.Done()

	var drainErr error
	if err := sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		drainErr = fmt.Errorf("natsapi: drain: %w", err)
	} else {
		deadline := time.Now().Add(s.cfg.DrainTimeout)
		for sub.IsValid() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if sub.IsValid() {
			sub.Unsubscribe()
			drainErr = errors.New("natsapi: drain did not finish within DrainTimeout")
		}
	}
	s.inflight.Wait()
	return drainErr
}

// receive runs on the subscription's goroutine: it takes a slot and hands
// the request to its own goroutine so a slow grain blocks only itself.
func (s *Server) receive(msg *nats.Msg) {
	s.sem <- struct{}{}
	s.inflight.Add(1)
	go func() {
		defer func() { <-s.sem; s.inflight.Done() }()
		s.handle(msg)
	}()
}

func (s *Server) handle(msg *nats.Msg) {
	start := time.Now()
	corr := dispatch.CorrelationID(msg.Header.Get(HeaderCorrelationID))
	ctx, cancel := context.WithTimeout(s.reqCtx, s.cfg.RequestTimeout)
	defer cancel()

	var tenant grains.TenantID
	rep := s.serve(ctx, msg, corr, &tenant)

	attrs := []slog.Attr{
		slog.String("subject", msg.Subject),
		slog.Int("status", rep.Status),
		slog.Duration("duration", time.Since(start)),
		slog.String("tenant_id", string(tenant)),
		slog.String("correlation_id", corr),
	}
	level := slog.LevelInfo
	if rep.Err != nil && rep.Status >= 500 {
		level = slog.LevelError
		attrs = append(attrs, slog.String("error", rep.Err.Error()))
	}
	if msg.Reply == "" {
		s.log.LogAttrs(ctx, slog.LevelWarn, "nats request without reply subject", attrs...)
		return
	}
	s.log.LogAttrs(ctx, level, "nats request", attrs...)

	out := nats.NewMsg(msg.Reply)
	out.Data = rep.Body
	if len(out.Data) == 0 {
		out.Data = []byte("{}") // a 204: a reply body is never empty
	}
	h := out.Header
	h.Set(HeaderStatus, strconv.Itoa(rep.Status))
	h.Set(HeaderContentType, rep.ContentType)
	h.Set(HeaderCorrelationID, corr)
	if rep.Code != "" {
		h.Set(HeaderErrorCode, string(rep.Code))
	}
	if rep.ETag != "" {
		h.Set(HeaderETag, rep.ETag)
	}
	if rep.ID != "" {
		h.Set(HeaderID, rep.ID)
	}
	if rep.Replayed {
		h.Set(HeaderReplayed, "true")
	}
	for k, v := range rep.Headers {
		h.Set(k, v)
	}
	if err := msg.RespondMsg(out); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "nats reply failed", slog.String("subject", msg.Subject),
			slog.String("correlation_id", corr), slog.String("error", err.Error()))
	}
}

// serve authenticates and routes one request; tenant is set once known.
func (s *Server) serve(ctx context.Context, msg *nats.Msg, corr string, tenant *grains.TenantID) dispatch.Reply {
	instance := msg.Subject
	tokens := strings.Split(msg.Subject, ".")
	if len(tokens) != 4 || tokens[0] != s.cfg.Prefix {
		return dispatch.Fail(grains.Errorf(grains.CodeNotFound, "no endpoint on subject %q", msg.Subject), instance)
	}
	p, err := dispatch.Authenticate(s.verifier, msg.Header.Get(HeaderAuthorization))
	if err != nil {
		return dispatch.Fail(err, instance)
	}
	*tenant = p.Tenant
	if grains.TenantID(tokens[1]) != p.Tenant {
		return dispatch.Fail(grains.Errorf(grains.CodeForbidden, "the subject's tenant is not the token's"), instance)
	}
	kind, command := grains.Kind(tokens[2]), tokens[3]
	if kind == grains.KindOrder && command == CommandListByQuote {
		var q struct {
			QuoteID string `json:"quoteId"`
		}
		if err := json.Unmarshal(msg.Data, &q); err != nil || q.QuoteID == "" {
			return dispatch.Fail(grains.Errorf(grains.CodeBadRequest, `order.list needs a body {"quoteId": "..."}`), instance)
		}
		return s.disp.OrdersForQuote(ctx, p, q.QuoteID, instance)
	}
	if kind == grains.KindOrder && command == CommandTasks {
		return s.disp.OrderTasks(ctx, p, msg.Header.Get(HeaderID), instance)
	}
	key, err := dispatch.ParseIdempotencyKey(msg.Header.Get(HeaderIdempotencyKey))
	if err != nil {
		return dispatch.Fail(err, instance)
	}
	ifMatch, err := dispatch.ParseIfMatch(msg.Header.Get(HeaderIfMatch))
	if err != nil {
		return dispatch.Fail(err, instance)
	}
	return s.disp.Do(ctx, dispatch.Request{
		Principal:      p,
		Kind:           kind,
		ID:             msg.Header.Get(HeaderID),
		Command:        command,
		Payload:        msg.Data,
		IdempotencyKey: key,
		IfMatch:        ifMatch,
		CorrelationID:  corr,
		Instance:       instance,
	})
}
