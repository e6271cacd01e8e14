// Package httpapi is the HTTP/JSON front door of Grainline. It authenticates
// each /v1 request by its bearer token (the tenant comes only from the
// token), checks the request's shape, hands the command to the grains
// through gateway/dispatch and answers with the grain's state or an RFC 9457
// problem. It also serves liveness, readiness, Prometheus metrics and the
// OpenAPI document.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grainline/grainline/actors/call"
	"github.com/grainline/grainline/gateway"
	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/dispatch"
	"github.com/grainline/grainline/gateway/problem"
	"github.com/grainline/grainline/grains"
)

// Deps are the collaborators of the HTTP front door.
type Deps struct {
	Sender   call.Sender       // required
	Reader   call.Reader       // required
	Verifier *auth.Verifier    // required
	Catalog  dispatch.Catalog  // nil: /v1/catalog answers 503
	Orders   dispatch.Orders   // nil: quotes carry no order link, /v1/orders?quoteId lists nothing
	Hub      dispatch.Hub      // nil: /v1/hub answers 503
	Policies dispatch.Policies // nil: /v1/approval-policies answers 503
	Evidence dispatch.Evidence // nil: /v1/quotes/{id}/evidence answers 503
	// Ready are the readiness checks of /readyz; each gets a context bounded
	// by Config.ReadyTimeout.
	Ready []func(ctx context.Context) error
	// Registerer and Gatherer hold the HTTP metrics and serve /metrics.
	// Both nil: a private registry.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// NewID assigns created quotes' ids. Default dispatch.NewQuoteID.
	NewID func() string
	// Artifacts keeps rendered quote documents and serves artifacts; nil
	// answers /v1/quotes/{id}/document and /v1/artifacts with 503.
	Artifacts dispatch.Artifacts
	// Seller names a tenant on its documents; nil uses the tenant id.
	Seller func(grains.TenantID) string
	// Attempts shows the worker's attempt records with the order tasks;
	// nil shows tasks without them.
	Attempts dispatch.Attempts
}

// Headers of the API.
const (
	HeaderCorrelationID  = "X-Correlation-Id"
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderReplayed       = "Idempotent-Replayed"
)

type server struct {
	cfg      Config
	log      *slog.Logger
	verifier *auth.Verifier
	disp     *dispatch.Dispatcher
	ready    []func(context.Context) error
	metrics  *metrics
	gatherer prometheus.Gatherer
}

// New returns the handler of the HTTP API.
func New(cfg Config, deps Deps, log *slog.Logger) (http.Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		return nil, errors.New("httpapi: a logger is required")
	}
	if deps.Verifier == nil {
		return nil, errors.New("httpapi: Deps.Verifier is required")
	}
	disp, err := dispatch.New(dispatch.Deps{Sender: deps.Sender, Reader: deps.Reader, Orders: deps.Orders, Catalog: deps.Catalog, Hub: deps.Hub, NewID: deps.NewID,
		Artifacts: deps.Artifacts, Seller: deps.Seller, Attempts: deps.Attempts,
		Policies: deps.Policies, Evidence: deps.Evidence})
	if err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	switch {
	case deps.Registerer == nil && deps.Gatherer == nil:
		reg := prometheus.NewRegistry()
		deps.Registerer, deps.Gatherer = reg, reg
	case deps.Registerer == nil || deps.Gatherer == nil:
		return nil, errors.New("httpapi: set both Deps.Registerer and Deps.Gatherer, or neither")
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("httpapi: metrics: %w", err)
	}
	s := &server{cfg: cfg, log: log, verifier: deps.Verifier, disp: disp, ready: deps.Ready, metrics: m, gatherer: deps.Gatherer}
	mux := http.NewServeMux()
	for _, rt := range routes() {
		mux.Handle(rt.Method+" "+rt.Path, s.wrap(rt))
	}
	mux.Handle("/", s.wrap(route{Path: "unmatched", Public: true, serve: func(s *server, w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, grains.Errorf(grains.CodeNotFound, "no endpoint %s %s", r.Method, r.URL.Path))
	}}))
	// ServeMux answers a path that is not clean (an empty, "." or ".."
	// segment, e.g. /v1/quotes//revisions/1) with a redirect to the cleaned
	// path, which names another resource or none. The API answers it as a
	// path that names no endpoint instead.
	unclean := s.wrap(route{Path: "unmatched", Public: true, serve: func(s *server, w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, grains.Errorf(grains.CodeNotFound, "no endpoint %s %s: the path has an empty, \".\" or \"..\" segment", r.Method, r.URL.Path))
	}})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect && !cleanPath(r.URL.Path) {
			unclean.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}), nil
}

