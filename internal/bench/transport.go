package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/grainline/grainline/grains"
)

// sender sends one quote command through a front door and returns the
// reply body of a success. A failure is a *CommandError. Safe for
// concurrent use.
type sender interface {
	// send delivers command to quote id (empty for create) and returns the
	// aggregate id the reply names and the reply body.
	send(ctx context.Context, id, command, key string, body []byte) (replyID string, reply []byte, err error)
	close()
}

// Error codes for failures that never reached a gateway reply.
const (
	CodeTimeout     = "client_timeout" // no reply within RequestTimeout
	CodeTransport   = "transport"      // the connection failed
	CodeNoResponder = "no_responders"  // NATS: no gateway subscribed
	CodeBadReply    = "bad_reply"      // a reply the client could not read
)

// CommandError is a command that failed: either a gateway reply with an
// error status (Code is the problem code) or a transport failure (Code is
// one of the Code* constants above).
type CommandError struct {
	Code   string
	Status int // the HTTP status of a gateway reply; 0 for transport failures
	Err    error
}

func (e *CommandError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("bench: %s (status %d): %v", e.Code, e.Status, e.Err)
	}
	return fmt.Sprintf("bench: %s: %v", e.Code, e.Err)
}

func (e *CommandError) Unwrap() error { return e.Err }

func transportError(err error) *CommandError {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.As(err, &ne) && ne.Timeout():
		return &CommandError{Code: CodeTimeout, Err: err}
	case errors.Is(err, nats.ErrNoResponders):
		return &CommandError{Code: CodeNoResponder, Err: err}
	default:
		return &CommandError{Code: CodeTransport, Err: err}
	}
}

// problemError reads a problem+json reply.
func problemError(status int, code string, body []byte) *CommandError {
	var p struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(body, &p)
	if code == "" {
		code = p.Code
	}
	if code == "" {
		code = "status_" + strconv.Itoa(status)
	}
	detail := p.Detail
	if detail == "" {
		detail = strings.TrimSpace(string(body))
		if len(detail) > 200 {
			detail = detail[:200]
		}
	}
	return &CommandError{Code: code, Status: status, Err: errors.New(detail)}
}

// natsSender sends commands as NATS requests on one shared connection.
type natsSender struct {
	nc     *nats.Conn
	prefix string
	tenant grains.TenantID
	auth   string
}

func newNATSSender(cfg Config) (*natsSender, error) {
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("grainline-bench"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("bench: connect NATS %s: %w", cfg.NATSURL, err)
	}
	return &natsSender{nc: nc, prefix: cfg.NATSPrefix, tenant: cfg.Tenant, auth: "Bearer " + cfg.Token}, nil
}

func (s *natsSender) send(ctx context.Context, id, command, key string, body []byte) (string, []byte, error) {
	msg := nats.NewMsg(s.prefix + "." + string(s.tenant) + "." + string(grains.KindQuote) + "." + command)
	msg.Data = body
	msg.Header.Set("Authorization", s.auth)
	msg.Header.Set("Idempotency-Key", key)
	if id != "" {
		msg.Header.Set("Grainline-Id", id)
	}
	rep, err := s.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return "", nil, transportError(err)
	}
	status, err := strconv.Atoi(rep.Header.Get("Status"))
	if err != nil {
		return "", nil, &CommandError{Code: CodeBadReply, Err: fmt.Errorf("reply without a valid Status header: %q", rep.Header.Get("Status"))}
	}
	if status >= 300 {
		return "", nil, problemError(status, rep.Header.Get("Grainline-Error-Code"), rep.Data)
	}
	return rep.Header.Get("Grainline-Id"), rep.Data, nil
}

func (s *natsSender) close() { s.nc.Close() }

// httpSender sends commands as HTTP requests over kept-alive connections,
// one per client.
type httpSender struct {
	client *http.Client
	base   string
	auth   string
}

func newHTTPSender(cfg Config) *httpSender {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.Clients * 2,
		MaxIdleConnsPerHost: cfg.Clients * 2,
		IdleConnTimeout:     90 * time.Second,
	}
	return &httpSender{
		client: &http.Client{Transport: tr},
		base:   strings.TrimSuffix(cfg.HTTPURL, "/"),
		auth:   "Bearer " + cfg.Token,
	}
}

func (s *httpSender) send(ctx context.Context, id, command, key string, body []byte) (string, []byte, error) {
	method, path := http.MethodPost, "/v1/quotes"
	switch command {
	case "create":
	case "removeLine":
		var b struct {
			LineID string `json:"lineId"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			return "", nil, fmt.Errorf("bench: removeLine body: %w", err)
		}
		method, path, body = http.MethodDelete, "/v1/quotes/"+url.PathEscape(id)+"/lines/"+url.PathEscape(b.LineID), nil
	case "addLine":
		path = "/v1/quotes/" + url.PathEscape(id) + "/lines"
	case "renderDocument":
		path = "/v1/quotes/" + url.PathEscape(id) + "/document"
	default:
		path = "/v1/quotes/" + url.PathEscape(id) + "/" + command
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return "", nil, fmt.Errorf("bench: %w", err)
	}
	req.Header.Set("Authorization", s.auth)
	req.Header.Set("Idempotency-Key", key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "", nil, transportError(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", nil, transportError(err)
	}
	if resp.StatusCode >= 300 {
		return "", nil, problemError(resp.StatusCode, "", data)
	}
	replyID := id
	if loc := resp.Header.Get("Location"); loc != "" {
		replyID = loc[strings.LastIndexByte(loc, '/')+1:]
	}
	return replyID, data, nil
}

func (s *httpSender) close() { s.client.CloseIdleConnections() }

func newSender(cfg Config) (sender, error) {
	if cfg.Transport == TransportHTTP {
		return newHTTPSender(cfg), nil
	}
	return newNATSSender(cfg)
}
