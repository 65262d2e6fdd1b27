package machines_test

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/machines"
	"github.com/optralis/optralis/internal/testenv"
)

// fleet seeds the client with machines of varied hostnames, readings, last-seen times
// and groups, one deleted machine and one of another client; it returns the live ones.
func fleet(e *env) (live map[string]machines.Row, group string) {
	e.t.Helper()
	group = e.group(e.client, "Servers")
	live = map[string]machines.Row{}
	for i := range 23 {
		host := fmt.Sprintf("%s-%02d", []string{"web", "DB", "mail"}[i%3], i)
		id := e.machine(e.client, host)
		var lastSeen *time.Time
		var cpu *float64
		if i%4 != 0 { // every fourth never seen, without readings
			// all within the online window at t0; ties on purpose
			lastSeen, cpu = ptr(t0.Add(-time.Duration(i%7)*time.Second)), ptr(float64(i%5)*20)
		}
		os := "linux"
		if i%2 == 0 {
			os = "Windows"
		}
		e.exec(`UPDATE machines SET last_seen = $2::timestamptz, heartbeat_due_at = $2::timestamptz + interval '60 seconds', last_cpu_percent = $3,
			last_ram_percent = $3, os = $4, created_at = $5 WHERE id = $1`, id, lastSeen, cpu, os, t0.Add(-time.Duration(i%3)*time.Hour))
		if i%3 == 0 {
			e.exec(`INSERT INTO machine_group_members (client_id, machine_id, group_id, created_at) VALUES ($1, $2, $3, $4)`, e.client, id, group, t0)
		}
		live[id] = machines.Row{ID: id, Hostname: host}
	}
	gone := e.machine(e.client, "web-deleted")
	e.exec(`UPDATE machines SET deleted_at = $2 WHERE id = $1`, gone, t0)
	other := testenv.Client(e.t, e.pool, "Pro")
	e.machine(other, "web-other-client")
	return live, group
}

// walk pages through a query and returns the rows in order, failing on a repeated row.
func walk(e *env, query url.Values, limit int) []machines.Row {
	e.t.Helper()
	var out []machines.Row
	seen := map[string]bool{}
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("limit", fmt.Sprint(limit))
	for pages := 0; ; pages++ {
		p := e.list("?" + q.Encode())
		if len(p.Machines) > limit || pages > 100 {
			e.t.Fatalf("page of %d rows, limit %d", len(p.Machines), limit)
		}
		for _, r := range p.Machines {
			if seen[r.ID] {
				e.t.Fatalf("%v: %s listed twice", query, r.Hostname)
			}
			seen[r.ID] = true
			out = append(out, r)
		}
		if p.NextCursor == nil {
			return out
		}
		q.Set("cursor", *p.NextCursor)
	}
}

func TestListSortsAndPagesEveryMachineOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	live, _ := fleet(e)
	keys := map[string]func(r machines.Row) string{
		"hostname":   func(r machines.Row) string { return strings.ToLower(r.Hostname) },
		"last_seen":  func(r machines.Row) string { return tkey(r.LastSeen) },
		"cpu":        func(r machines.Row) string { return fkey(r.CPUPercent) },
		"ram":        func(r machines.Row) string { return fkey(r.RAMPercent) },
		"created_at": func(r machines.Row) string { return r.CreatedAt.UTC().Format(time.RFC3339Nano) },
	}
	for name, key := range keys {
		for _, sortParam := range []string{name, "-" + name} {
			for _, limit := range []int{1, 5, 23, 200} {
				rows := walk(e, url.Values{"sort": {sortParam}}, limit)
				if len(rows) != len(live) {
					t.Fatalf("sort=%s limit=%d: %d rows, want %d", sortParam, limit, len(rows), len(live))
				}
				ok := sort.SliceIsSorted(rows, func(i, j int) bool {
					ki, kj := key(rows[i])+"|"+rows[i].ID, key(rows[j])+"|"+rows[j].ID
					if sortParam[0] == '-' {
						return ki > kj
					}
					return ki < kj
				})
				if !ok {
					t.Fatalf("sort=%s limit=%d: rows out of order", sortParam, limit)
				}
				for _, r := range rows {
					if _, ok := live[r.ID]; !ok {
						t.Fatalf("sort=%s: %s is not a live machine of the client", sortParam, r.Hostname)
					}
				}
			}
		}
	}
	if p := e.list("?limit=5"); p.Total != len(live) || len(p.Machines) != 5 || p.NextCursor == nil {
		t.Fatalf("first page: total %d, %d rows, cursor %v", p.Total, len(p.Machines), p.NextCursor)
	}
}

