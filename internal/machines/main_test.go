package machines_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/machines"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)

// env is a database, the test Redis and one client with a user, served by the handlers
// the way the router binds them.
type env struct {
	t      *testing.T
	pool   *pgxpool.Pool
	store  cache.Store
	now    time.Time
	client string
	me     principal.Principal
	mux    *http.ServeMux
}

func newEnv(t *testing.T, rc *redis.Client) *env {
	t.Helper()
	e := &env{t: t, pool: testenv.NewDB(t, migrate.ModePostgres), now: t0}
	if rc == nil {
		var prefix string
		rc, prefix = testenv.Redis(t)
		e.store = cache.Store{Redis: rc, Prefix: prefix, Logger: testenv.Discard()}
	} else {
		e.store = cache.Store{Redis: rc, Prefix: "down:", Logger: testenv.Discard()}
	}
	e.client = testenv.Client(t, e.pool, "Pro")
	e.me = e.user(e.client, principal.RoleAdmin)
	d := machines.Deps{Pool: e.pool, Cache: e.store, Clock: clockFunc(func() time.Time { return e.now }), Logger: testenv.Discard()}
	e.mux = http.NewServeMux()
	e.mux.Handle("GET /api/machines", machines.HandleList(d))
	e.mux.Handle("GET /api/machines/{id}", machines.HandleGet(d))
	e.mux.Handle("PATCH /api/machines/{id}", machines.HandlePatch(d))
	e.mux.Handle("DELETE /api/machines/{id}", machines.HandleDelete(d))
	e.mux.Handle("GET /api/overview", machines.HandleOverview(d))
	return e
}

type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

var _ clock.Clock = clockFunc(nil)

func (e *env) user(clientID, role string) principal.Principal {
	e.t.Helper()
	var id string
	if err := e.pool.QueryRow(context.Background(), `INSERT INTO users (client_id, email, password_hash, role)
		VALUES ($1, 'u' || substr(md5(random()::text), 1, 10) || '@example.com', 'x', $2) RETURNING id`, clientID, role).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return principal.Principal{UserID: id, ClientID: clientID, Role: role}
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.pool.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

func (e *env) machine(clientID, hostname string) string {
	e.t.Helper()
	return testenv.Machine(e.t, e.pool, clientID, hostname)
}

func (e *env) group(clientID, name string) string {
	e.t.Helper()
	var id string
	if err := e.pool.QueryRow(context.Background(), `INSERT INTO machine_groups (client_id, name, color) VALUES ($1, $2, '#112233') RETURNING id`,
		clientID, name).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

type answer struct {
	t    *testing.T
	Code int
	Body string
}

func (a answer) json(v any) {
	a.t.Helper()
	if err := json.Unmarshal([]byte(a.Body), v); err != nil {
		a.t.Fatalf("%d %s: %v", a.Code, a.Body, err)
	}
}

// fields is the 400's named fields.
func (a answer) fields() map[string]string {
	var e struct {
		Error struct {
			Fields map[string]string `json:"fields"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(a.Body), &e)
	return e.Error.Fields
}

func (e *env) call(p principal.Principal, method, path, body string) answer {
	e.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r = r.WithContext(principal.With(r.Context(), p))
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	return answer{e.t, w.Code, w.Body.String()}
}

func (e *env) list(query string) machines.Page {
	e.t.Helper()
	a := e.call(e.me, "GET", "/api/machines"+query, "")
	if a.Code != 200 {
		e.t.Fatalf("GET /api/machines%s: %d %s", query, a.Code, a.Body)
	}
	var p machines.Page
	a.json(&p)
	return p
}

func ptr[T any](v T) *T { return &v }
