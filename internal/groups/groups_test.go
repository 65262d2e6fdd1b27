package groups_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/fleetcache"
	"github.com/optralis/optralis/internal/groups"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

type env struct {
	t      *testing.T
	pool   *pgxpool.Pool
	cache  cache.Store
	h      http.Handler
	client string
	admin  principal.Principal
}

func newEnv(t *testing.T, rc *redis.Client) *env {
	t.Helper()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	live, prefix := testenv.Redis(t)
	if rc == nil {
		rc = live
	}
	e := &env{t: t, pool: pool, cache: cache.Store{Redis: rc, Prefix: prefix}}
	d := groups.Deps{Pool: pool, Cache: e.cache, Clock: clock.Fixed(t0), Logger: testenv.Discard()}
	mux := http.NewServeMux()
	mux.Handle("GET /api/groups", groups.HandleList(d))
	mux.Handle("POST /api/groups", groups.HandleCreate(d))
	mux.Handle("PATCH /api/groups/{id}", groups.HandleUpdate(d))
	mux.Handle("DELETE /api/groups/{id}", groups.HandleDelete(d))
	mux.Handle("PUT /api/groups/{id}/machines", groups.HandleSetMembers(d))
	e.h = mux
	e.client = testenv.Client(t, pool, "Pro")
	e.admin = e.user(e.client)
	return e
}

func (e *env) user(clientID string) principal.Principal {
	e.t.Helper()
	var id string
	if err := e.pool.QueryRow(context.Background(), `INSERT INTO users (client_id, email, password_hash, role) VALUES ($1, $2, 'x', 'admin') RETURNING id`,
		clientID, uuid.NewString()[:8]+"@example.com").Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return principal.Principal{UserID: id, ClientID: clientID, Role: principal.RoleAdmin}
}

type answer struct {
	Code int
	Body string
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(a.Body), v); err != nil {
		t.Fatalf("%d %s: %v", a.Code, a.Body, err)
	}
}

// fields is the error's field names, sorted by JSON.
func (a answer) fields(t *testing.T) map[string]string {
	t.Helper()
	var b struct {
		Error struct {
			Fields map[string]string `json:"fields"`
		} `json:"error"`
	}
	a.decode(t, &b)
	return b.Error.Fields
}

func (e *env) as(p principal.Principal, method, path, body string) answer {
	r := httptest.NewRequest(method, path, bytes.NewBufferString(body))
	r.Header.Set("Content-Type", "application/json")
	r = r.WithContext(principal.With(r.Context(), p))
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return answer{w.Code, w.Body.String()}
}

func (e *env) do(method, path, body string) answer { return e.as(e.admin, method, path, body) }

