package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/routes"
	"github.com/optralis/optralis/internal/testenv"
)

// tenant is one client with a resource of each kind that exists.
type tenant struct {
	ClientID, UserID, Email, MachineID, Hostname, GroupID, InstallTokenID, CertificateID string
	// alerting: rules, windows, alerts (issue 13)
	AlertRuleID, WindowID, AlertID string
	ChannelID                      string // a notification channel (issue 13)
}

func newTenant(t *testing.T, s *stack, name string) tenant {
	t.Helper()
	ctx := context.Background()
	var tn tenant
	tn.ClientID = testenv.Client(t, s.d.Pool, "Pro")
	a := s.account(tn.ClientID, principal.RoleAdmin)
	tn.UserID, tn.Email = a.ID, a.Email
	tn.Hostname = "host-" + name + "-" + a.ID[:8]
	tn.MachineID = testenv.Machine(t, s.d.Pool, tn.ClientID, tn.Hostname)
	q := func(sql string, dst *string, args ...any) {
		t.Helper()
		if err := s.d.Pool.QueryRow(ctx, sql, args...).Scan(dst); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	q(`INSERT INTO machine_groups (client_id, name, color) VALUES ($1, $2, '#112233') RETURNING id`, &tn.GroupID, tn.ClientID, "group-"+name)
	if _, err := s.d.Pool.Exec(ctx, `INSERT INTO machine_group_members (client_id, machine_id, group_id, created_at) VALUES ($1, $2, $3, $4)`,
		tn.ClientID, tn.MachineID, tn.GroupID, s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	q(`INSERT INTO install_tokens (client_id, token_hash, name, expires_at, created_by) VALUES ($1, md5(random()::text), $2, $3, $4) RETURNING id`,
		&tn.InstallTokenID, tn.ClientID, "token-"+name, s.clock.Now().Add(15*time.Minute), tn.UserID)
	q(`INSERT INTO client_certificates (client_id, machine_id, serial, issued_at, expires_at, created_by) VALUES ($1, $2, md5(random()::text), $3, $4, $5) RETURNING id`,
		&tn.CertificateID, tn.ClientID, tn.MachineID, s.clock.Now().Add(-time.Hour), s.clock.Now().AddDate(1, 0, 0), tn.UserID)
	// alerting: rules, windows, alerts (issue 13)
	q(`INSERT INTO alert_rules (client_id, name, kind, metric, threshold, scope_group_id, created_at, updated_at)
		VALUES ($1, $2, 'metric', 'cpu', 90, $3, $4, $4) RETURNING id`, &tn.AlertRuleID, tn.ClientID, "rule-"+name, tn.GroupID, s.clock.Now())
	q(`INSERT INTO maintenance_windows (client_id, name, scope_machine_id, starts_at, duration_seconds, created_at, updated_at)
		VALUES ($1, $2, $3, $4, 3600, $4, $4) RETURNING id`, &tn.WindowID, tn.ClientID, "window-"+name, tn.MachineID, s.clock.Now())
	q(`INSERT INTO alert_rule_history (client_id, machine_id, rule_id, rule_name, metric_type, severity, state, started_at, triggered_at)
		VALUES ($1, $2, $3, $4, 'cpu', 'warning', 'firing', $5, $5) RETURNING id`, &tn.AlertID, tn.ClientID, tn.MachineID, tn.AlertRuleID,
		"rule-"+name, s.clock.Now().Add(-time.Minute))
	// A webhook channel beside the client's default email channel.
	q(`INSERT INTO notification_channels (client_id, name, kind, url, secret, created_at, updated_at)
		VALUES ($1, $2::text, 'webhook', 'https://hooks.example.com/' || $2::text, 'whsec_tenant', $3, $3) RETURNING id`, &tn.ChannelID, tn.ClientID, "hook-"+name, s.clock.Now())
	return tn
}

// secrets are the strings of tenant B that must never reach tenant A.
func (tn tenant) secrets() []string {
	return []string{tn.ClientID, tn.UserID, tn.Email, tn.MachineID, tn.Hostname, tn.GroupID, tn.InstallTokenID, tn.CertificateID,
		tn.AlertRuleID, tn.WindowID, tn.AlertID, tn.ChannelID}
}

// resourceIDs maps the collection a path parameter follows (".../machines/{id}") to B's
// identifier of that kind. A dashboard route with a parameter after any other segment
// fails the test: give B a resource of the new kind here, and the route is covered.
func (tn tenant) resourceIDs() map[string]string {
	return map[string]string{
		"machines":       tn.MachineID,
		"groups":         tn.GroupID,
		"install-tokens": tn.InstallTokenID,
		"certificates":   tn.CertificateID,
		"users":          tn.UserID,
		"clients":        tn.ClientID,
		// alerting: rules, windows, alerts (issue 13)
		"alert-rules":         tn.AlertRuleID,
		"maintenance-windows": tn.WindowID,
		"alerts":              tn.AlertID,
		// alerting (issue 13)
		"notification-channels": tn.ChannelID,
	}
}

// requestBodies gives a route ("METHOD /path") a body that passes validation, so that
// the ownership check, not input validation, decides the answer. Default: {}.
var requestBodies = map[string]string{
	"PATCH /api/users/{id}":         `{"name":"Renamed"}`,
	"PATCH /api/machines/{id}":      `{"display_name":"renamed","notes":"n"}`,
	"PATCH /api/groups/{id}":        `{"name":"renamed","color":"#123456"}`,
	"PUT /api/groups/{id}/machines": `{"machine_ids":[]}`,
	// alerting: rules, windows, alerts (issue 13)
	"PATCH /api/alert-rules/{id}":         `{"name":"renamed","severity":"critical"}`,
	"PATCH /api/maintenance-windows/{id}": `{"name":"renamed","duration_seconds":120}`,
	"POST /api/alerts/{id}/acknowledge":   `{"comment":"mine now"}`,
	// alerting (issue 13)
	"PATCH /api/notification-channels/{id}": `{"name":"renamed","enabled":false}`,
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// TestTenantIsolation calls every dashboard route as client A's administrator with client
// B's identifiers: each must answer 404 or 403, reveal none of B's data and change none of
// it. Routes without parameters (lists, "me") must not show B's data either. New routes
// are covered as soon as they are in the table.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	c := newIsolationCheck(t, s, t.Errorf)
	covered := c.run(s.d.Routes(), s.h)
	t.Logf("dashboard routes checked: %v", covered)
}

type isolationCheck struct {
	t      *testing.T
	s      *stack
	a, b   tenant
	user   auth.User
	errorf func(format string, args ...any)
}

func newIsolationCheck(t *testing.T, s *stack, errorf func(string, ...any)) *isolationCheck {
	t.Helper()
	c := &isolationCheck{t: t, s: s, a: newTenant(t, s, "a"), b: newTenant(t, s, "b"), errorf: errorf}
	var err error
	if c.user, err = s.d.Auth.UserByID(context.Background(), c.a.UserID); err != nil {
		t.Fatal(err)
	}
	return c
}

// token is a fresh session of A's administrator: a route may end it (logout).
func (c *isolationCheck) token() string {
	c.t.Helper()
	is, err := c.s.d.Auth.StartSession(context.Background(), c.user, auth.Meta{IP: "192.0.2.200"})
	if err != nil {
		c.t.Fatal(err)
	}
	return is.AccessToken
}

func (c *isolationCheck) leaks(body string) []string {
	var out []string
	for _, sec := range c.b.secrets() {
		if strings.Contains(body, sec) {
			out = append(out, sec)
		}
	}
	return out
}

func (c *isolationCheck) run(rows []routes.Route, h http.Handler) (covered []string) {
	t, ctx, ids := c.t, context.Background(), c.b.resourceIDs()
	call := func(method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+c.token())
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, r := range rows {
		route := r.Method + " " + r.Path
		switch r.Access {
		case routes.PlatformAdmin:
			w := call(r.Method, pathParam.ReplaceAllString(r.Path, c.a.ClientID), "{}")
			if w.Code != 403 || len(c.leaks(w.Body.String())) > 0 {
				c.errorf("%s as a client admin: %d %s, want 403", route, w.Code, w.Body.String())
			}
			continue
		case routes.User, routes.ClientAdmin, routes.Session:
		default:
			continue
		}
		covered = append(covered, route)
		body := requestBodies[route]
		if body == "" {
			body = "{}"
		}
		params := pathParam.FindAllStringSubmatchIndex(r.Path, -1)
		if len(params) == 0 {
			w := call(r.Method, r.Path, body)
			if w.Code >= 500 {
				c.errorf("%s: %d %s", route, w.Code, w.Body.String())
			}
			if l := c.leaks(w.Body.String()); len(l) > 0 {
				c.errorf("%s shows client B's data %v: %s", route, l, w.Body.String())
			}
			continue
		}
		path, missing := r.Path, false
		for i := len(params) - 1; i >= 0; i-- {
			p := params[i]
			segs := strings.Split(strings.TrimSuffix(r.Path[:p[0]], "/"), "/")
			id, ok := ids[segs[len(segs)-1]]
			if !ok {
				c.errorf("%s: no client-B fixture for {%s} after %q: add one to resourceIDs", route, r.Path[p[2]:p[3]], segs[len(segs)-1])
				missing = true
				break
			}
			path = path[:p[0]] + id + path[p[1]:]
		}
		if missing {
			continue
		}
		w := call(r.Method, path, body)
		code := response{w, t}.code()
		if !(w.Code == 404 || (w.Code == 403 && code == "forbidden")) {
			c.errorf("%s with client B's ids: %d %s, want 404 or 403", route, w.Code, w.Body.String())
		}
		if l := c.leaks(w.Body.String()); len(l) > 0 {
			c.errorf("%s reveals client B's data %v: %s", route, l, w.Body.String())
		}
	}
	sort.Strings(covered)

	// Nothing of B's changed.
	b := c.b
	var n int
	if err := c.s.d.Pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM machines m JOIN machine_group_members g ON g.machine_id = m.id AND g.group_id = $2
		        WHERE m.id = $1 AND m.client_id = $5 AND m.deleted_at IS NULL)
		     + (SELECT count(*) FROM machine_groups WHERE id = $2 AND client_id = $5)
		     + (SELECT count(*) FROM install_tokens WHERE id = $3 AND revoked_at IS NULL)
		     + (SELECT count(*) FROM client_certificates WHERE id = $4 AND revoked_at IS NULL)
		     + (SELECT count(*) FROM users WHERE client_id = $5 AND is_active)`,
		b.MachineID, b.GroupID, b.InstallTokenID, b.CertificateID, b.ClientID).Scan(&n); err != nil || n != 5 {
		c.errorf("client B's resources changed (%d of 5 intact): %v", n, err)
	}
	// alerting: rules, windows, alerts (issue 13)
	if err := c.s.d.Pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM alert_rules WHERE id = $1 AND client_id = $4 AND name = 'rule-b' AND severity = 'warning')
		     + (SELECT count(*) FROM maintenance_windows WHERE id = $2 AND client_id = $4 AND name = 'window-b' AND duration_seconds = 3600)
		     + (SELECT count(*) FROM alert_rule_history WHERE id = $3 AND client_id = $4 AND state = 'firing' AND acknowledged_at IS NULL)`,
		b.AlertRuleID, b.WindowID, b.AlertID, b.ClientID).Scan(&n); err != nil || n != 3 {
		c.errorf("client B's alerting rows changed (%d of 3 intact): %v", n, err)
	}
	// alerting (issue 13): B's channel as it was, no test notification recorded for it.
	if err := c.s.d.Pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM notification_channels WHERE id = $1 AND client_id = $2 AND name = 'hook-b' AND enabled
		        AND url = 'https://hooks.example.com/hook-b' AND secret = 'whsec_tenant')
		     + (SELECT count(*) FROM notification_history WHERE channel_id = $1)`, b.ChannelID, b.ClientID).Scan(&n); err != nil || n != 1 {
		c.errorf("client B's notification channel changed or was used: %v", err)
	}
	return covered
}

// The check itself catches what it is for: a handler that forgets the client, a list
// that shows everyone's machines, a write that touches another client's row, and a route
// whose parameter has no fixture.
func TestTenantIsolationCatchesLeaks(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	var failures []string
	c := newIsolationCheck(t, s, func(f string, args ...any) { failures = append(failures, fmt.Sprintf(f, args...)) })
	pool := s.d.Pool
	withSession := func(h http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sess, err := s.d.Auth.Authenticate(r)
			if err != nil {
				httpx.WriteError(w, r, s.d.Logger, err)
				return
			}
			h(w, r.WithContext(auth.WithSession(r.Context(), sess)))
		})
	}
	notFound := apperr.New(apperr.NotFound, "not found")
	leaky := []testRoute{
		{Route: routes.Route{Function: "t", Method: "GET", Path: "/api/machines/{id}", Access: routes.User}, Handler: withSession(func(w http.ResponseWriter, r *http.Request) {
			var host string // forgets the client
			if err := pool.QueryRow(r.Context(), `SELECT hostname FROM machines WHERE id = $1`, r.PathValue("id")).Scan(&host); err != nil {
				httpx.WriteError(w, r, s.d.Logger, notFound)
				return
			}
			httpx.WriteJSON(w, 200, map[string]string{"hostname": host})
		})},
		{Route: routes.Route{Function: "t", Method: "GET", Path: "/api/groups/{id}", Access: routes.User}, Handler: withSession(func(w http.ResponseWriter, r *http.Request) {
			p, _ := principal.From(r.Context())
			var name string // scoped: correct
			if err := pool.QueryRow(r.Context(), `SELECT name FROM machine_groups WHERE id = $1 AND client_id = $2`, r.PathValue("id"), p.ClientID).Scan(&name); err != nil {
				httpx.WriteError(w, r, s.d.Logger, notFound)
				return
			}
			httpx.WriteJSON(w, 200, map[string]string{"name": name})
		})},
		{Route: routes.Route{Function: "t", Method: "GET", Path: "/api/machines", Access: routes.User}, Handler: withSession(func(w http.ResponseWriter, r *http.Request) {
			rows, _ := pool.Query(r.Context(), `SELECT id::text FROM machines`) // everyone's
			ids, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			httpx.WriteJSON(w, 200, ids)
		})},
		{Route: routes.Route{Function: "t", Method: "DELETE", Path: "/api/install-tokens/{id}", Access: routes.ClientAdmin}, Handler: withSession(func(w http.ResponseWriter, r *http.Request) {
			_, _ = pool.Exec(r.Context(), `UPDATE install_tokens SET revoked_at = now() WHERE id = $1`, r.PathValue("id")) // any client's
			httpx.WriteError(w, r, s.d.Logger, notFound)
		})},
		{Route: routes.Route{Function: "t", Method: "GET", Path: "/api/widgets/{id}", Access: routes.User}, Handler: withSession(func(w http.ResponseWriter, r *http.Request) {
			httpx.WriteError(w, r, s.d.Logger, notFound)
		})},
	}
	mux := http.NewServeMux()
	var rows []routes.Route
	for _, r := range leaky {
		mux.Handle(r.Pattern(), r.Handler)
		rows = append(rows, r.Route)
	}
	c.run(rows, mux)
	all := strings.Join(failures, "\n")
	for _, want := range []string{"GET /api/machines/{id} with client B's ids: 200", "GET /api/machines shows client B's data",
		"GET /api/widgets/{id}: no client-B fixture", "client B's resources changed"} {
		if !strings.Contains(all, want) {
			t.Errorf("the check missed %q; it reported:\n%s", want, all)
		}
	}
	if strings.Contains(all, "/api/groups/{id}") {
		t.Errorf("a correctly scoped route was reported:\n%s", all)
	}
}
