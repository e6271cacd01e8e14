// Package bench is Grainline's load generator: simulated users that each
// own a quote and keep changing it through a front door (NATS or HTTP),
// measuring the latency of every durable command. It is what
// `grainline bench` runs, and what every claim about command throughput is
// measured with.
package bench

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/grainline/grainline/grains"
)

// Transport is the front door a benchmark drives.
type Transport string

// Transports.
const (
	TransportNATS Transport = "nats"
	TransportHTTP Transport = "http"
)

// Flow is what a simulated user does.
type Flow string

// Flows.
const (
	// FlowLines alternately adds and removes a line on the client's quotes:
	// one durable command per request, the command path at its leanest.
	FlowLines Flow = "lines"
	// FlowAccept runs a whole sale per iteration on a fresh quote: create,
	// addLine, price, submit, approve (as many levels as the policy asks),
	// renderDocument (render the PDF, store the artifact, attach it) and
	// accept naming the document's SHA-256. Every step is measured as a
	// command; Result.Journeys counts the accepted quotes.
	FlowAccept Flow = "accept"
)

// Config configures one benchmark run.
type Config struct {
	// Flow is what each client does. Default FlowLines.
	Flow Flow
	// Clients is the number of concurrent simulated users; each waits for
	// its reply before sending its next command. Default 64.
	Clients int
	// Duration is the measured window. Default 10s, unless Commands is set.
	Duration time.Duration
	// Commands, when positive, ends the measured window after this many
	// successful commands instead of after Duration.
	Commands int
	// Warmup runs the load unmeasured before the window opens (grain
	// activation, connection set-up, JIT-like caches). Default 2s; a
	// negative value means none.
	Warmup time.Duration
	// Transport selects the front door. Required.
	Transport Transport
	// NATSURL is the NATS server the gateway listens on (TransportNATS).
	NATSURL string
	// NATSPrefix is the first token of command subjects. Default
	// "grainline".
	NATSPrefix string
	// HTTPURL is the HTTP API's base URL, e.g. http://127.0.0.1:8080
	// (TransportHTTP).
	HTTPURL string
	// Token is the bearer token sent with every command; it needs the
	// "sales" role in Tenant. Required.
	Token string
	// Tenant is the token's tenant. Default "demo".
	Tenant grains.TenantID
	// Quotes is how many quote grains the load is spread over. Default
	// Clients: every client owns one quote, so that the commands on one
	// grain serialise like one real user's. With fewer quotes, clients share
	// them; with more, each client rotates over its own.
	Quotes int
	// OfferingID is the catalog offering added and removed. Default
	// "dia-1g" (in the demo catalog).
	OfferingID string
	// Currency of the quotes. Default "EUR".
	Currency string
	// RequestTimeout bounds one command. Default 15s.
	RequestTimeout time.Duration
	// ProgressInterval is how often the live progress line is written.
	// Default 500ms.
	ProgressInterval time.Duration
	// CommitStats, when set, is sampled when the measured window opens and
	// closes; the deltas go into Result.Batches and Result.Commits. An
	// in-process node's CommitStats fits.
	CommitStats func() (batches, commits uint64)
}

func (c *Config) setDefaults() {
	if c.Flow == "" {
		c.Flow = FlowLines
	}
	if c.Clients == 0 {
		c.Clients = 64
	}
	if c.Duration == 0 && c.Commands == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 2 * time.Second
	}
	if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.NATSPrefix == "" {
		c.NATSPrefix = "grainline"
	}
	if c.Tenant == "" {
		c.Tenant = "demo"
	}
	if c.Quotes == 0 {
		c.Quotes = c.Clients
	}
	if c.OfferingID == "" {
		c.OfferingID = "dia-1g"
	}
	if c.Currency == "" {
		c.Currency = "EUR"
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 15 * time.Second
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = 500 * time.Millisecond
	}
}

// Validate reports a configuration that cannot run. It expects defaults to
// have been applied (Run does so).
func (c Config) Validate() error {
	var errs []error
	if c.Clients <= 0 {
		errs = append(errs, fmt.Errorf("bench: Clients must be positive, got %d", c.Clients))
	}
	if c.Quotes <= 0 {
		errs = append(errs, fmt.Errorf("bench: Quotes must be positive, got %d", c.Quotes))
	}
	if c.Duration < 0 || c.Commands < 0 {
		errs = append(errs, errors.New("bench: Duration and Commands must not be negative"))
	}
	if c.Duration == 0 && c.Commands == 0 {
		errs = append(errs, errors.New("bench: one of Duration and Commands is required"))
	}
	if c.RequestTimeout <= 0 || c.ProgressInterval <= 0 {
		errs = append(errs, errors.New("bench: RequestTimeout and ProgressInterval must be positive"))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("bench: Token is required"))
	}
	if c.Flow != FlowLines && c.Flow != FlowAccept {
		errs = append(errs, fmt.Errorf("bench: Flow %q must be %q or %q", c.Flow, FlowLines, FlowAccept))
	}
	switch c.Transport {
	case TransportNATS:
		if c.NATSURL == "" {
			errs = append(errs, errors.New("bench: NATSURL is required for the nats transport"))
		}
	case TransportHTTP:
		u, err := url.Parse(c.HTTPURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("bench: HTTPURL %q must be an http(s) URL", c.HTTPURL))
		}
	default:
		errs = append(errs, fmt.Errorf("bench: Transport %q must be %q or %q", c.Transport, TransportNATS, TransportHTTP))
	}
	return errors.Join(errs...)
}