// cleanPath reports whether p is a path ServeMux serves without redirecting:
// it starts with "/" and has no empty, "." or ".." segment (a trailing "/"
// is allowed).
func cleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." || (seg == "" && i != len(segs)-1) {
			return false
		}
	}
	return true
}

// reqInfo travels with a request so the log line can name what the handler
// learned (tenant, error).
type reqInfo struct {
	tenant    grains.TenantID
	principal auth.Principal
	err       error
}

type infoKey struct{}

func info(r *http.Request) *reqInfo { return r.Context().Value(infoKey{}).(*reqInfo) }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// wrap adds correlation, authentication, metrics and the request log.
func (s *server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		corr := dispatch.CorrelationID(r.Header.Get(HeaderCorrelationID))
		w.Header().Set(HeaderCorrelationID, corr)
		ri := &reqInfo{}
		ctx := context.WithValue(r.Context(), infoKey{}, ri)
		ctx = context.WithValue(ctx, corrKey{}, corr)
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}

		if rt.Public {
			rt.serve(s, sw, r)
		} else if p, err := dispatch.Authenticate(s.verifier, r.Header.Get("Authorization")); err != nil {
			s.fail(sw, r, err)
		} else {
			ri.tenant, ri.principal = p.Tenant, p
			rt.serve(s, sw, r)
		}

		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		elapsed := time.Since(start)
		s.metrics.requests.WithLabelValues(rt.Path, r.Method, strconv.Itoa(status)).Inc()
		s.metrics.latency.WithLabelValues(rt.Path).Observe(elapsed.Seconds())
		level := slog.LevelInfo
		if rt.Public && status < 500 {
			level = slog.LevelDebug // probes and scrapes
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("route", rt.Path),
			slog.Int("status", status),
			slog.Duration("duration", elapsed),
			slog.String("tenant_id", string(ri.tenant)),
			slog.String("correlation_id", corr),
		}
		if ri.err != nil && status >= 500 {
			level = slog.LevelError
			attrs = append(attrs, slog.String("error", ri.err.Error()))
		}
		s.log.LogAttrs(ctx, level, "http request", attrs...)
	})
}

type corrKey struct{}

func correlation(r *http.Request) string { s, _ := r.Context().Value(corrKey{}).(string); return s }

// fail answers err as a problem.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.reply(w, r, dispatch.Fail(err, r.URL.Path))
}

