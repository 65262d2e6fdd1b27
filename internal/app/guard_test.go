package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/routes"
	"github.com/optralis/optralis/internal/testenv"
)

// The guard on each dashboard access level, for each kind of caller, including one who
// must change the password: only Session routes answer them.
func TestDashboardGuardMatrix(t *testing.T) {
	t.Parallel()
	clk := authtest.NewClock(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
	pool := testenv.NewDB(t, migrate.ModePostgres)
	core := Core{Pool: pool, Logger: testenv.Discard(), Clock: clk}
	d := struct {
		Pool *pgxpool.Pool
		Auth *auth.Service
	}{pool, auth.New(auth.Options{Pool: pool, Secret: []byte(strings.Repeat("g", 32)), Clock: clk, Hasher: &authtest.Hasher{Cost: 4}})}
	guards := Guards{Dashboard: d.Auth.Guard}
	ctx := context.Background()
	client := testenv.Client(t, d.Pool, "Pro")
	const pw = "Guard-Matrix-Pass-1"
	mk := func(role, clientID string, mustChange bool) (principal.Principal, string) {
		email := role + "-" + uuid.NewString()[:8] + "@example.com"
		id, err := d.Auth.CreateUser(ctx, auth.NewUser{Email: email, Role: role, ClientID: clientID, Password: pw, MustChangePassword: mustChange})
		if err != nil {
			t.Fatal(err)
		}
		is, err := d.Auth.Login(ctx, email, pw, auth.Meta{IP: "192.0.2.1"})
		if err != nil {
			t.Fatal(err)
		}
		return principal.Principal{UserID: id, ClientID: clientID, Role: role, Email: email}, is.AccessToken
	}
	callers := map[string]struct {
		p     principal.Principal
		token string
	}{}
	for name, c := range map[string]struct {
		role, client string
		must         bool
	}{
		"user":               {principal.RoleUser, client, false},
		"client admin":       {principal.RoleAdmin, client, false},
		"platform admin":     {principal.RolePlatformAdmin, "", false},
		"must change":        {principal.RoleAdmin, client, true},
		"admin, must change": {principal.RolePlatformAdmin, "", true},
	} {
		p, tok := mk(c.role, c.client, c.must)
		callers[name] = struct {
			p     principal.Principal
			token string
		}{p, tok}
	}

	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := principal.From(r.Context())
		if !ok {
			t.Error("handler reached without a principal")
		}
		httpx.WriteJSON(w, 200, p)
	})
	levels := map[string]routes.Access{"user": routes.User, "client admin": routes.ClientAdmin, "platform admin": routes.PlatformAdmin,
		"session": routes.Session, "unknown": routes.Access(99)}
	// want[level][caller] = status and code
	type want struct {
		status int
		code   string
	}
	ok, forbidden, change, unauth := want{200, ""}, want{403, "forbidden"}, want{403, "password_change_required"}, want{401, "unauthenticated"}
	expect := map[string]map[string]want{
		"user":           {"user": ok, "client admin": ok, "platform admin": forbidden, "must change": change, "admin, must change": forbidden},
		"client admin":   {"user": forbidden, "client admin": ok, "platform admin": forbidden, "must change": change, "admin, must change": forbidden},
		"platform admin": {"user": forbidden, "client admin": forbidden, "platform admin": ok, "must change": forbidden, "admin, must change": change},
		"session":        {"user": ok, "client admin": ok, "platform admin": ok, "must change": ok, "admin, must change": ok},
		"unknown":        {"user": unauth, "client admin": unauth, "platform admin": unauth, "must change": unauth, "admin, must change": unauth},
	}
	for lname, level := range levels {
		// An unknown level has no guard: Bind refuses the row, and the guard itself fails closed.
		row := routes.Route{Function: "test", Method: "GET", Path: "/x", Access: level}
		h, err := Bind([]routes.Route{row}, Handlers{"GET /x": echo}, guards, core)
		if lname == "unknown" {
			if err == nil {
				t.Fatal("Bind accepted an access level without a guard")
			}
			h = guard(row, echo, guards, core)
		} else if err != nil {
			t.Fatal(err)
		}
		for cname, c := range callers {
			r := httptest.NewRequest("GET", "/x", nil)
			r.Header.Set("Authorization", "Bearer "+c.token)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			var body struct {
				principal.Principal
				Error struct{ Code string } `json:"error"`
			}
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			exp := expect[lname][cname]
			if w.Code != exp.status || body.Error.Code != exp.code {
				t.Errorf("%s route, %s caller: %d %s, want %d %s", lname, cname, w.Code, body.Error.Code, exp.status, exp.code)
			}
			if w.Code == 200 && body.Principal != c.p {
				t.Errorf("%s route, %s caller: principal %+v, want %+v", lname, cname, body.Principal, c.p)
			}
		}
		// No credentials at all.
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
		if w.Code != 401 {
			t.Errorf("%s route without a token: %d", lname, w.Code)
		}
	}

	// Changing the password lifts the gate: the new access token passes.
	mc := callers["must change"]
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer "+mc.token)
	sess, err := d.Auth.Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	is, err := d.Auth.ChangePassword(ctx, sess, pw, "Changed-Guard-Pass-2", auth.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+is.AccessToken)
	w := httptest.NewRecorder()
	guard(routes.Route{Access: routes.ClientAdmin}, echo, guards, core).ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("after the change: %d %s", w.Code, w.Body.String())
	}
}

// Bind refuses wiring mistakes at start-up: a row without its handler, a handler without
// its row, an access level without a guard.
func TestBindRefusesMiswiring(t *testing.T) {
	core := Core{Logger: testenv.Discard()}
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	pub := routes.Route{Function: "f", Method: "GET", Path: "/a", Access: routes.Public}
	agent := routes.Route{Function: "f", Method: "GET", Path: "/b", Access: routes.Agent}
	if _, err := Bind([]routes.Route{pub}, Handlers{"GET /a": ok}, Guards{}, core); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		rows []routes.Route
		h    Handlers
		want string
	}{
		"row without handler": {[]routes.Route{pub}, Handlers{}, "GET /a (f) has no handler"},
		"handler without row": {[]routes.Route{pub}, Handlers{"GET /a": ok, "GET /z": ok}, "handler GET /z has no row"},
		"no guard":            {[]routes.Route{agent}, Handlers{"GET /b": ok}, "needs agent access"},
	} {
		if _, err := Bind(c.rows, c.h, Guards{}, core); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// Every dashboard route is guarded: no authenticated route of the table is served raw.
func TestEveryDashboardRouteNeedsAToken(t *testing.T) {
	core := Core{Logger: testenv.Discard()}
	a := auth.New(auth.Options{Secret: []byte(strings.Repeat("g", 32)), Logger: core.Logger})
	hs := Handlers{}
	var rows []routes.Route
	for _, r := range routes.Table() {
		if r.Access.Dashboard() {
			rows = append(rows, r)
			hs[r.Pattern()] = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(299) })
		}
	}
	h, err := Bind(rows, hs, Guards{Dashboard: a.Guard}, core)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		path := r.Path
		for strings.Contains(path, "{") {
			i, j := strings.Index(path, "{"), strings.Index(path, "}")
			path = path[:i] + "00000000-0000-0000-0000-000000000001" + path[j+1:]
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(r.Method, path, strings.NewReader("{}")))
		if w.Code != 401 {
			t.Errorf("%s %s without a token: %d", r.Method, r.Path, w.Code)
		}
	}
}
