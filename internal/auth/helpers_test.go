package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var secret = []byte("test-secret-of-at-least-32-bytes!!")

// t0 is the tests' starting instant.
var t0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

type env struct {
	t      *testing.T
	pool   *pgxpool.Pool
	redis  *redis.Client
	prefix string
	clock  *authtest.Clock
	hasher *authtest.Hasher
	mailer *authtest.Mailer
	svc    *auth.Service
	client string // a client id
}

type envOption func(*auth.Options)

func withRedis(rc *redis.Client) envOption { return func(o *auth.Options) { o.Redis = rc } }

// newEnv is a service on a fresh database and the test Redis (unless an option says
// otherwise), with a cheap bcrypt cost so tests stay fast.
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, pool: testenv.NewDB(t, migrate.ModePostgres), clock: authtest.NewClock(t0),
		hasher: &authtest.Hasher{Cost: 4}, mailer: &authtest.Mailer{}}
	e.redis, e.prefix = testenv.Redis(t)
	o := auth.Options{Pool: e.pool, Redis: e.redis, Secret: secret, Clock: e.clock, Logger: testenv.Discard(),
		Mailer: e.mailer, DashboardURL: "https://dash.example.com", KeyPrefix: e.prefix, Hasher: e.hasher,
		ForgotMinDuration: -1}
	for _, f := range opts {
		f(&o)
	}
	e.redis = o.Redis
	e.svc = auth.New(o)
	e.client = testenv.Client(t, e.pool, "Pro")
	return e
}

const goodPassword = "Correct-Horse-7-Battery"

type user struct {
	ID, Email, Password, ClientID, Role string
}

// user creates an active user of e.client whose password is current (no change required).
func (e *env) user(role string) user {
	e.t.Helper()
	u := user{Email: "u" + uuid.NewString()[:8] + "@example.com", Password: goodPassword, ClientID: e.client, Role: role}
	if role == principal.RolePlatformAdmin {
		u.ClientID = ""
	}
	id, err := e.svc.CreateUser(context.Background(), auth.NewUser{Email: u.Email, Name: "Test", Role: role, ClientID: u.ClientID, Password: u.Password})
	if err != nil {
		e.t.Fatal(err)
	}
	u.ID = id
	return u
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.pool.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

var meta = auth.Meta{IP: "192.0.2.10", UserAgent: "test-agent/1.0"}

func (e *env) login(u user) auth.Issued {
	e.t.Helper()
	is, err := e.svc.Login(context.Background(), u.Email, u.Password, meta)
	if err != nil {
		e.t.Fatalf("login %s: %v", u.Email, err)
	}
	return is
}

// authenticate runs the middleware's check on a Bearer request.
func (e *env) authenticate(token string) (auth.Session, error) {
	r := httptest.NewRequest(http.MethodGet, "/api/auth/me", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return e.svc.Authenticate(r)
}

func mustUnauthenticated(t *testing.T, err error, what string) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok || e.Code != apperr.Unauthenticated {
		t.Fatalf("%s: got %v, want unauthenticated", what, err)
	}
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func redisDown() *redis.Client { return authtest.DownRedis() }

func bearer(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/auth/me", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}