// tkey and fkey order like the SQL keys (NULL lowest) for the comparisons above.
func tkey(t *time.Time) string {
	if t == nil {
		return "0000"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000")
}

func fkey(f *float64) string {
	if f == nil {
		return "-001"
	}
	return fmt.Sprintf("%07.3f", *f)
}

// Keyset paging is stable under inserts: a machine added during a walk never makes a row
// repeat or vanish.
func TestListPagingStableUnderInserts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	live, _ := fleet(e)
	q := url.Values{"limit": {"4"}}
	p := e.list("?" + q.Encode())
	seen := map[string]bool{}
	for _, r := range p.Machines {
		seen[r.ID] = true
	}
	// Sorts before the cursor ("a...") and after it ("zz...").
	e.machine(e.client, "aaa-new")
	late := e.machine(e.client, "zzz-new")
	for p.NextCursor != nil {
		q.Set("cursor", *p.NextCursor)
		p = e.list("?" + q.Encode())
		for _, r := range p.Machines {
			if seen[r.ID] {
				t.Fatalf("%s repeated", r.Hostname)
			}
			seen[r.ID] = true
		}
	}
	for id := range live {
		if !seen[id] {
			t.Fatalf("%s skipped", live[id].Hostname)
		}
	}
	if !seen[late] {
		t.Fatal("a machine inserted after the cursor is missing")
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	live, group := fleet(e)
	e.exec(`UPDATE machines SET display_name = 'Accounting 50%_off' WHERE hostname = 'mail-02'`)
	count := func(query string) (int, []machines.Row) {
		t.Helper()
		q, _ := url.ParseQuery(strings.TrimPrefix(query, "?"))
		rows := walk(e, q, 7)
		if p := e.list(query); p.Total != len(rows) {
			t.Fatalf("%s: total %d, %d rows", query, p.Total, len(rows))
		}
		return len(rows), rows
	}
	for _, c := range []struct {
		query string
		want  int
	}{
		{"", len(live)},
		{"?search=WEB", 8},                  // web-00, web-03, ... case-insensitive
		{"?search=db-1", 4},                 // DB-10, DB-13, DB-16, DB-19
		{"?search=accounting", 1},           // display name
		{"?search=50%25_", 1},               // wildcards are literal
		{"?search=%25", 1},                  // only the display name has a %
		{"?group=" + group, 8},              // i%3 == 0
		{"?os=WINDOWS", 12},                 // i even
		{"?os=linux&group=" + group, 4},     // i%3 == 0 and odd: 3, 9, 15, 21
		{"?status=offline", 6},              // never seen (i%4 == 0), as t0 is within everyone else's window
		{"?status=online&os=linux", 11},     // odd i: all seen; CPU and RAM at most 80: no alert
		{"?cert_status=unknown", len(live)}, // no certificates in this fleet
		{"?cert_status=valid", 0},
		{"?alerts=none", len(live)}, // no alert fires in this fleet
		{"?alerts=firing", 0},
		{"?search=nothing-matches", 0},
	} {
		if n, _ := count(c.query); n != c.want {
			t.Errorf("%s: %d machines, want %d", c.query, n, c.want)
		}
	}
	// Group of another client: nothing, not an error.
	other := e.group(testenv.Client(t, e.pool, "Pro"), "Other")
	if n, _ := count("?group=" + other); n != 0 {
		t.Fatalf("another client's group lists %d machines", n)
	}
	_, rows := count("?group=" + group + "&search=web-00")
	if len(rows) != 1 || len(rows[0].Groups) != 1 || rows[0].Groups[0].ID != group || rows[0].Groups[0].Name != "Servers" || rows[0].Groups[0].Color != "#112233" {
		t.Fatalf("groups of web-00: %+v", rows)
	}
}

func TestListBadParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.machine(e.client, "a")
	e.machine(e.client, "b")
	page := e.list("?sort=cpu&limit=1")
	for query, field := range map[string]string{
		"?limit=0":                            "limit",
		"?limit=201":                          "limit",
		"?limit=abc":                          "limit",
		"?limit=1&limit=2":                    "limit",
		"?sort=name":                          "sort",
		"?sort=-":                             "sort",
		"?sort=--cpu":                         "sort",
		"?status=up":                          "status",
		"?cert_status=old":                    "cert_status",
		"?alerts=yes":                         "alerts",
		"?group=not-a-uuid":                   "group",
		"?os=win%20dows":                      "os",
		"?search=" + strings.Repeat("x", 101): "search",
		"?search=a%00b":                       "search",
		"?cursor=!!!":                         "cursor",
		"?cursor=e30":                         "cursor", // {}
		"?cursor=bm90LWpzb24":                 "cursor", // not-json
		"?colour=red":                         "colour",
		"?sort=hostname&cursor=" + *page.NextCursor: "cursor", // a cursor of the cpu sort
	} {
		a := e.call(e.me, "GET", "/api/machines"+query, "")
		if a.Code != 400 || a.fields()[field] == "" {
			t.Errorf("%s: %d %s, want 400 naming %s", query, a.Code, a.Body, field)
		}
	}
	// The same cursor with its own sort pages on.
	if p := e.list("?sort=cpu&limit=1&cursor=" + *page.NextCursor); len(p.Machines) != 1 {
		t.Fatalf("next page: %+v", p)
	}
	if a := e.call(e.me, "GET", "/api/machines?search="+strings.Repeat("é", 100), ""); a.Code != 200 {
		t.Fatalf("100 characters of search: %d %s", a.Code, a.Body)
	}
}

