package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"strings"
	"syscall"
	"time"
)

// MaxURLLen bounds a channel's URL.
const MaxURLLen = 2048

// Policy is where outgoing notifications may go. By default only https to public
// addresses: a client's user could otherwise aim a webhook at the cloud's metadata service
// or the VPC (SSRF). AllowInsecure (NOTIFY_ALLOW_INSECURE_URLS, local stack and tests) also
// allows plain http, loopback and private addresses; link-local addresses (169.254.0.0/16
// with the metadata service, fe80::/10) stay refused whatever the setting.
type Policy struct {
	AllowInsecure bool
}

// errAddress is the dial-time refusal; its text reaches notification_history and the test
// action's answer.
var errAddress = errors.New("destination address not allowed")

// allowedAddr reports whether an outgoing connection may reach ip.
func (p Policy) allowedAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(), ip.IsUnspecified(), ip.IsMulticast(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(),
		ip.IsInterfaceLocalMulticast():
		return false
	case metadataV6.Contains(ip):
		return false // AWS's IPv6 instance metadata endpoint (fd00:ec2::254)
	case p.AllowInsecure:
		return true
	case ip.IsLoopback(), ip.IsPrivate(), sharedSpace.Contains(ip), thisNetwork.Contains(ip):
		return false
	}
	return true
}

var (
	metadataV6  = netip.MustParsePrefix("fd00:ec2::/32")
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT, used inside clouds
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
)

// CheckURL validates a channel's URL for the API: absolute https (http only when
// AllowInsecure), a host, no credentials, no fragment, and a literal IP address only if
// allowed. Host names are checked again at dial time, on the address they resolve to.
func (p Policy) CheckURL(raw string) error {
	if raw == "" {
		return errors.New("required")
	}
	if len(raw) > MaxURLLen {
		return fmt.Errorf("at most %d characters", MaxURLLen)
	}
	u, err := neturl.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return errors.New("must be an absolute https URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowInsecure:
	default:
		return errors.New("must be an https URL")
	}
	if u.User != nil {
		return errors.New("must not contain credentials")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not contain a fragment")
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if !p.allowedAddr(ip) {
			return errors.New("this address is not allowed (private, loopback or link-local)")
		}
	} else if !p.AllowInsecure && (strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost")) {
		return errors.New("this address is not allowed (private, loopback or link-local)")
	}
	return nil
}

// MaskURL is what the API shows of a URL (a Slack or Teams URL is a credential): its
// scheme and host only.
func MaskURL(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// NewHTTPClient is the client of outgoing notifications: its dialer refuses an address
// the policy does not allow after name resolution (so DNS cannot smuggle in a private
// address), it ignores proxy settings (the check must see the real destination) and it
// follows no redirect (a 3xx is a failed delivery).
func NewHTTPClient(p Policy, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{
		Timeout: timeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !p.allowedAddr(ap.Addr()) {
				return errAddress
			}
			return nil
		},
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// post sends body to url with headers; any answer but 2xx is an error. permanent is true
// for answers a retry cannot change (4xx other than 408 and 429).
func post(ctx context.Context, c *http.Client, url string, body []byte, headers map[string]string) (permanent bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		return true, errors.New("invalid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Optralis-Notifications/1")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, scrub(err, url)
	}
	defer resp.Body.Close()
	var snippet [200]byte
	n, _ := resp.Body.Read(snippet[:])
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	msg := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if s := strings.TrimSpace(strings.ToValidUTF8(string(snippet[:n]), "")); s != "" {
		msg += ": " + s
	}
	perm := resp.StatusCode >= 300 && resp.StatusCode < 500 && resp.StatusCode != 408 && resp.StatusCode != 429
	return perm, errors.New(msg)
}

// scrub removes the URL (a secret for Slack and Teams) from a transport error.
func scrub(err error, url string) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return errors.New("timed out")
	}
	msg := err.Error()
	if url != "" {
		msg = strings.ReplaceAll(msg, url, MaskURL(url))
		msg = strings.ReplaceAll(msg, fmt.Sprintf("%q", url), MaskURL(url))
	}
	return errors.New(msg)
}
