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

	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

// The guard on each dashboard access level, for each kind of caller, including one who
// must change the password: only Session routes answer them.
func TestDashboardGuardMatrix(t *testing.T) {
	t.Parallel()
	clk := authtest.NewClock(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
	d := &Deps{Config: config.Config{JWTSecret: []byte(strings.Repeat("g", 32))}, Pool: testenv.NewDB(t, migrate.ModePostgres),
		Logger: testenv.Discard(), Clock: clk}
	d.Auth = auth.New(auth.Options{Pool: d.Pool, Secret: d.Config.JWTSecret, Clock: clk, Hasher: &authtest.Hasher{Cost: 4}})
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
	levels := map[string]Access{"user": User, "client admin": ClientAdmin, "platform admin": PlatformAdmin, "session": Session, "unknown": Access(99)}
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
		h := d.guard(Route{Function: "test", Method: "GET", Path: "/x", Access: level, Handler: echo})
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
	d.guard(Route{Access: ClientAdmin, Handler: echo}).ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("after the change: %d %s", w.Code, w.Body.String())
	}
}

// Every dashboard route is guarded: the table has no authenticated route served raw.
func TestEveryDashboardRouteNeedsAToken(t *testing.T) {
	d := &Deps{Config: config.Config{JWTSecret: []byte(strings.Repeat("g", 32))}, Logger: testenv.Discard()}
	h := d.PublicHandler()
	for _, r := range d.Routes() {
		if r.Access == Public || r.Access == Agent {
			continue
		}
		path := strings.NewReplacer("{id}", "00000000-0000-0000-0000-000000000001").Replace(r.Path)
		for strings.Contains(path, "{") {
			i, j := strings.Index(path, "{"), strings.Index(path, "}")
			path = path[:i] + "x" + path[j+1:]
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(r.Method, path, strings.NewReader("{}")))
		if w.Code != 401 {
			t.Errorf("%s %s without a token: %d", r.Method, r.Path, w.Code)
		}
	}
}
