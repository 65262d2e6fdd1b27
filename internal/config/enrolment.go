package config

import (
	"encoding/pem"
	"errors"
	"fmt"
	neturl "net/url"
	"strconv"
	"strings"
)

// Enrolment configures machine enrolment: every value is optional, and a function that
// needs one it lacks answers 503 naming it (bootstrap without a CA or AGENT_ENDPOINT,
// install.sh without PUBLIC_API_URL).
type Enrolment struct {
	// PublicAPIURL is the API domain as administrators and machines reach it
	// (PUBLIC_API_URL, e.g. https://api.optralis.com): install.sh and the curl command.
	PublicAPIURL string
	// AgentEndpoint is the agents domain handed to enrolled agents (AGENT_ENDPOINT, https).
	AgentEndpoint string
	// AgentDownloadURL is the base URL of the agent binaries (AGENT_DOWNLOAD_URL); the
	// installer fetches <url>/optralis-agent-linux-<arch> and its .sha256.
	AgentDownloadURL string
	// CAKMSKeyID is the KMS key of the machine CA (CA_KMS_KEY_ID or CA_KMS_KEY_ARN: key
	// id, ARN or alias); CACertPEM is its certificate (CA_CERT_PEM). Both or neither.
	CAKMSKeyID string
	CACertPEM  []byte
	// EndOfLifeAPIURL is the endoflife.date API base (ENDOFLIFE_API_URL).
	EndOfLifeAPIURL string
	// AllowServerGeneratedKeys lets a bootstrap without CSR receive a key the server made
	// (ALLOW_SERVER_GENERATED_KEYS=true, for old installers). Off by default.
	AllowServerGeneratedKeys bool
}

// DefaultEndOfLifeAPIURL is endoflife.date's public API.
const DefaultEndOfLifeAPIURL = "https://endoflife.date/api"

// LoadEnrolment reads the enrolment settings (all optional; see Enrolment).
func LoadEnrolment(getenv func(string) string) (Enrolment, error) {
	e := Enrolment{EndOfLifeAPIURL: DefaultEndOfLifeAPIURL, CAKMSKeyID: strings.TrimSpace(getenv("CA_KMS_KEY_ID"))}
	// The infrastructure passes the key's ARN as CA_KMS_KEY_ARN; either name works.
	if arn := strings.TrimSpace(getenv("CA_KMS_KEY_ARN")); arn != "" {
		if e.CAKMSKeyID != "" && e.CAKMSKeyID != arn {
			return e, errors.New("CA_KMS_KEY_ID and CA_KMS_KEY_ARN name different keys: set one of them")
		}
		e.CAKMSKeyID = arn
	}
	var err error
	if e.PublicAPIURL, err = baseURL("PUBLIC_API_URL", getenv("PUBLIC_API_URL"), false); err != nil {
		return e, err
	}
	if e.AgentEndpoint, err = baseURL("AGENT_ENDPOINT", getenv("AGENT_ENDPOINT"), true); err != nil {
		return e, err
	}
	if e.AgentDownloadURL, err = baseURL("AGENT_DOWNLOAD_URL", getenv("AGENT_DOWNLOAD_URL"), false); err != nil {
		return e, err
	}
	if v := getenv("ENDOFLIFE_API_URL"); strings.TrimSpace(v) != "" {
		if e.EndOfLifeAPIURL, err = baseURL("ENDOFLIFE_API_URL", v, false); err != nil {
			return e, err
		}
	}
	if v := strings.TrimSpace(getenv("ALLOW_SERVER_GENERATED_KEYS")); v != "" {
		if e.AllowServerGeneratedKeys, err = strconv.ParseBool(v); err != nil {
			return e, fmt.Errorf("ALLOW_SERVER_GENERATED_KEYS must be true or false, not %q", v)
		}
	}
	if certPEM := strings.TrimSpace(getenv("CA_CERT_PEM")); certPEM != "" {
		if b, _ := pem.Decode([]byte(certPEM)); b == nil || b.Type != "CERTIFICATE" {
			return e, errors.New("CA_CERT_PEM must be the CA certificate in PEM (-----BEGIN CERTIFICATE-----)")
		}
		e.CACertPEM = []byte(certPEM + "\n")
	}
	if (e.CAKMSKeyID == "") != (e.CACertPEM == nil) {
		return e, errors.New("CA_KMS_KEY_ID (or CA_KMS_KEY_ARN) and CA_CERT_PEM go together: set both (the machine CA) or neither")
	}
	return e, nil
}

// baseURL validates an absolute http(s) URL without credentials, query or fragment, and
// without characters that could break out of a quoted shell word (it is written into
// install.sh). The trailing slash is dropped.
func baseURL(name, v string, httpsOnly bool) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", nil
	}
	u, err := neturl.Parse(v)
	ok := err == nil && u.Host != "" && u.User == nil && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery &&
		(u.Scheme == "https" || (u.Scheme == "http" && !httpsOnly)) && !strings.ContainsAny(v, "'\"\\`$ \t\r\n")
	if !ok {
		want := "an http(s) URL"
		if httpsOnly {
			want = "an https URL"
		}
		return "", fmt.Errorf("%s must be %s without credentials, query or quotes, like https://api.example.com, not %q", name, want, v)
	}
	return strings.TrimSuffix(v, "/"), nil
}
