package platform

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/grainline/grainline/gateway/auth"
	"github.com/grainline/grainline/gateway/dispatch"
	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/streams/fulfillment/sim"
)

// billingCallbackPath is the gateway's billing callback endpoint.
const billingCallbackPath = "/v1/callbacks/billing"

// billingSubject is the subject of the simulated billing system's tokens.
const billingSubject = "billing-simulator"

// callbackTokenTTL is how long a callback token is used before a new one is
// minted.
const callbackTokenTTL = 10 * time.Minute

// callbackTarget tells the simulated billing system where its callbacks go
// and with which token. The gateway's address and the signing key are known
// only once the gateway started, after the worker; until then callbacks
// fail (and the order's callback timer reconciles them). Safe for
// concurrent use.
type callbackTarget struct {
	mu     sync.Mutex
	url    string // the configured URL, or the gateway's once known
	fixed  bool   // url was configured
	sign   func(auth.Claims, time.Duration) (string, error)
	tokens map[string]cachedToken // by tenant
}

type cachedToken struct {
	token string
	until time.Time
}

func (c *callbackTarget) setGateway(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fixed {
		c.url = "http://" + addr + billingCallbackPath
	}
}

// setSigner sets how callback tokens are signed unless a signer is set
// already (a configured BillingCallbackKey wins over the gateway's dev key).
func (c *callbackTarget) setSigner(sign func(auth.Claims, time.Duration) (string, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sign != nil && c.sign == nil {
		c.sign = sign
	}
}

// ValidCallbackURL checks a billing callback URL: absolute, http or https,
// with a host.
func ValidCallbackURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http or https URL", s)
	}
	return nil
}

// target implements sim.HTTPTarget: the URL and a token of tenant with the
// billing role.
func (c *callbackTarget) target(tenant string) (string, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.url == "" || c.sign == nil {
		return "", "", errors.New("platform: the billing callback endpoint is not known yet")
	}
	if t, ok := c.tokens[tenant]; ok && time.Now().Before(t.until) {
		return c.url, t.token, nil
	}
	tok, err := c.sign(auth.Claims{Subject: billingSubject, Tenant: grains.TenantID(tenant), Roles: []string{dispatch.RoleBilling}},
		callbackTokenTTL+time.Minute)
	if err != nil {
		return "", "", err
	}
	c.tokens[tenant] = cachedToken{token: tok, until: time.Now().Add(callbackTokenTTL)}
	return c.url, tok, nil
}

// asyncBilling returns the asynchronous simulated billing system, posting
// its callbacks over HTTP to the gateway's callback endpoint.
func (p *Platform) asyncBilling(cfg sim.Config) (*sim.Billing, error) {
	t := &callbackTarget{url: p.cfg.BillingCallbackURL, fixed: p.cfg.BillingCallbackURL != "", tokens: map[string]cachedToken{}}
	switch key := p.cfg.BillingCallbackKey; {
	case key != nil:
		// The configured key, whose public key the gateway trusts.
		t.setSigner(func(c auth.Claims, ttl time.Duration) (string, error) { return auth.Mint(key, c, ttl) })
	case !p.has(RoleGateway):
		// The callbacks go to a gateway elsewhere, whose verifier trusts
		// the dev key of this data folder.
		key, err := auth.LoadOrCreateDevKey(p.cfg.DataDir)
		if err != nil {
			return nil, err
		}
		t.setSigner(func(c auth.Claims, ttl time.Duration) (string, error) { return auth.Mint(key, c, ttl) })
	}
	bill, err := sim.NewAsyncBilling(cfg, sim.AsyncConfig{
		Delay:    p.cfg.BillingCallbackDelay,
		DropRate: p.cfg.BillingCallbackDropRate,
		Sink:     sim.HTTPSink(t.target, &http.Client{Timeout: 10 * time.Second}),
	})
	if err != nil {
		return nil, err
	}
	p.billingTarget = t
	// Registered after the streams' closer, so it runs before it: no
	// callback is sent while the platform goes down.
	p.onClose(func(context.Context) error { bill.Close(); return nil })
	return bill, nil
}

// SimulatedBilling is the simulated billing system the worker calls, nil
// when the worker runs elsewhere or calls configured systems
// (Config.WorkerSystems). Drills read its counters.
func (p *Platform) SimulatedBilling() *sim.Billing { return p.billing }
