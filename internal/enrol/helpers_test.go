package enrol_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/enrol"
	"github.com/optralis/optralis/internal/fleetcache"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 4, 7, 10, 0, 0, 0, time.UTC)

// clock is a clock the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type env struct {
	t        *testing.T
	pool     *pgxpool.Pool
	redis    *redis.Client
	cache    cache.Store // the env's Redis under the test's key prefix
	clock    *clock
	d        enrol.Deps
	clientID string
	user     principal.Principal
	handler  http.Handler
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	rc, prefix := testenv.Redis(t)
	authority, err := ca.LoadOrCreateLocal(t.TempDir(), t0.AddDate(-1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, pool: pool, redis: rc, cache: cache.Store{Redis: rc, Prefix: prefix}, clock: &clock{now: t0}}
	e.d = enrol.Deps{Pool: pool, Cache: e.cache, CA: authority, Clock: e.clock, Logger: testenv.Discard(),
		AgentEndpoint: "https://agents.example.test", PublicAPIURL: "https://api.example.test"}
	e.clientID = testenv.Client(t, pool, "Pro")
	e.user = e.newUser(e.clientID)
	e.rebuild()
	return e
}

func (e *env) newUser(clientID string) principal.Principal {
	e.t.Helper()
	var id string
	if err := e.pool.QueryRow(context.Background(), `INSERT INTO users (client_id, email, password_hash, role) VALUES ($1, md5(random()::text) || '@example.com', 'x', 'user') RETURNING id`, clientID).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return principal.Principal{UserID: id, ClientID: clientID, Role: principal.RoleUser}
}

// rebuild serves the handlers with the current e.d, on their real route patterns.
func (e *env) rebuild() {
	mux := http.NewServeMux()
	mux.Handle("POST /api/public/bootstrap", enrol.HandleBootstrap(e.d))
	mux.Handle("GET /install.sh", enrol.HandleInstallScript(e.d))
	mux.Handle("POST /api/install-tokens", enrol.HandleCreateToken(e.d))
	mux.Handle("GET /api/install-tokens", enrol.HandleListTokens(e.d))
	mux.Handle("DELETE /api/install-tokens/{id}", enrol.HandleRevokeToken(e.d))
	e.handler = mux
}

type answer struct {
	Code   int
	Body   string
	Header http.Header
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(a.Body), v); err != nil {
		t.Fatalf("%d %s: %v", a.Code, a.Body, err)
	}
}

var requestIDField = regexp.MustCompile(`,?"request_id":"[^"]*"`)

// errorBody is the answer without its request id, to compare refusals.
func (a answer) errorBody() string { return requestIDField.ReplaceAllString(a.Body, "") }

func (e *env) do(method, path, body string, p *principal.Principal) answer {
	r := httptest.NewRequest(method, path, bytes.NewBufferString(body))
	r.Header.Set("Content-Type", "application/json")
	if p != nil {
		r = r.WithContext(principal.With(r.Context(), *p))
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	return answer{w.Code, w.Body.String(), w.Header()}
}

// countKey is where the client's machine count is cached.
func (e *env) countKey(clientID string) string { return e.cache.Key(fleetcache.CountKey(clientID)) }

// token creates an install token of the env's client through the store.
func (e *env) token(ttl time.Duration, maxUsage int) (enrol.Token, string) {
	e.t.Helper()
	tok, secret, err := enrol.CreateToken(context.Background(), e.pool, enrol.CreateRequest{
		ClientID: e.clientID, UserID: e.user.UserID, Name: "test", TTL: ttl, MaxUsage: maxUsage}, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok, secret
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.pool.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func csrFor(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) string {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{Subject: pkix.Name{CommonName: "agent"}}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// bootstrapBody is a valid bootstrap request; change fields through mod.
func bootstrapBody(t testing.TB, token, csr string, mod func(m map[string]any)) string {
	t.Helper()
	m := map[string]any{"token": token, "arch": "amd64", "hostname": "web-01.example.com", "os": "linux",
		"os_version": "Debian GNU/Linux 12 (bookworm)", "csr": csr}
	if mod != nil {
		mod(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
