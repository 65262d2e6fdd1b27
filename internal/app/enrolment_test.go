package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	json "github.com/goccy/go-json"
	"github.com/google/uuid"

	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/routes"
	"github.com/optralis/optralis/internal/testenv"
)

type enrolStack struct {
	t     *testing.T
	d     *testDeps
	clock *authtest.Clock
}

func newEnrolStack(t *testing.T) *enrolStack {
	t.Helper()
	clk := authtest.NewClock(time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC))
	authority, err := ca.LoadOrCreateLocal(t.TempDir(), clk.Now().AddDate(-1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	d := &testDeps{
		Config: config.Config{JWTSecret: jwtSecret, Enrolment: config.Enrolment{
			PublicAPIURL: "https://api.example.test", AgentEndpoint: "https://agents.example.test"}},
		Pool: testenv.NewDB(t, migrate.ModePostgres), Logger: testenv.Discard(), Clock: clk, CA: authority,
	}
	d.Auth = auth.New(auth.Options{Pool: d.Pool, Secret: jwtSecret, Clock: clk, Hasher: &authtest.Hasher{Cost: 4}})
	return &enrolStack{t: t, d: d, clock: clk}
}

// bearer signs in a new account of the role (client "" for a platform admin).
func (s *enrolStack) bearer(role, clientID string) (string, string) {
	s.t.Helper()
	email := "e" + uuid.NewString()[:8] + "@example.com"
	id, err := s.d.Auth.CreateUser(context.Background(), auth.NewUser{Email: email, Role: role, ClientID: clientID, Password: pw})
	if err != nil {
		s.t.Fatal(err)
	}
	is, err := s.d.Auth.Login(context.Background(), email, pw, auth.Meta{IP: "192.0.2.9"})
	if err != nil {
		s.t.Fatal(err)
	}
	return id, is.AccessToken
}

func call(h http.Handler, method, path, token, body string) (int, string) {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

// The enrolment routes behind the real guard: who may call what, and a token created by a
// client user enrols a machine through the public bootstrap.
func TestEnrolmentRoutesThroughTheGuard(t *testing.T) {
	t.Parallel()
	s := newEnrolStack(t)
	h := contract(t, s.d.PublicHandler())
	client := testenv.Client(t, s.d.Pool, "Pro")
	_, userTok := s.bearer(principal.RoleUser, client)
	_, adminTok := s.bearer(principal.RolePlatformAdmin, "")

	// Public: requirements and installer, without any credential.
	if code, body := call(h, "GET", "/agent/requirements", "", ""); code != 200 || !strings.Contains(body, `"linux_enabled":true`) {
		t.Fatalf("/agent/requirements: %d %s", code, body)
	}
	if code, body := call(h, "GET", "/install.sh", "", ""); code != 200 || !strings.Contains(body, "API_URL='https://api.example.test'") {
		t.Fatalf("/install.sh: %d", code)
	}
	// Platform admin routes: the admin yes, a client user no, nobody no.
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/admin/agent-requirements", ""},
		{"PUT", "/api/admin/agent-requirements", `{"windows_client_enabled":true,"windows_client_min_build":17763,"windows_server_enabled":false,"windows_server_min_build":0,"linux_enabled":true,"unsupported_os_message":"Contact support."}`},
		{"GET", "/api/admin/windows-builds", ""},
	} {
		if code, body := call(h, r.method, r.path, adminTok, r.body); code != 200 {
			t.Errorf("%s %s as platform admin: %d %s", r.method, r.path, code, body)
		}
		if code, _ := call(h, r.method, r.path, userTok, r.body); code != 403 {
			t.Errorf("%s %s as client user: %d", r.method, r.path, code)
		}
		if code, _ := call(h, r.method, r.path, "", r.body); code != 401 {
			t.Errorf("%s %s anonymous: %d", r.method, r.path, code)
		}
	}
	if code, body := call(h, "GET", "/agent/requirements", "", ""); !strings.Contains(body, `"windows_client_min_build":17763`) || code != 200 {
		t.Fatalf("update not visible publicly: %s", body)
	}
	// Client routes: a platform admin has no client.
	if code, _ := call(h, "POST", "/api/install-tokens", adminTok, `{}`); code != 403 {
		t.Errorf("platform admin creating a client token: %d", code)
	}

	code, body := call(h, "POST", "/api/install-tokens", userTok, `{"name":"rack 4","max_usage":1}`)
	var created struct {
		ID, Token string
	}
	if err := json.Unmarshal([]byte(body), &created); code != 201 || err != nil {
		t.Fatalf("create token: %d %s", code, body)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	reqBody, _ := json.Marshal(map[string]string{"token": created.Token, "arch": "arm64", "hostname": "rack4-node1", "os": "linux", "csr": csr})
	code, body = call(h, "POST", "/api/public/bootstrap", "", string(reqBody))
	var res struct {
		MachineID string `json:"machine_id"`
	}
	if err := json.Unmarshal([]byte(body), &res); code != 201 || err != nil {
		t.Fatalf("bootstrap: %d %s", code, body)
	}
	if code, body := call(h, "GET", "/api/machines/"+res.MachineID+"/certificate", userTok, ""); code != 200 || !strings.Contains(body, `"status":"valid"`) {
		t.Fatalf("certificate: %d %s", code, body)
	}
	if code, body := call(h, "POST", "/api/machines/"+res.MachineID+"/certificate/revoke", userTok, `{"reason":"decommissioned"}`); code != 200 || !strings.Contains(body, `"status":"revoked"`) {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if code, _ := call(h, "DELETE", "/api/install-tokens/"+created.ID, userTok, ""); code != 204 {
		t.Fatalf("revoke token: %d", code)
	}
}

// The agent guard: a verified certificate passes only while it is its machine's active
// one; the handler learns the machine. (No agent route exists yet: the heartbeat issue adds
// them; this one is a test route served through the real guard.)
func TestAgentGuardChecksTheRecord(t *testing.T) {
	t.Parallel()
	s := newEnrolStack(t)
	ctx := context.Background()
	client := testenv.Client(t, s.d.Pool, "Pro")
	machine := testenv.Machine(t, s.d.Pool, client, "agent-1")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issued, err := certs.Issue(ctx, s.d.Pool, s.d.CA, certs.IssueRequest{ClientID: client, MachineID: machine, PublicKey: &key.PublicKey}, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	whoami := testRoute{Route: routes.Route{Function: "test", Method: "GET", Path: "/agent/whoami", Access: routes.Agent},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a, ok := certs.AgentFrom(r.Context())
			if !ok {
				t.Error("handler reached without an agent")
			}
			httpx.WriteJSON(w, 200, a)
		})}
	h := s.d.AgentHandler(whoami)
	get := func(cert *x509.Certificate) (int, string) {
		r := httptest.NewRequest("GET", "/agent/whoami", nil)
		if cert != nil {
			r = r.WithContext(identity.WithClientCert(r.Context(), cert))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	if code, body := get(issued.Cert); code != 200 || !strings.Contains(body, machine) || !strings.Contains(body, client) {
		t.Fatalf("active certificate: %d %s", code, body)
	}
	if code, _ := get(nil); code != 401 {
		t.Fatalf("no certificate: %d", code)
	}
	if _, _, err := certs.Revoke(ctx, s.d.Pool, certs.RevokeRequest{ClientID: client, MachineID: machine, Reason: "test"}, s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	code, body := get(issued.Cert)
	if code != 401 || !strings.Contains(body, "client certificate not accepted") || strings.Contains(body, "revoked") {
		t.Fatalf("revoked certificate: %d %s", code, body)
	}
}

// Without a CA (CA_KMS_KEY_ARN unset on a Lambda) enrolment says it is not configured.
func TestBootstrapWithoutCA(t *testing.T) {
	t.Parallel()
	s := newEnrolStack(t)
	s.d.CA = nil
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	body, _ := json.Marshal(map[string]string{"token": strings.Repeat("A", 43) + "=", "arch": "amd64", "hostname": "h", "os": "linux",
		"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	code, out := call(s.d.FunctionHandler(routes.FnBootstrap), "POST", "/api/public/bootstrap", "", string(body))
	if code != 503 || !strings.Contains(out, "enrolment is not configured") {
		t.Fatalf("%d %s", code, out)
	}
}

// The bootstrap and admin functions through the real Lambda JSON path (REST events).
func TestEnrolmentFunctionsOnLambda(t *testing.T) {
	t.Parallel()
	s := newEnrolStack(t)
	_, adminTok := s.bearer(principal.RolePlatformAdmin, "")
	invoke := func(fn, method, path, token string) events.APIGatewayProxyResponse {
		t.Helper()
		ev := events.APIGatewayProxyRequest{HTTPMethod: method, Path: path, Resource: path,
			Headers: map[string]string{}, RequestContext: events.APIGatewayProxyRequestContext{
				HTTPMethod: method, Path: path, Identity: events.APIGatewayRequestIdentity{SourceIP: "198.51.100.4"}}}
		if token != "" {
			ev.Headers["Authorization"] = "Bearer " + token
		}
		in, _ := json.Marshal(ev)
		return invokeREST(t, s.d.FunctionHandler(fn), in)
	}
	if r := invoke(routes.FnBootstrap, "GET", "/agent/requirements", ""); r.StatusCode != 200 || !strings.Contains(r.Body, "linux_enabled") {
		t.Fatalf("bootstrap function, /agent/requirements: %d %s", r.StatusCode, r.Body)
	}
	if r := invoke(routes.FnBootstrap, "GET", "/install.sh", ""); r.StatusCode != 200 || !strings.HasPrefix(r.Body, "#!/bin/sh") {
		t.Fatalf("bootstrap function, /install.sh: %d", r.StatusCode)
	}
	if r := invoke(routes.FnAdmin, "GET", "/api/admin/windows-builds", adminTok); r.StatusCode != 200 || !strings.Contains(r.Body, "Windows Server 2025") {
		t.Fatalf("admin function, windows builds: %d %s", r.StatusCode, r.Body)
	}
	// Each function serves only its own routes.
	if r := invoke(routes.FnAdmin, "GET", "/agent/requirements", ""); r.StatusCode != 404 {
		t.Fatalf("admin function serving a bootstrap route: %d", r.StatusCode)
	}
}
