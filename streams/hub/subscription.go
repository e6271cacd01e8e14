package hub

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/grainline/grainline/grains"
)

// Subscription is one tenant's webhook: events matching Query are POSTed to
// Callback, signed with Secret.
type Subscription struct {
	ID       string `json:"id"`
	Callback string `json:"callback"`
	Query    string `json:"query"`
	// Secret signs deliveries (Sign). It is stored, shown once in the reply
	// to the create and never listed again.
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"createdAt"`
	CreatedBy string    `json:"createdBy"`
}

// filter returns the parsed query; a stored subscription always parses.
func (s Subscription) filter() Filter {
	f, _ := ParseQuery(s.Query)
	return f
}

// Request is the body of a create: POST /v1/hub.
type Request struct {
	Callback string `json:"callback"`
	Query    string `json:"query"`
	Secret   string `json:"secret,omitempty"`
}

// Limits of a subscription.
const (
	MaxCallbackLen = 2048
	MinSecretLen   = 16
	MaxSecretLen   = 256
)

// Validate checks a create request and returns every violation found, as a
// validation_failed error, or nil.
func (r Request) Validate() error {
	var vs []grains.Violation
	if err := ValidateCallback(r.Callback); err != nil {
		vs = append(vs, grains.Violation{Pointer: "/callback", Code: "invalid_callback", Message: err.Error()})
	}
	if _, err := ParseQuery(r.Query); err != nil {
		vs = append(vs, grains.Violation{Pointer: "/query", Code: "invalid_query", Message: err.Error()})
	}
	if r.Secret != "" {
		if len(r.Secret) < MinSecretLen || len(r.Secret) > MaxSecretLen || !printable(r.Secret) {
			vs = append(vs, grains.Violation{Pointer: "/secret", Code: "invalid_secret",
				Message: fmt.Sprintf("the secret must be %d to %d printable ASCII characters", MinSecretLen, MaxSecretLen)})
		}
	}
	if len(vs) > 0 {
		return &grains.Error{Code: grains.CodeValidation, Message: "invalid subscription", Violations: vs}
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// ValidateCallback checks a callback URL: absolute http or https, with a
// host, without user credentials or a fragment, at most MaxCallbackLen
// bytes. Whether its host may be private is the Registry's check
// (RegistryConfig.AllowPrivate), and the delivering client's
// (Config.AllowPrivate).
func ValidateCallback(raw string) error {
	if raw == "" {
		return fmt.Errorf("a callback URL is required")
	}
	if len(raw) > MaxCallbackLen {
		return fmt.Errorf("the callback URL is longer than %d bytes", MaxCallbackLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("the callback is not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("the callback must be an http or https URL, not %q", u.Scheme)
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("the callback URL must name a host")
	case u.User != nil:
		return fmt.Errorf("the callback URL must not carry credentials; sign with the secret instead")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("the callback URL must not have a fragment")
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil || p == "0" {
			return fmt.Errorf("the callback URL has an invalid port %q", p)
		}
	}
	return nil
}

// The TMF event types the hub publishes (TMF622 ProductOrder notifications).
const (
	EventCreate           = "ProductOrderCreateEvent"
	EventStateChange      = "ProductOrderStateChangeEvent"
	EventAttributeChange  = "ProductOrderAttributeValueChangeEvent"
	EventJeopardy         = "ProductOrderJeopardyEvent"
	queryKeyEventType     = "eventType"
	queryKeyState         = "event.productOrder.state"
	maxQueryLen           = 1024
	maxEventTypesPerQuery = 16
)

// eventTypes maps order event types to the TMF event type delivered for
// them, by type alone so that a redelivered event is published the same way:
// the events that exist to move the order's state (completion, failure,
// cancellation and its request, a fallout case that holds the order or
// releases it) are state changes; task progress and an amendment (new
// lines and item actions) are attribute changes, even
// the first task request that moves the order from acknowledged to
// inProgress (its event.productOrder.state says so). A jeopardy alert is a
// ProductOrderJeopardyEvent (TMF622), its productOrder carrying the
// jeopardyAlert. Order events not listed are not published.
var eventTypes = map[string]string{
	"OrderCreated":                  EventCreate,
	"OrderCompleted":                EventStateChange,
	"OrderFailed":                   EventStateChange,
	"OrderCancelled":                EventStateChange,
	"OrderCancellationRequested":    EventStateChange,
	"FalloutOpened":                 EventStateChange,
	"FalloutResolved":               EventStateChange,
	"FalloutAssigned":               EventAttributeChange,
	"FulfillmentTaskRequested":      EventAttributeChange,
	"FulfillmentTaskCompleted":      EventAttributeChange,
	"FulfillmentTaskFailed":         EventAttributeChange,
	"FulfillmentTaskSkipped":        EventAttributeChange,
	"FulfillmentTaskReconciled":     EventAttributeChange,
	"FulfillmentTaskAwaiting":       EventAttributeChange,
	"FulfillmentTaskQueryRequested": EventAttributeChange,
	"OrderAmended":                  EventAttributeChange,
	"OrderJeopardyRaised":           EventJeopardy,
}

// TMFEventType returns the TMF event type published for an order event
// type, or "" when the event is not published.
func TMFEventType(orderEvent string) string { return eventTypes[orderEvent] }

// EventTypes lists the TMF event types a query may name.
func EventTypes() []string {
	return []string{EventAttributeChange, EventCreate, EventJeopardy, EventStateChange}
}

// Filter is a parsed subscription query. The zero Filter matches every
// event.
type Filter struct {
	EventTypes []string // empty: any
	States     []string // empty: any
}

// ParseQuery parses a TMF630 hub query: "" (every event) or "&"-joined
// terms "eventType=A" and "event.productOrder.state=S"; a term's value may
// list alternatives separated by commas, and a key may repeat (its values
// add up). Unknown keys and event types are errors.
func ParseQuery(q string) (Filter, error) {
	var f Filter
	q = strings.TrimSpace(q)
	if q == "" {
		return f, nil
	}
	if len(q) > maxQueryLen {
		return f, fmt.Errorf("the query is longer than %d bytes", maxQueryLen)
	}
	for _, term := range strings.Split(q, "&") {
		key, value, ok := strings.Cut(strings.TrimSpace(term), "=")
		if !ok || value == "" {
			return Filter{}, fmt.Errorf("term %q is not key=value", term)
		}
		key = strings.TrimSpace(key)
		for _, v := range strings.Split(value, ",") {
			v = strings.TrimSpace(v)
			if v == "" {
				return Filter{}, fmt.Errorf("term %q has an empty value", term)
			}
			switch key {
			case queryKeyEventType:
				if !slices.Contains(EventTypes(), v) {
					return Filter{}, fmt.Errorf("unknown eventType %q (known: %s)", v, strings.Join(EventTypes(), ", "))
				}
				if !slices.Contains(f.EventTypes, v) {
					f.EventTypes = append(f.EventTypes, v)
				}
			case queryKeyState:
				if !slices.Contains(f.States, v) {
					f.States = append(f.States, v)
				}
			default:
				return Filter{}, fmt.Errorf("unknown query key %q (known: %s, %s)", key, queryKeyEventType, queryKeyState)
			}
		}
	}
	if len(f.EventTypes)+len(f.States) > maxEventTypesPerQuery {
		return Filter{}, fmt.Errorf("the query lists more than %d values", maxEventTypesPerQuery)
	}
	sort.Strings(f.EventTypes)
	sort.Strings(f.States)
	return f, nil
}

// Match reports whether an event of TMF type eventType about an order in
// state passes the filter.
func (f Filter) Match(eventType, state string) bool {
	if len(f.EventTypes) > 0 && !slices.Contains(f.EventTypes, eventType) {
		return false
	}
	if len(f.States) > 0 && !slices.Contains(f.States, state) {
		return false
	}
	return true
}

// NewSecret returns a random signing secret: "whsec_" and 64 hex digits.
func NewSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // cannot happen on supported platforms
	}
	return "whsec_" + hex.EncodeToString(b[:])
}

// newID returns a subscription id: "hub-" and 20 hex digits.
func newID() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return "hub-" + hex.EncodeToString(b[:])
}
