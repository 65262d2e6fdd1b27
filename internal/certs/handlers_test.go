package certs_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

type answer struct {
	Code int
	Body string
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(a.Body), v); err != nil {
		t.Fatalf("%s: %v", a.Body, err)
	}
}

// call runs a handler the way the guard would: the route pattern for {id} and the
// caller's principal in the context.
func call(h http.Handler, pattern, method, path, body string, p principal.Principal) answer {
	mux := http.NewServeMux()
	mux.Handle(pattern, h)
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if p.UserID != "" {
		r = r.WithContext(principal.With(r.Context(), p))
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return answer{w.Code, w.Body.String()}
}

func TestCertificateHandlers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := t0.Add(time.Hour)
	d := certs.Deps{Pool: e.pool, Clock: clock.Fixed(now), Logger: testenv.Discard()}
	get := func(id string, p principal.Principal) answer {
		return call(certs.HandleGet(d), "GET /api/machines/{id}/certificate", "GET", "/api/machines/"+id+"/certificate", "", p)
	}
	revoke := func(id, body string, p principal.Principal) answer {
		return call(certs.HandleRevoke(d), "POST /api/machines/{id}/certificate/revoke", "POST", "/api/machines/"+id+"/certificate/revoke", body, p)
	}
	var userID string
	if err := e.pool.QueryRow(context.Background(), `INSERT INTO users (client_id, email, password_hash, role) VALUES ($1, 'u@example.com', 'x', 'user') RETURNING id`, e.clientID).Scan(&userID); err != nil {
		t.Fatal(err)
	}
	me := principal.Principal{UserID: userID, ClientID: e.clientID, Role: principal.RoleUser}

	// No certificate yet: unknown; revoking it is a conflict.
	var v struct {
		certs.View
		Revoked bool `json:"revoked"`
	}
	a := get(e.machineID, me)
	a.json(t, &v)
	if a.Code != 200 || v.Status != certs.StatusUnknown || v.Serial != "" {
		t.Fatalf("before issuance: %d %s", a.Code, a.Body)
	}
	if a := revoke(e.machineID, "", me); a.Code != 409 {
		t.Fatalf("revoke without certificate: %d %s", a.Code, a.Body)
	}

	issued := e.issue(e.machineID, t0)
	a = get(e.machineID, me)
	a.json(t, &v)
	if a.Code != 200 || v.Status != certs.StatusValid || v.Serial != issued.Serial || v.DaysRemaining == nil || *v.DaysRemaining != 364 {
		t.Fatalf("after issuance: %d %s", a.Code, a.Body)
	}

	// Bad input.
	for name, body := range map[string]string{
		"reason too long":   `{"reason":"` + strings.Repeat("x", 501) + `"}`,
		"control character": `{"reason":"a\u0000b"}`,
		"unknown field":     `{"why":"x"}`,
		"not JSON":          `reason=x`,
	} {
		if a := revoke(e.machineID, body, me); a.Code != 400 {
			t.Errorf("%s: %d %s", name, a.Code, a.Body)
		}
	}
	if a := revoke(e.machineID, `{"reason":"`+strings.Repeat("x", 17<<10)+`"}`, me); a.Code != 413 {
		t.Errorf("oversized body: %d", a.Code)
	}

	// Another client's caller, a malformed id, an unknown machine: 404, nothing revoked.
	other := principal.Principal{UserID: userID, ClientID: testenv.Client(t, e.pool, "Pro"), Role: principal.RoleAdmin}
	for name, c := range map[string]struct {
		id string
		p  principal.Principal
	}{
		"other client":  {e.machineID, other},
		"malformed id":  {"not-a-uuid", me},
		"unknown":       {"00000000-0000-0000-0000-000000000042", me},
		"upper-case id": {strings.ToUpper("00000000-0000-0000-0000-0000000000ab"), me},
	} {
		if a := get(c.id, c.p); a.Code != 404 || strings.Contains(a.Body, issued.Serial) {
			t.Errorf("get, %s: %d %s", name, a.Code, a.Body)
		}
		if a := revoke(c.id, `{}`, c.p); a.Code != 404 {
			t.Errorf("revoke, %s: %d %s", name, a.Code, a.Body)
		}
	}
	if a := get(e.machineID, principal.Principal{}); a.Code != 401 {
		t.Errorf("without principal: %d", a.Code)
	}

	// Revocation: recorded with the reason, audited, effective for the agent, idempotent.
	a = revoke(e.machineID, `{"reason":"laptop stolen"}`, me)
	a.json(t, &v)
	if a.Code != 200 || v.Status != certs.StatusRevoked || !v.Revoked || v.RevocationReason != "laptop stolen" {
		t.Fatalf("revoke: %d %s", a.Code, a.Body)
	}
	if _, _, err := certs.CheckPresented(context.Background(), e.pool, issued.Cert, now); err == nil {
		t.Fatal("revoked certificate still accepted")
	}
	if m := e.machine(e.machineID); m.Revoke == nil || !m.Revoke.Equal(now) {
		t.Fatalf("machines.cert_revoked_at %v", m.Revoke)
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'certificate_revoked' AND user_id = $1 AND machine_id = $2
		AND details->>'serial' = $3 AND details->>'reason' = 'laptop stolen' AND ip_address = '192.0.2.1'`, userID, e.machineID, issued.Serial); n != 1 {
		t.Fatalf("%d audit entries", n)
	}
	a = revoke(e.machineID, "", me)
	a.json(t, &v)
	if a.Code != 200 || v.Revoked || v.Status != certs.StatusRevoked || v.RevocationReason != "laptop stolen" {
		t.Fatalf("second revoke: %d %s", a.Code, a.Body)
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'certificate_revoked'`); n != 1 {
		t.Fatalf("idempotent revoke wrote %d entries", n)
	}
	a = get(e.machineID, me)
	a.json(t, &v)
	if v.Status != certs.StatusRevoked {
		t.Fatalf("after revoke: %s", a.Body)
	}
	// Default reason.
	e.issue(e.machineID, now)
	a = revoke(e.machineID, "", me)
	a.json(t, &v)
	if a.Code != 200 || v.RevocationReason != certs.DefaultRevocationReason {
		t.Fatalf("default reason: %s", a.Body)
	}
}
