package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

// A platform admin publishes an agent version through HTTP; the next heartbeat of a
// machine on that channel answers it, although Redis held the previous version.
func TestAgentVersionPublishedReachesHeartbeats(t *testing.T) {
	t.Parallel()
	s := newEnrolStack(t)
	s.d.Redis, s.d.KeyPrefix = testenv.Redis(t)
	api, agents := s.d.PublicHandler(), s.d.AgentHandler()
	ctx := context.Background()
	client := testenv.Client(t, s.d.Pool, "Pro")
	machine := testenv.Machine(t, s.d.Pool, client, "agent-1")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issued, err := certs.Issue(ctx, s.d.Pool, s.d.CA, certs.IssueRequest{ClientID: client, MachineID: machine, PublicKey: &key.PublicKey}, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	heartbeat := func(cert *x509.Certificate, at time.Time) string {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"recorded_at": at.Format(time.RFC3339Nano), "agent_version": "1.0.0",
			"metrics": map[string]any{"cpu_percent": 12.5, "ram_percent": 40}})
		r := httptest.NewRequest("POST", "/agent/heartbeat", strings.NewReader(string(b)))
		r.Header.Set("Content-Type", "application/json")
		r = r.WithContext(identity.WithClientCert(r.Context(), cert))
		w := httptest.NewRecorder()
		agents.ServeHTTP(w, r)
		var out struct {
			Latest string `json:"latest_agent_version"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); w.Code != 200 || err != nil {
			t.Fatalf("heartbeat: %d %s", w.Code, w.Body.String())
		}
		return out.Latest
	}
	// The version the heartbeats have cached (under this deployment's key prefix).
	s.d.Redis.Set(ctx, s.d.KeyPrefix+"agent:version:stable", "1.0.0", 5*time.Minute)
	if v := heartbeat(issued.Cert, s.clock.Now().Add(-2*time.Second)); v != "1.0.0" {
		t.Fatalf("before publishing: %q", v)
	}

	_, adminTok := s.bearer(principal.RolePlatformAdmin, "")
	_, userTok := s.bearer(principal.RoleAdmin, client)
	release := `{"version":"1.5.0","downloads":{"amd64":{"url":"https://downloads.example.test/1.5.0/agent-amd64","sha256":"` + strings.Repeat("a1", 32) + `"}}}`
	if code, body := call(api, "PUT", "/api/admin/agent-versions/stable", userTok, release); code != 403 {
		t.Fatalf("a client admin published: %d %s", code, body)
	}
	if code, body := call(api, "PUT", "/api/admin/agent-versions/stable", adminTok, release); code != 200 {
		t.Fatalf("publish: %d %s", code, body)
	}
	if v := heartbeat(issued.Cert, s.clock.Now().Add(-time.Second)); v != "1.5.0" {
		t.Fatalf("after publishing: %q", v)
	}
	if code, body := call(api, "GET", "/api/admin/agent-versions", adminTok, ""); code != 200 || !strings.Contains(body, `"version":"1.5.0"`) {
		t.Fatalf("list: %d %s", code, body)
	}
}

// Groups through the guard: users read, client admins write, each client sees its own.
func TestGroupRoutesThroughTheGuard(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	client, other := testenv.Client(t, s.d.Pool, "Pro"), testenv.Client(t, s.d.Pool, "Pro")
	admin, user, otherAdmin := s.account(client, principal.RoleAdmin), s.account(client, principal.RoleUser), s.account(other, principal.RoleAdmin)
	token := func(a account) string {
		t.Helper()
		is, err := s.d.Auth.Login(context.Background(), a.Email, a.Password, auth.Meta{IP: "192.0.2.10"})
		if err != nil {
			t.Fatal(err)
		}
		return is.AccessToken
	}
	adminTok, userTok, otherTok := token(admin), token(user), token(otherAdmin)
	code, body := call(s.h, "POST", "/api/groups", adminTok, `{"name":"Servers","color":"#112233"}`)
	var g struct{ ID string }
	if err := json.Unmarshal([]byte(body), &g); code != 201 || err != nil {
		t.Fatalf("create as client admin: %d %s", code, body)
	}
	machine := testenv.Machine(t, s.d.Pool, client, "web-1")
	if code, body := call(s.h, "PUT", "/api/groups/"+g.ID+"/machines", adminTok, `{"machine_ids":["`+machine+`"]}`); code != 200 {
		t.Fatalf("assign: %d %s", code, body)
	}
	if code, body := call(s.h, "GET", "/api/groups", userTok, ""); code != 200 || !strings.Contains(body, `"name":"Servers"`) || !strings.Contains(body, `"machine_count":1`) {
		t.Fatalf("list as user: %d %s", code, body)
	}
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/api/groups", `{"name":"Mine"}`},
		{"PATCH", "/api/groups/" + g.ID, `{"name":"Mine"}`},
		{"PUT", "/api/groups/" + g.ID + "/machines", `{"machine_ids":[]}`},
		{"DELETE", "/api/groups/" + g.ID, ""},
	} {
		if code, _ := call(s.h, r.method, r.path, userTok, r.body); code != http.StatusForbidden {
			t.Errorf("%s %s as a user: %d", r.method, r.path, code)
		}
	}
	if code, body := call(s.h, "GET", "/api/groups", otherTok, ""); code != 200 || strings.Contains(body, g.ID) {
		t.Fatalf("another client's list: %d %s", code, body)
	}
	if code, _ := call(s.h, "DELETE", "/api/groups/"+g.ID, adminTok, ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
}
