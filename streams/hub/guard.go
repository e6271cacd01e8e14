package hub

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrAddressNotAllowed reports a callback that is, or resolves to, an
// address the hub does not deliver to: loopback, private, link-local,
// shared (100.64.0.0/10), multicast or unspecified. A tenant's callback must
// not reach the platform's own network (server-side request forgery).
// Config.AllowPrivate and RegistryConfig.AllowPrivate lift the rule, for
// development and tests on one machine.
var ErrAddressNotAllowed = errors.New("hub: callback address not allowed")

// sharedSpace is the carrier-grade NAT range (RFC 6598), which
// netip.Addr.IsPrivate does not cover, and "this network" (RFC 1122).
var (
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10")
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
)

// PublicAddr reports whether the hub may deliver to ip when private
// addresses are not allowed.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(), !ip.IsGlobalUnicast(), ip.IsPrivate(), ip.IsLoopback():
		return false
	case ip.Is4() && (sharedSpace.Contains(ip) || thisNetwork.Contains(ip)):
		return false
	}
	return true
}

// checkCallbackHost refuses, at registration, a callback whose host is
// plainly not public: "localhost" (and its subdomains) or a literal address
// PublicAddr refuses. Names are checked again at every connection, after
// resolution (guardedClient), since what a name resolves to can change.
func checkCallbackHost(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return nil // ValidateCallback reports it
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("the callback must be a public address, not %q", host)
	}
	if ip, err := netip.ParseAddr(host); err == nil && !PublicAddr(ip) {
		return fmt.Errorf("the callback must be a public address, not %s", ip)
	}
	return nil
}

// guardedClient returns the hub's default client when private addresses
// are not allowed: it follows no redirects, uses no proxy (a proxy would
// connect on the hub's behalf, past the check) and refuses to connect to
// any address PublicAddr refuses, whatever the name resolved to.
func guardedClient() *http.Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: refusePrivate}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = dialer.DialContext
	return &http.Client{Transport: tr, CheckRedirect: noRedirects}
}

// refusePrivate is a net.Dialer Control function: it runs on the resolved
// address just before each connect.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q is not an address", ErrAddressNotAllowed, address)
	}
	if !PublicAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrAddressNotAllowed, ap.Addr())
	}
	return nil
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
