package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/grainline/grainline/gateway/natsapi"
	"github.com/grainline/grainline/grains"
)

// reply is what either front door answered, in one shape.
type reply struct {
	Status      int
	ContentType string
	ETag        string
	Replayed    bool
	Code        string // Grainline-Error-Code (NATS) or the problem's code (HTTP)
	ID          string // Grainline-Id (NATS) or the id from Location (HTTP create)
	Header      map[string]string
	Body        []byte
}

// problem is the part of a problem+json body the tests check.
type problem struct {
	Type       string             `json:"type"`
	Status     int                `json:"status"`
	Code       string             `json:"code"`
	Violations []grains.Violation `json:"violations"`
}

func (r reply) problem(t *testing.T) problem {
	t.Helper()
	var p problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("reply %d is not a problem: %v: %s", r.Status, err, r.Body)
	}
	return p
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode reply %d: %v: %s", r.Status, err, r.Body)
	}
}

// expect fails the test unless the reply has status.
func (r reply) expect(t *testing.T, what string, status int) reply {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d (code %q), want %d: %s", what, r.Status, r.Code, status, r.Body)
	}
	return r
}

// expectProblem fails the test unless the reply is a problem with status and
// code, the same in the body and (over NATS) the headers.
func (r reply) expectProblem(t *testing.T, what string, status int, code string) {
	t.Helper()
	if r.Status != status || r.Code != code {
		t.Fatalf("%s: status %d code %q, want %d %q: %s", what, r.Status, r.Code, status, code, r.Body)
	}
	if r.ContentType != "application/problem+json" {
		t.Fatalf("%s: content type %q, want application/problem+json", what, r.ContentType)
	}
	p := r.problem(t)
	if p.Code != code || p.Status != status || p.Type != "urn:grainline:problem:"+code {
		t.Fatalf("%s: problem body %+v, want status %d code %q", what, p, status, code)
	}
}

// opts are the optional request headers.
type opts struct {
	idemKey string
	ifMatch string
}

// door is a front door: HTTP or NATS. The commands are the same; only the
// transport differs.
type door interface {
	// do runs command on the kind's aggregate id ("" for a quote create,
	// a quote id for an order list); "get" reads.
	do(t *testing.T, kind grains.Kind, command, id string, body any, o opts) reply
	name() string
}

// --- HTTP ---

type httpDoor struct {
	base  string
	token string
	hc    *http.Client
}

func newHTTPDoor(addr, token string) *httpDoor {
	return &httpDoor{base: "http://" + addr, token: token, hc: &http.Client{Timeout: 30 * time.Second}}
}

func (d *httpDoor) name() string { return "http" }