// reply renders a dispatch.Reply.
func (s *server) reply(w http.ResponseWriter, r *http.Request, rep dispatch.Reply) {
	if rep.Err != nil {
		if ri, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
			ri.err = rep.Err
		}
	}
	h := w.Header()
	h.Set("Content-Type", rep.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(rep.Body)))
	if rep.ETag != "" {
		h.Set("ETag", rep.ETag)
	}
	if rep.Location != "" {
		h.Set("Location", rep.Location)
	}
	if rep.Replayed {
		h.Set(HeaderReplayed, "true")
	}
	for k, v := range rep.Headers {
		h.Set(k, v)
	}
	if rep.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="grainline"`)
	}
	w.WriteHeader(rep.Status)
	if r.Method != http.MethodHead {
		w.Write(rep.Body)
	}
}

// readBody returns the request's JSON object payload.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
			return nil, grains.Errorf(problem.CodeUnsupportedMediaType, "the body must be application/json, not %q", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, grains.Errorf(problem.CodePayloadTooLarge, "the body exceeds %d bytes", s.cfg.MaxBodyBytes)
		}
		return nil, grains.Errorf(grains.CodeBadRequest, "reading the body: %v", err)
	}
	return dispatch.ObjectPayload(body)
}

func (s *server) request(r *http.Request, kind grains.Kind, id, name string) (dispatch.Request, error) {
	key, err := dispatch.ParseIdempotencyKey(r.Header.Get(HeaderIdempotencyKey))
	if err != nil {
		return dispatch.Request{}, err
	}
	ifMatch, err := dispatch.ParseIfMatch(r.Header.Get("If-Match"))
	if err != nil {
		return dispatch.Request{}, err
	}
	return dispatch.Request{
		Principal:      info(r).principal,
		Kind:           kind,
		ID:             id,
		Command:        name,
		IdempotencyKey: key,
		IfMatch:        ifMatch,
		CorrelationID:  correlation(r),
		Instance:       r.URL.Path,
	}, nil
}

func (s *server) command(w http.ResponseWriter, r *http.Request, kind grains.Kind, name string) {
	req, err := s.request(r, kind, r.PathValue("id"), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Payload, err = s.readBody(w, r); err != nil {
		s.fail(w, r, err)
		return
	}
	s.do(w, r, req)
}

func (s *server) removeLine(w http.ResponseWriter, r *http.Request) {
	req, err := s.request(r, grains.KindQuote, r.PathValue("id"), "removeLine")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	lineID := r.PathValue("lineId")
	if err := dispatch.ValidID(lineID); err != nil {
		s.fail(w, r, err)
		return
	}
	req.Payload = []byte(`{"lineId":"` + lineID + `"}`) // ValidID leaves nothing to escape
	s.do(w, r, req)
}

func getAggregate(kind grains.Kind) func(*server, http.ResponseWriter, *http.Request) {
	return func(s *server, w http.ResponseWriter, r *http.Request) {
		s.do(w, r, dispatch.Request{
			Principal:     info(r).principal,
			Kind:          kind,
			ID:            r.PathValue("id"),
			Command:       dispatch.CommandGet,
			CorrelationID: correlation(r),
			Instance:      r.URL.Path,
		})
	}
}

func (s *server) do(w http.ResponseWriter, r *http.Request, req dispatch.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	s.reply(w, r, s.disp.Do(ctx, req))
}

func (s *server) listOrders(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("quoteId")
	if q == "" {
		s.fail(w, r, grains.Errorf(grains.CodeBadRequest, "the quoteId query parameter is required"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	s.reply(w, r, s.disp.OrdersForQuote(ctx, info(r).principal, q, r.URL.Path))
}

// orderTasks answers the order's tasks with their attempt records.
func (s *server) orderTasks(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	s.reply(w, r, s.disp.OrderTasks(ctx, info(r).principal, r.PathValue("id"), r.URL.Path))
}

func (s *server) catalog(w http.ResponseWriter, r *http.Request) {
	s.do(w, r, dispatch.Request{
		Principal:     info(r).principal,
		Kind:          dispatch.KindCatalog,
		Command:       dispatch.CommandGet,
		CorrelationID: correlation(r),
		Instance:      r.URL.Path,
	})
}

func (s *server) livez(w http.ResponseWriter, r *http.Request) {
	s.reply(w, r, dispatch.Reply{Status: http.StatusOK, ContentType: "application/json", Body: []byte(`{"status":"live"}`)})
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	failures := make([]error, len(s.ready))
	var wg sync.WaitGroup
	for i, check := range s.ready {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
			defer cancel()
			failures[i] = check(ctx)
		}()
	}
	wg.Wait()
	var vs []grains.Violation
	for i, err := range failures {
		if err != nil {
			vs = append(vs, grains.Violation{Pointer: fmt.Sprintf("/checks/%d", i), Code: "not_ready", Message: err.Error()})
		}
	}
	if len(vs) > 0 {
		s.fail(w, r, &grains.Error{Code: grains.CodeUnavailable, Message: fmt.Sprintf("%d of %d readiness checks failed", len(vs), len(s.ready)), Violations: vs})
		return
	}
	s.reply(w, r, dispatch.Reply{Status: http.StatusOK, ContentType: "application/json", Body: []byte(`{"status":"ready"}`)})
}

func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

func (s *server) openapi(w http.ResponseWriter, r *http.Request) {
	s.reply(w, r, dispatch.Reply{Status: http.StatusOK, ContentType: "application/yaml", Body: gateway.OpenAPI()})
}
