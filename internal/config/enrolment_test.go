package config

import (
	"strings"
	"testing"
)

const testCertPEM = `-----BEGIN CERTIFICATE-----
MIIBezCCASGgAwIBAgIQHlFWiGPh3qkYm3ngh0kV0TAKBggqhkjOPQQDAjAoMREw
DwYDVQQKEwhPcHRyYWxpczETMBEGA1UEAxMKT3B0cmFsaXMgQ0EwHhcNMjYwMTAx
MDAwMDAwWhcNMzYwMTAxMDAwMDAwWjAoMREwDwYDVQQKEwhPcHRyYWxpczETMBEG
A1UEAxMKT3B0cmFsaXMgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQ=
-----END CERTIFICATE-----`

func TestEnrolmentDefaults(t *testing.T) {
	c, err := Load(env(valid()))
	if err != nil {
		t.Fatal(err)
	}
	e := c.Enrolment
	if e.PublicAPIURL != "" || e.AgentEndpoint != "" || e.AgentDownloadURL != "" || e.CAKMSKeyID != "" || e.CACertPEM != nil ||
		e.AllowServerGeneratedKeys || e.EndOfLifeAPIURL != "https://endoflife.date/api" {
		t.Fatalf("defaults: %+v", e)
	}
}

func TestEnrolmentValues(t *testing.T) {
	m := valid()
	m["PUBLIC_API_URL"] = "https://api.optralis.example/"
	m["AGENT_ENDPOINT"] = "https://agents.optralis.example"
	m["AGENT_DOWNLOAD_URL"] = "https://downloads.optralis.example/agent/v1"
	m["ENDOFLIFE_API_URL"] = "http://127.0.0.1:9999/api"
	m["ALLOW_SERVER_GENERATED_KEYS"] = "true"
	m["CA_KMS_KEY_ID"] = "arn:aws:kms:eu-west-3:111122223333:key/abcd"
	m["CA_CERT_PEM"] = testCertPEM
	c, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	e := c.Enrolment
	m["CA_KMS_KEY_ARN"] = m["CA_KMS_KEY_ID"] // the same key under both names is fine
	if c, err = Load(env(m)); err != nil || c.Enrolment.CAKMSKeyID != m["CA_KMS_KEY_ID"] {
		t.Fatalf("same key twice: %v %q", err, c.Enrolment.CAKMSKeyID)
	}
	if e.PublicAPIURL != "https://api.optralis.example" || e.AgentEndpoint != "https://agents.optralis.example" ||
		e.AgentDownloadURL != "https://downloads.optralis.example/agent/v1" || e.EndOfLifeAPIURL != "http://127.0.0.1:9999/api" ||
		!e.AllowServerGeneratedKeys || e.CAKMSKeyID != m["CA_KMS_KEY_ID"] || !strings.HasPrefix(string(e.CACertPEM), "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("values: %+v", e)
	}
}

func TestEnrolmentRefusals(t *testing.T) {
	cases := []struct {
		name string
		set  map[string]string
		want string
	}{
		{"api url not a URL", map[string]string{"PUBLIC_API_URL": "api.optralis.example"}, "PUBLIC_API_URL must be"},
		{"api url with quote", map[string]string{"PUBLIC_API_URL": "https://api.example/'x"}, "PUBLIC_API_URL must be"},
		{"api url with query", map[string]string{"PUBLIC_API_URL": "https://api.example/?a=b"}, "PUBLIC_API_URL must be"},
		{"api url with credentials", map[string]string{"PUBLIC_API_URL": "https://u:p@api.example"}, "PUBLIC_API_URL must be"},
		{"agent endpoint over http", map[string]string{"AGENT_ENDPOINT": "http://agents.example"}, "AGENT_ENDPOINT must be an https URL"},
		{"download url ftp", map[string]string{"AGENT_DOWNLOAD_URL": "ftp://downloads.example"}, "AGENT_DOWNLOAD_URL must be"},
		{"endoflife not a URL", map[string]string{"ENDOFLIFE_API_URL": "endoflife"}, "ENDOFLIFE_API_URL must be"},
		{"bad bool", map[string]string{"ALLOW_SERVER_GENERATED_KEYS": "maybe"}, "ALLOW_SERVER_GENERATED_KEYS must be"},
		{"kms without cert", map[string]string{"CA_KMS_KEY_ID": "alias/optralis-ca"}, "and CA_CERT_PEM go together"},
		{"arn without cert", map[string]string{"CA_KMS_KEY_ARN": "arn:aws:kms:eu-west-3:1:key/y"}, "and CA_CERT_PEM go together"},
		{"cert without kms", map[string]string{"CA_CERT_PEM": testCertPEM}, "and CA_CERT_PEM go together"},
		{"cert not PEM", map[string]string{"CA_KMS_KEY_ID": "alias/x", "CA_CERT_PEM": "MIIB..."}, "CA_CERT_PEM must be"},
		{"two different keys", map[string]string{"CA_KMS_KEY_ID": "alias/x", "CA_KMS_KEY_ARN": "arn:aws:kms:eu-west-3:1:key/y", "CA_CERT_PEM": testCertPEM}, "name different keys"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := valid()
			for k, v := range tc.set {
				m[k] = v
			}
			_, err := Load(env(m))
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v: want one line containing %q", err, tc.want)
			}
		})
	}
}