func (d *httpDoor) do(t *testing.T, kind grains.Kind, command, id string, body any, o opts) reply {
	t.Helper()
	r, err := d.try(kind, command, id, body, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// try is do for goroutines other than the test's: it reports transport
// errors instead of failing the test.
func (d *httpDoor) try(kind grains.Kind, command, id string, body any, o opts) (reply, error) {
	method, path := http.MethodPost, ""
	switch {
	case kind == "catalog" && command == "get":
		method, path = http.MethodGet, "/v1/catalog"
	case kind == "catalog" && command == "versions":
		method, path = http.MethodGet, "/v1/catalog/versions"
	case kind == "catalog" && command == "version":
		method, path = http.MethodGet, "/v1/catalog/versions/"+id
	case kind == "catalog" && command == "createDraft":
		path = "/v1/catalog/versions"
	case kind == "catalog" && command == "updateDraft":
		method, path = http.MethodPut, "/v1/catalog/versions/"+id
	case kind == "catalog":
		path = "/v1/catalog/versions/" + id + "/" + command
	case kind == grains.KindOrder && command == "list":
		method, path = http.MethodGet, "/v1/orders?quoteId="+url.QueryEscape(id)
	case command == "get":
		method, path = http.MethodGet, "/v1/"+string(kind)+"s/"+id
	case kind == grains.KindOrder && command == "tasks":
		method, path = http.MethodGet, "/v1/orders/"+id+"/tasks"
	case kind == grains.KindQuote && command == "create":
		path = "/v1/quotes"
	case kind == grains.KindQuote && command == "addLine":
		path = "/v1/quotes/" + id + "/lines"
	case kind == grains.KindQuote && command == "setQuoteDiscount":
		path = "/v1/quotes/" + id + "/discount"
	case kind == grains.KindQuote && command == "setCharacteristics":
		// NATS carries the lineId in the body, HTTP in the path (a body
		// lineId must match it).
		lineID, _ := body.(map[string]any)["lineId"].(string)
		path = "/v1/quotes/" + id + "/lines/" + lineID + "/characteristics"
	case kind == grains.KindQuote && command == "attachDocument":
		path = "/v1/quotes/" + id + "/attach-document"
	case kind == grains.KindQuote && command == "evidence":
		method, path = http.MethodGet, "/v1/quotes/"+id+"/evidence"
	case kind == grains.KindQuote && command == "renderDocument":
		path = "/v1/quotes/" + id + "/document"
	case kind == grains.KindQuote && command == "revision":
		// NATS carries {"revision": n} in the body, HTTP in the path.
		n, _ := body.(map[string]any)["revision"].(int)
		method, path, body = http.MethodGet, "/v1/quotes/"+id+"/revisions/"+strconv.Itoa(n), nil
	default:
		path = "/v1/" + string(kind) + "s/" + id + "/" + command
	}
	return d.send(method, path, body, o)
}

// request sends a request to path and fails the test on a transport error.
func (d *httpDoor) request(t *testing.T, method, path string, body any, o opts) reply {
	t.Helper()
	r, err := d.send(method, path, body, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (d *httpDoor) send(method, path string, body any, o opts) (reply, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return reply{}, fmt.Errorf("encode body: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.base+path, rd)
	if err != nil {
		return reply{}, fmt.Errorf("request %s %s: %w", method, path, err)
	}
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if o.idemKey != "" {
		req.Header.Set("Idempotency-Key", o.idemKey)
	}
	if o.ifMatch != "" {
		req.Header.Set("If-Match", o.ifMatch)
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	r := reply{
		Status:      resp.StatusCode,
		ContentType: resp.Header.Get("Content-Type"),
		ETag:        resp.Header.Get("ETag"),
		Replayed:    resp.Header.Get("Idempotent-Replayed") == "true",
		Body:        b,
		Header:      map[string]string{},
	}
	for k := range resp.Header {
		r.Header[k] = resp.Header.Get(k)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		r.ID = loc[strings.LastIndexByte(loc, '/')+1:]
	}
	if r.ContentType == "application/problem+json" {
		var p problem
		if json.Unmarshal(b, &p) == nil {
			r.Code = p.Code
		}
	}
	return r, nil
}

// --- NATS ---

type natsDoor struct {
	nc     *nats.Conn
	prefix string
	tenant grains.TenantID // the subject's tenant token
	token  string
}

func newNATSDoor(t *testing.T, url, prefix string, tenant grains.TenantID, token string) *natsDoor {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("e2e-"+t.Name()))
	if err != nil {
		t.Fatalf("connect NATS %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	return &natsDoor{nc: nc, prefix: prefix, tenant: tenant, token: token}
}

func (d *natsDoor) name() string { return "nats" }

func (d *natsDoor) do(t *testing.T, kind grains.Kind, command, id string, body any, o opts) reply {
	t.Helper()
	msg := nats.NewMsg(natsapi.Subject(d.prefix, d.tenant, kind, command))
	if d.token != "" {
		msg.Header.Set(natsapi.HeaderAuthorization, "Bearer "+d.token)
	}
	if kind == grains.KindOrder && command == "list" {
		body = map[string]string{"quoteId": id}
	} else if id != "" {
		msg.Header.Set(natsapi.HeaderID, id)
	}
	if o.idemKey != "" {
		msg.Header.Set(natsapi.HeaderIdempotencyKey, o.idemKey)
	}
	if o.ifMatch != "" {
		msg.Header.Set(natsapi.HeaderIfMatch, o.ifMatch)
	}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		msg.Data = b
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := d.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		t.Fatalf("NATS %s: %v", msg.Subject, err)
	}
	status, err := strconv.Atoi(resp.Header.Get(natsapi.HeaderStatus))
	if err != nil {
		t.Fatalf("NATS %s: reply without a numeric Status header (%q): %s", msg.Subject, resp.Header.Get(natsapi.HeaderStatus), resp.Data)
	}
	if len(resp.Data) == 0 {
		t.Fatalf("NATS %s: empty reply body (status %d)", msg.Subject, status)
	}
	r := reply{
		Status:      status,
		ContentType: resp.Header.Get(natsapi.HeaderContentType),
		ETag:        resp.Header.Get(natsapi.HeaderETag),
		Replayed:    resp.Header.Get(natsapi.HeaderReplayed) == "true",
		Code:        resp.Header.Get(natsapi.HeaderErrorCode),
		ID:          resp.Header.Get(natsapi.HeaderID),
		Body:        resp.Data,
		Header:      map[string]string{},
	}
	for k := range resp.Header {
		r.Header[k] = resp.Header.Get(k)
	}
	return r
}
