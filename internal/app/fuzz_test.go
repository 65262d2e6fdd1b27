package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/google/uuid"

	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/routes"
	"github.com/optralis/optralis/internal/testenv"
)

// fuzzStack serves every public, auth and agent route through the full handlers (the
// API domain's PublicHandler, the agents domain's AgentHandler with a real certificate
// of an enrolled machine) on a real database and Redis.
type fuzzStack struct {
	d      *testDeps
	api    http.Handler
	agent  http.Handler
	routes []routes.Route
	client string
	token  string // an unlimited install token: "@TOKEN@" in a body
	csr    string // a valid CSR (PEM): "@CSR@" in a body
	mu     sync.Mutex
	cert   *x509.Certificate // replaced when a fuzzed renewal succeeds
	calls  atomic.Uint32     // a fresh source address per call: rate limits do not mask handlers
}

// fuzzNow is the stack's (stopped) clock; seeds date their heartbeats just before it.
var fuzzNow = time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)

func newFuzzStack(tb testing.TB) *fuzzStack {
	tb.Helper()
	clk := authtest.NewClock(fuzzNow)
	authority, err := ca.LoadOrCreateLocal(tb.TempDir(), clk.Now().AddDate(-1, 0, 0))
	if err != nil {
		tb.Fatal(err)
	}
	rc, prefix := testenv.Redis(tb)
	d := &testDeps{
		Config: config.Config{JWTSecret: jwtSecret, Enrolment: config.Enrolment{
			PublicAPIURL: "https://api.example.test", AgentEndpoint: "https://agents.example.test"}},
		Pool: testenv.NewDB(tb, migrate.ModePostgres), Redis: rc, KeyPrefix: prefix, Logger: testenv.Discard(), Clock: clk, CA: authority,
	}
	d.Auth = auth.New(auth.Options{Pool: d.Pool, Redis: rc, KeyPrefix: prefix, Secret: jwtSecret, Clock: clk,
		Hasher: &authtest.Hasher{Cost: 4}, Mailer: &authtest.Mailer{}, DashboardURL: "https://dash.example.com", ForgotMinDuration: -1})
	s := &fuzzStack{d: d, api: d.PublicHandler(), agent: d.AgentHandler()}
	s.client = testenv.Client(tb, d.Pool, "Pro")
	machine := testenv.Machine(tb, d.Pool, s.client, "fuzz-1")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issued, err := certs.Issue(context.Background(), d.Pool, authority,
		certs.IssueRequest{ClientID: s.client, MachineID: machine, PublicKey: &key.PublicKey}, clk.Now())
	if err != nil {
		tb.Fatal(err)
	}
	s.cert = issued.Cert
	userTok := s.session(tb)
	req := httptest.NewRequest("POST", "/api/install-tokens", strings.NewReader(`{"name":"fuzz","max_usage":0}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+userTok)
	w := httptest.NewRecorder()
	s.api.ServeHTTP(w, req)
	var created struct{ Token string }
	if err := json.Unmarshal(w.Body.Bytes(), &created); w.Code != 201 || err != nil || created.Token == "" {
		tb.Fatalf("install token: %d %s", w.Code, w.Body.String())
	}
	s.token = created.Token
	csrKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, csrKey)
	if err != nil {
		tb.Fatal(err)
	}
	s.csr = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	for _, r := range routes.Table() {
		if r.Access == routes.Public || r.Access == routes.Agent || r.Function == routes.FnAuth {
			s.routes = append(s.routes, r)
		}
	}
	return s
}

// route picks the route a fuzz input names ("POST /api/auth/login"), or one by hash.
func (s *fuzzStack) route(name string) routes.Route {
	for _, r := range s.routes {
		if r.Method+" "+r.Path == name {
			return r
		}
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return s.routes[int(h.Sum32()%uint32(len(s.routes)))]
}

// session is the access token of a new user of the client.
func (s *fuzzStack) session(tb testing.TB) string {
	tb.Helper()
	email := "f" + uuid.NewString()[:8] + "@example.com"
	if _, err := s.d.Auth.CreateUser(context.Background(), auth.NewUser{Email: email, Name: "Fuzz", Role: principal.RoleUser,
		ClientID: s.client, Password: pw}); err != nil {
		tb.Fatal(err)
	}
	is, err := s.d.Auth.Login(context.Background(), email, pw, auth.Meta{IP: "192.0.2.9"})
	if err != nil {
		tb.Fatal(err)
	}
	return is.AccessToken
}

// call sends body and query to the route, signed in (a fresh session: a fuzzed logout or
// password change cannot lock out the next input) and with the agent's certificate.
// "@TOKEN@" and "@CSR@" in a body (JSON string contents) become a valid install token and
// CSR, so seeds get past those checks to the fields after them; "@NOW@" a heartbeat
// instant not recorded yet.
func (s *fuzzStack) call(tb testing.TB, r routes.Route, query string, body []byte) *httptest.ResponseRecorder {
	tb.Helper()
	csr, _ := json.Marshal(s.csr)
	b := strings.ReplaceAll(string(body), "@TOKEN@", s.token)
	b = strings.ReplaceAll(b, "@CSR@", strings.Trim(string(csr), `"`))
	n := s.calls.Add(1)
	// A heartbeat instant of its own: an already-recorded one would write nothing.
	b = strings.ReplaceAll(b, "@NOW@", fuzzNow.Add(-time.Duration(n)*time.Millisecond).Format(time.RFC3339Nano))
	req := httptest.NewRequest(r.Method, r.Path, strings.NewReader(b))
	req.URL.RawQuery = query
	req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:40000", byte(n>>16), byte(n>>8), byte(n))
	req.Header.Set("Content-Type", "application/json")
	h := s.api
	switch {
	case r.Access == routes.Agent:
		h = s.agent
		s.mu.Lock()
		req = req.WithContext(identity.WithClientCert(req.Context(), s.cert))
		s.mu.Unlock()
	case r.Access == routes.Session:
		req.Header.Set("Authorization", "Bearer "+s.session(tb))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if r.Path == "/agent/certificate/renew" && w.Code == 200 {
		// The agent renewed: its old certificate is superseded.
		var a renewAnswer
		_ = json.Unmarshal(w.Body.Bytes(), &a)
		blk, _ := pem.Decode([]byte(a.Certificate))
		if blk == nil {
			tb.Fatalf("renewal answer without a certificate: %s", w.Body.String())
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			tb.Fatal(err)
		}
		s.mu.Lock()
		s.cert = c
		s.mu.Unlock()
	}
	return w
}

// FuzzRoutes posts arbitrary bodies and query strings to every public, auth and agent
// route through the full handlers and fails on any 5xx: bad input is the client's error.
// The seed corpus (testdata/fuzz/FuzzRoutes: NUL, invalid UTF-8, unpaired surrogates,
// huge numbers, deep nesting, wrong types, per route) runs in every plain `go test`.
func FuzzRoutes(f *testing.F) {
	s := newFuzzStack(f)
	for _, r := range s.routes {
		f.Add(r.Method+" "+r.Path, "", []byte(`{}`))
	}
	f.Fuzz(func(t *testing.T, route, query string, body []byte) {
		r := s.route(route)
		w := s.call(t, r, query, body)
		if w.Code >= 500 {
			t.Errorf("%s %s?%q with body %q: %d %s", r.Method, r.Path, query, body, w.Code, w.Body.String())
		}
	})
}

// A NUL byte or another control character in the email: 400 naming it (login and forgot
// password), as no account can have such an address; NUL used to reach PostgreSQL and
// answer 500. (Invalid UTF-8 is decoded as U+FFFD by the JSON decoder: an unknown address.)
func TestBadBytesInEmail(t *testing.T) {
	t.Parallel()
	s := newFuzzStack(t)
	for _, path := range []string{"/api/auth/login", "/api/auth/password/forgot"} {
		for _, email := range []string{`a\u0000@example.com`, `a\u0007@example.com`, "a\xff@example.com"} {
			r := routes.Route{Method: "POST", Path: path, Access: routes.Public}
			body := `{"email":"` + email + `"`
			if strings.HasSuffix(path, "login") {
				body += `,"password":"x"`
			}
			w := s.call(t, r, "", []byte(body+"}"))
			if strings.Contains(email, `\u`) && (w.Code != 400 || !strings.Contains(w.Body.String(), `"email"`)) ||
				w.Code >= 500 {
				t.Errorf("%s with %q: %d %s", path, email, w.Code, w.Body.String())
			}
		}
	}
}