func (e *env) create(name, color string) groups.Group {
	e.t.Helper()
	a := e.do("POST", "/api/groups", fmt.Sprintf(`{"name":%q,"color":%q}`, name, color))
	if a.Code != 201 {
		e.t.Fatalf("create %q: %d %s", name, a.Code, a.Body)
	}
	var g groups.Group
	a.decode(e.t, &g)
	return g
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// cachedPage caches a machine list page of the client, as the machines list does.
func (e *env) cachedPage() {
	e.t.Helper()
	p, _ := fleetcache.GetPage(context.Background(), e.cache, e.client, "all", new([]string))
	p.Put(context.Background(), []string{"stale"})
	if _, ok := fleetcache.GetPage(context.Background(), e.cache, e.client, "all", new([]string)); !ok {
		e.t.Fatal("page not cached")
	}
}

func (e *env) pageGone(what string) {
	e.t.Helper()
	if _, ok := fleetcache.GetPage(context.Background(), e.cache, e.client, "all", new([]string)); ok {
		e.t.Errorf("%s: the machine list cached before it is still served", what)
	}
}

func ids(vs ...string) string {
	b, _ := json.Marshal(map[string][]string{"machine_ids": append([]string{}, vs...)})
	return string(b)
}

func TestCreateListUpdateDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.cachedPage()
	g := e.create("  Servers  ", "#a1b2c3")
	if g.Name != "Servers" || g.Color != "#A1B2C3" || g.MachineCount != 0 || !g.CreatedAt.Equal(t0) || !g.UpdatedAt.Equal(t0) {
		t.Fatalf("created %+v", g)
	}
	e.pageGone("create")
	a := e.do("POST", "/api/groups", `{"name":"Desktops"}`)
	var d groups.Group
	a.decode(t, &d)
	if a.Code != 201 || d.Color != groups.DefaultColor {
		t.Fatalf("default colour: %d %s", a.Code, a.Body)
	}

	// Duplicates, in any case, are 409 within a client and fine across clients.
	for _, name := range []string{"servers", "SERVERS", " Servers"} {
		if a := e.do("POST", "/api/groups", fmt.Sprintf(`{"name":%q}`, name)); a.Code != 409 {
			t.Errorf("duplicate %q: %d %s", name, a.Code, a.Body)
		}
	}
	other := e.user(testenv.Client(t, e.pool, "Pro"))
	if a := e.as(other, "POST", "/api/groups", `{"name":"Servers"}`); a.Code != 201 {
		t.Fatalf("same name in another client: %d %s", a.Code, a.Body)
	}

	// Counts: live machines only; another client's groups are not listed.
	m1, m2, gone := testenv.Machine(t, e.pool, e.client, "m1"), testenv.Machine(t, e.pool, e.client, "m2"), testenv.Machine(t, e.pool, e.client, "gone")
	if a := e.do("PUT", "/api/groups/"+g.ID+"/machines", ids(m1, m2, gone)); a.Code != 200 {
		t.Fatalf("assign: %d %s", a.Code, a.Body)
	}
	if _, err := e.pool.Exec(context.Background(), `UPDATE machines SET deleted_at = $2 WHERE id = $1`, gone, t0); err != nil {
		t.Fatal(err)
	}
	var list struct{ Groups []groups.Group }
	a = e.do("GET", "/api/groups", "")
	a.decode(t, &list)
	if a.Code != 200 || len(list.Groups) != 2 || list.Groups[0].Name != "Desktops" || list.Groups[1].Name != "Servers" || list.Groups[1].MachineCount != 2 {
		t.Fatalf("list: %d %s", a.Code, a.Body)
	}

	// Rename, recolour, each alone.
	e.cachedPage()
	a = e.do("PATCH", "/api/groups/"+g.ID, `{"name":"Web servers"}`)
	var u groups.Group
	a.decode(t, &u)
	if a.Code != 200 || u.Name != "Web servers" || u.Color != "#A1B2C3" || u.MachineCount != 2 {
		t.Fatalf("rename: %d %s", a.Code, a.Body)
	}
	e.pageGone("rename")
	a = e.do("PATCH", "/api/groups/"+g.ID, `{"color":"#000000"}`)
	a.decode(t, &u)
	if a.Code != 200 || u.Name != "Web servers" || u.Color != "#000000" {
		t.Fatalf("recolour: %d %s", a.Code, a.Body)
	}
	if a := e.do("PATCH", "/api/groups/"+g.ID, `{"name":"desktops"}`); a.Code != 409 {
		t.Fatalf("rename onto another group: %d %s", a.Code, a.Body)
	}
	// Renaming to itself in another case is not a duplicate.
	if a := e.do("PATCH", "/api/groups/"+g.ID, `{"name":"WEB SERVERS"}`); a.Code != 200 {
		t.Fatalf("case change: %d %s", a.Code, a.Body)
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE client_id = $1 AND user_id = $2 AND action = 'group_updated'
		AND details->>'group_id' = $3 AND created_at = $4`, e.client, e.admin.UserID, g.ID, t0); n != 3 {
		t.Errorf("%d group_updated entries", n)
	}

	// Delete: memberships go, machines stay; then it is gone.
	e.cachedPage()
	if a := e.do("DELETE", "/api/groups/"+g.ID, ""); a.Code != 204 {
		t.Fatalf("delete: %d %s", a.Code, a.Body)
	}
	e.pageGone("delete")
	if n := e.count(`SELECT count(*) FROM machine_group_members WHERE group_id = $1`, g.ID); n != 0 {
		t.Fatalf("%d memberships left", n)
	}
	if n := e.count(`SELECT count(*) FROM machines WHERE id = ANY($1::uuid[])`, []string{m1, m2}); n != 2 {
		t.Fatal("machines deleted with their group")
	}
	for _, r := range [][2]string{{"DELETE", ""}, {"PATCH", `{"name":"x"}`}, {"PUT", ids()}} {
		path := "/api/groups/" + g.ID
		if r[0] == "PUT" {
			path += "/machines"
		}
		if a := e.do(r[0], path, r[1]); a.Code != 404 {
			t.Errorf("%s of a deleted group: %d %s", r[0], a.Code, a.Body)
		}
	}
	for _, action := range []string{"group_created", "group_deleted", "group_members_set"} {
		if n := e.count(`SELECT count(*) FROM activity_logs WHERE client_id = $1 AND action = $2`, e.client, action); n == 0 {
			t.Errorf("no %s entry", action)
		}
	}
}

// Bad input is 400 naming the field; bad ids are 404; nothing is written.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	g := e.create("Servers", "#123456")
	cases := []struct {
		method, path, body, field string
	}{
		{"POST", "/api/groups", `{}`, "name"},
		{"POST", "/api/groups", `{"name":"   "}`, "name"},
		{"POST", "/api/groups", `{"name":"` + strings.Repeat("é", 51) + `"}`, "name"},
		{"POST", "/api/groups", `{"name":"a\u0007b"}`, "name"},
		{"POST", "/api/groups", `{"name":"ok","color":"#12345"}`, "color"},
		{"POST", "/api/groups", `{"name":"ok","color":"red"}`, "color"},
		{"POST", "/api/groups", `{"name":"ok","color":"#12345g"}`, "color"},
		{"POST", "/api/groups", `{"name":"ok","colour":"#123456"}`, ""},
		{"POST", "/api/groups", `{"name":5}`, ""},
		{"PATCH", "/api/groups/" + g.ID, `{}`, "name"},
		{"PATCH", "/api/groups/" + g.ID, `{"name":""}`, "name"},
		{"PATCH", "/api/groups/" + g.ID, `{"color":"#1234567"}`, "color"},
		{"PUT", "/api/groups/" + g.ID + "/machines", `{}`, "machine_ids"},
		{"PUT", "/api/groups/" + g.ID + "/machines", `{"machine_ids":null}`, "machine_ids"},
		{"PUT", "/api/groups/" + g.ID + "/machines", `{"machine_ids":["not-a-uuid"]}`, "machine_ids"},
		{"PUT", "/api/groups/" + g.ID + "/machines", `{"machine_ids":"x"}`, ""},
	}
	for _, c := range cases {
		a := e.do(c.method, c.path, c.body)
		if a.Code != 400 {
			t.Errorf("%s %s: %d %s", c.method, c.body, a.Code, a.Body)
			continue
		}
		if c.field != "" {
			if _, ok := a.fields(t)[c.field]; !ok {
				t.Errorf("%s %s does not name %s: %s", c.method, c.body, c.field, a.Body)
			}
		}
	}
	tooMany := make([]string, groups.MaxMembers+1)
	for i := range tooMany {
		tooMany[i] = uuid.NewString()
	}
	if a := e.do("PUT", "/api/groups/"+g.ID+"/machines", ids(tooMany...)); a.Code != 400 || a.fields(t)["machine_ids"] == "" {
		t.Errorf("5001 ids: %d %.200s", a.Code, a.Body)
	}
	for _, path := range []string{"/api/groups/nope", "/api/groups/" + strings.ToUpper(g.ID) + "x", "/api/groups/" + uuid.NewString()} {
		if a := e.do("PATCH", path, `{"name":"x"}`); a.Code != 404 {
			t.Errorf("PATCH %s: %d %s", path, a.Code, a.Body)
		}
		if a := e.do("DELETE", path, ``); a.Code != 404 {
			t.Errorf("DELETE %s: %d %s", path, a.Code, a.Body)
		}
		if a := e.do("PUT", path+"/machines", ids()); a.Code != 404 {
			t.Errorf("PUT %s/machines: %d %s", path, a.Code, a.Body)
		}
	}
	if n := e.count(`SELECT count(*) FROM machine_groups WHERE client_id = $1`, e.client); n != 1 {
		t.Fatalf("%d groups after refusals", n)
	}
	if n := e.count(`SELECT count(*) FROM machine_groups WHERE id = $1 AND name = 'Servers' AND color = '#123456'`, g.ID); n != 1 {
		t.Fatal("the group changed")
	}
}

func TestSetMembers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	g := e.create("Servers", "#123456")
	m := make([]string, 4)
	for i := range m {
		m[i] = testenv.Machine(t, e.pool, e.client, fmt.Sprintf("m%d", i))
	}
	members := func() []string {
		rows, err := e.pool.Query(context.Background(), `SELECT machine_id::text FROM machine_group_members WHERE group_id = $1 AND client_id = $2 ORDER BY machine_id`, g.ID, e.client)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			out = append(out, s)
		}
		return out
	}
	put := func(body string) (answer, groups.Membership) {
		t.Helper()
		a := e.do("PUT", "/api/groups/"+g.ID+"/machines", body)
		var ms groups.Membership
		if a.Code == 200 {
			a.decode(t, &ms)
		}
		return a, ms
	}

	// Duplicates count once; ids in upper case are the same machines.
	e.cachedPage()
	a, ms := put(ids(m[0], m[1], m[0], strings.ToUpper(m[1])))
	if a.Code != 200 || ms.Added != 2 || ms.Removed != 0 || ms.MachineCount != 2 || ms.ID != g.ID {
		t.Fatalf("first assignment: %d %s", a.Code, a.Body)
	}
	e.pageGone("assignment")
	// Replacement: m1 stays, m0 leaves, m2 and m3 join.
	a, ms = put(ids(m[1], m[2], m[3]))
	if a.Code != 200 || ms.Added != 2 || ms.Removed != 1 || ms.MachineCount != 3 || len(members()) != 3 {
		t.Fatalf("replacement: %d %s", a.Code, a.Body)
	}
	before := members()

	// Another client's machine, an unknown id or a deleted machine: 400 naming
	// machine_ids with the refused ids, and nothing changes.
	otherClient := testenv.Client(t, e.pool, "Pro")
	foreign := testenv.Machine(t, e.pool, otherClient, "theirs")
	deleted := testenv.Machine(t, e.pool, e.client, "deleted")
	if _, err := e.pool.Exec(context.Background(), `UPDATE machines SET deleted_at = $2 WHERE id = $1`, deleted, t0); err != nil {
		t.Fatal(err)
	}
	unknown := uuid.NewString()
	for name, id := range map[string]string{"foreign": foreign, "unknown": unknown, "deleted": deleted} {
		a, _ := put(ids(m[0], id))
		if a.Code != 400 || !strings.Contains(a.fields(t)["machine_ids"], id) || strings.Contains(a.Body, m[0]) {
			t.Errorf("%s machine: %d %s", name, a.Code, a.Body)
		}
		// A foreign machine and an unknown one get the same answer.
		if name == "foreign" && strings.Contains(a.Body, "theirs") {
			t.Errorf("the other client's machine is described: %s", a.Body)
		}
	}
	if got := members(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("members changed by a refused request: %v, was %v", got, before)
	}
	if n := e.count(`SELECT count(*) FROM machine_group_members WHERE machine_id = $1`, foreign); n != 0 {
		t.Fatal("another client's machine joined the group")
	}

	// An empty list empties the group.
	a, ms = put(ids())
	if a.Code != 200 || ms.Removed != 3 || ms.MachineCount != 0 || len(members()) != 0 {
		t.Fatalf("empty: %d %s", a.Code, a.Body)
	}
	// The largest assignment allowed.
	many := make([]string, groups.MaxMembers)
	for i := range many {
		many[i] = uuid.NewString()
	}
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO machines (id, client_id, hostname) SELECT x, $1, 'bulk' FROM unnest($2::uuid[]) x`, e.client, many); err != nil {
		t.Fatal(err)
	}
	if a, ms := put(ids(many...)); a.Code != 200 || ms.Added != groups.MaxMembers || ms.MachineCount != groups.MaxMembers {
		t.Fatalf("5000 machines: %d %.300s", a.Code, a.Body)
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE client_id = $1 AND action = 'group_members_set' AND (details->>'members')::int = $2`, e.client, groups.MaxMembers); n != 1 {
		t.Error("no audit entry for the bulk assignment")
	}
}

// Redis down: every route works from the database.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = dead.Close() })
	e := newEnv(t, dead)
	g := e.create("Servers", "#123456")
	m := testenv.Machine(t, e.pool, e.client, "m")
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/groups", ""},
		{"PATCH", "/api/groups/" + g.ID, `{"name":"Renamed"}`},
		{"PUT", "/api/groups/" + g.ID + "/machines", ids(m)},
	} {
		if a := e.do(r.method, r.path, r.body); a.Code != 200 {
			t.Errorf("%s %s with Redis down: %d %s", r.method, r.path, a.Code, a.Body)
		}
	}
	if a := e.do("DELETE", "/api/groups/"+g.ID, ""); a.Code != 204 {
		t.Errorf("delete with Redis down: %d %s", a.Code, a.Body)
	}
}
