package config

import (
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"strings"

	"github.com/optralis/optralis/internal/validate"
)

// Dashboard reads DASHBOARD_URL, the dashboard's address for links in mails (reminders,
// digests): an https URL (http only for localhost), without credentials, query or
// fragment; the trailing slash is dropped. Unset, it is the first origin of the CORS
// whitelist (cors), and "" when there is none.
func Dashboard(getenv func(string) string, cors []string) (string, error) {
	v := strings.TrimSpace(getenv("DASHBOARD_URL"))
	if v == "" {
		for _, o := range cors {
			if o != "*" {
				return o, nil
			}
		}
		return "", nil
	}
	u, err := neturl.Parse(v)
	ok := err == nil && u.Host != "" && u.User == nil && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery &&
		(u.Scheme == "https" || (u.Scheme == "http" && isLocalhost(u.Hostname())))
	if !ok {
		return "", fmt.Errorf("DASHBOARD_URL must be an https URL (http only for localhost) without credentials, query or fragment, like https://app.example.com, not %q", v)
	}
	return strings.TrimSuffix(v, "/"), nil
}

func isLocalhost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SES is sending mail through the Amazon SES v2 API with the function's own IAM role:
// From empty means SES is not used (mail goes through SMTP, when configured).
type SES struct {
	From string // SES_FROM: the sender address, of a verified SES identity
	// IdentityARN (SES_IDENTITY_ARN, optional) is the identity authorising From, for
	// sending authorisation and the IAM grant's resource.
	IdentityARN string
}

// Enabled reports whether mail goes through SES.
func (s SES) Enabled() bool { return s.From != "" }

// LoadSES reads SES_FROM and SES_IDENTITY_ARN.
func LoadSES(getenv func(string) string) (SES, error) {
	s := SES{From: strings.TrimSpace(getenv("SES_FROM")), IdentityARN: strings.TrimSpace(getenv("SES_IDENTITY_ARN"))}
	if s.From != "" && validate.Email(s.From) != nil {
		return SES{}, fmt.Errorf("SES_FROM must be an email address like noreply@example.com, not %q", s.From)
	}
	if s.IdentityARN != "" {
		if !strings.HasPrefix(s.IdentityARN, "arn:aws:ses:") || !strings.Contains(s.IdentityARN, ":identity/") {
			return SES{}, fmt.Errorf("SES_IDENTITY_ARN must be an SES identity ARN (arn:aws:ses:<region>:<account>:identity/<domain or address>), not %q", s.IdentityARN)
		}
		if s.From == "" {
			return SES{}, errors.New("SES_FROM is required when SES_IDENTITY_ARN is set")
		}
	}
	return s, nil
}
