package app_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/principal"
)

// Inputs found by a review to give a 500 or to be ignored silently: each is now a 400
// naming the field, and nothing changes.
func TestHostileQueryAndDateInputs(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	f := newMDFixture(t, s, "Trial")
	m := "/api/machines/" + f.machineID

	// A list cursor whose key holds a NUL (PostgreSQL refuses it in text).
	raw, _ := json.Marshal(map[string]string{"s": "hostname", "k": "a\x00b", "id": "00000000-0000-0000-0000-000000000001"})
	f.badField("GET", "/api/machines?cursor="+base64.RawURLEncoding.EncodeToString(raw), f.userToken, "", "cursor")

	// Dates JSON cannot write back (UTC year 10000), and a range wholly before the
	// licence's retention.
	f.badField("GET", m+"/metrics?from=9999-12-31T22:00:00-01:00&to=9999-12-31T23:00:00-01:00", f.userToken, "", "to")
	f.badField("GET", m+"/smart?device=sda&from=9999-12-31T22:00:00-01:00&to=9999-12-31T23:00:00-01:00", f.userToken, "", "to")
	f.badField("GET", m+"/metrics?from=2001-01-01T00:00:00Z&to=2001-01-01T01:00:00Z", f.userToken, "", "to")

	// Unknown and repeated query parameters are named, not ignored.
	f.badField("GET", m+"/metrics?bogus=1", f.userToken, "", "bogus")
	f.badField("GET", m+"/inventory?section=security&section=ports", f.userToken, "", "section")
	f.badField("GET", m+"/drift?x=1", f.userToken, "", "x")

	admin := s.bearer(s.account("", principal.RolePlatformAdmin))
	f.badField("PATCH", "/api/admin/clients/"+f.clientID, admin, `{"license_expires_at":"9999-12-31T23:59:59-01:00"}`, "license_expires_at")
}

// Changes through the API that a review found left cached answers stale: a certificate
// revocation (the machine list shows the certificate status) and the client's default
// collector configuration (GET /api/client shows the row's updated_at).
func TestRevocationAndClientConfigRefreshCaches(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	f := newMDFixture(t, s, "Pro")
	if _, err := s.d.Pool.Exec(t.Context(), `UPDATE machines SET cert_serial = 'ab', cert_issued_at = $2, cert_expires_at = $3 WHERE id = $1`,
		f.machineID, s.clock.Now().AddDate(0, 0, -1), s.clock.Now().AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.d.Pool.Exec(t.Context(), `INSERT INTO client_certificates (client_id, machine_id, serial, issued_at, expires_at, created_at)
		VALUES ($1, $2, 'ab', $3, $4, $3)`, f.clientID, f.machineID, s.clock.Now().AddDate(0, 0, -1), s.clock.Now().AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if _, body := f.get("/api/machines", nil); !strings.Contains(body, `"cert_status":"valid"`) {
		t.Fatalf("list before the revocation: %s", body)
	}
	if code, body := call(s.h, "POST", "/api/machines/"+f.machineID+"/certificate/revoke", f.userToken, `{"reason":"lost"}`); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if _, body := f.get("/api/machines", nil); !strings.Contains(body, `"cert_status":"revoked"`) {
		t.Fatalf("the cached list still shows the revoked certificate as valid: %s", body)
	}

	var before, after struct {
		UpdatedAt string `json:"updated_at"`
	}
	if _, body := f.get("/api/client", &before); before.UpdatedAt == "" {
		t.Fatalf("GET /api/client: %s", body)
	}
	s.clock.Advance(2 * time.Second)
	if code, body := call(s.h, "PUT", "/api/client/collector-config", f.adminToken, `{"software":{"enabled":false}}`); code != 200 {
		t.Fatalf("client config: %d %s", code, body)
	}
	f.get("/api/client", &after)
	if after.UpdatedAt == before.UpdatedAt {
		t.Fatalf("GET /api/client still serves the row cached before the change (updated_at %s)", after.UpdatedAt)
	}
}