// A cached page is never served after a change made through the API, with Redis up; with
// Redis down every route still answers from the database.
func TestListCacheNeverStale(t *testing.T) {
	t.Parallel()
	for name, down := range map[string]bool{"redis up": false, "redis down": true} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var e *env
			if down {
				e = newEnv(t, authtest.DownRedis())
			} else {
				e = newEnv(t, nil)
			}
			a, b := e.machine(e.client, "alpha"), e.machine(e.client, "bravo")
			g := e.group(e.client, "Finance")
			if p := e.list(""); len(p.Machines) != 2 || p.Total != 2 {
				t.Fatalf("first list: %+v", p)
			}
			e.list("?group=" + g)
			if !down {
				n, err := e.store.Redis.HLen(t.Context(), e.store.Key("machines:list:"+e.client)).Result()
				if err != nil || n != 2 {
					t.Fatalf("cached pages: %d %v", n, err)
				}
			}
			if r := e.call(e.me, "PATCH", "/api/machines/"+a, `{"display_name":"  Alpha PC ","group_ids":["`+g+`"]}`); r.Code != 200 {
				t.Fatalf("patch: %d %s", r.Code, r.Body)
			}
			p := e.list("")
			if p.Machines[0].DisplayName == nil || *p.Machines[0].DisplayName != "Alpha PC" || len(p.Machines[0].Groups) != 1 {
				t.Fatalf("list after the rename shows %+v", p.Machines[0])
			}
			if p := e.list("?group=" + g); len(p.Machines) != 1 || p.Machines[0].ID != a {
				t.Fatalf("group filter after the change: %+v", p)
			}
			if r := e.call(e.me, "DELETE", "/api/machines/"+b, ""); r.Code != 204 {
				t.Fatalf("delete: %d %s", r.Code, r.Body)
			}
			if p := e.list(""); len(p.Machines) != 1 || p.Total != 1 || p.Machines[0].ID != a {
				t.Fatalf("list after the delete: %+v", p)
			}
			var o machines.Overview
			e.call(e.me, "GET", "/api/overview", "").json(&o)
			if o.Machines.Total != 1 || o.Licence.Used != 1 {
				t.Fatalf("overview after the delete: %+v", o)
			}
		})
	}
}
