package activity_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/activity"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)

func TestActivityLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	client, other := testenv.Client(t, pool, "Pro"), testenv.Client(t, pool, "Pro")
	machine := testenv.Machine(t, pool, client, "web-01")
	var userID string
	if err := pool.QueryRow(ctx, `INSERT INTO users (client_id, email, password_hash, role) VALUES ($1, 'amy@example.com', 'x', 'admin') RETURNING id`,
		client).Scan(&userID); err != nil {
		t.Fatal(err)
	}
	log := func(e audit.Entry, at time.Time) {
		t.Helper()
		if err := audit.Log(ctx, pool, at, e); err != nil {
			t.Fatal(err)
		}
	}
	// 12 entries of the client, several at the same instant (ties paged by id).
	for i := range 12 {
		e := audit.Entry{ClientID: client, UserID: userID, Action: "login", IP: "192.0.2.1"}
		if i%3 == 0 {
			e = audit.Entry{ClientID: client, UserID: userID, MachineID: machine, Action: "machine_updated", Details: map[string]any{"n": i}}
		}
		log(e, t0.Add(time.Duration(i/2)*time.Minute))
	}
	log(audit.Entry{ClientID: other, Action: "login", Details: map[string]any{"secret": "other-client"}}, t0)
	log(audit.Entry{Action: "platform_setting", Details: map[string]any{"secret": "platform"}}, t0)

	h := activity.HandleList(activity.Deps{Pool: pool, Logger: testenv.Discard()})
	me := principal.Principal{UserID: userID, ClientID: client, Role: principal.RoleAdmin}
	get := func(q url.Values) (int, string) {
		r := httptest.NewRequest("GET", "/api/activity?"+q.Encode(), nil)
		r = r.WithContext(principal.With(r.Context(), me))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	walk := func(q url.Values) []activity.Entry {
		t.Helper()
		var out []activity.Entry
		q.Set("limit", "5")
		for {
			code, body := get(q)
			if code != http.StatusOK || strings.Contains(body, "secret") {
				t.Fatalf("%v: %d %s", q, code, body)
			}
			var p activity.Page
			if err := json.Unmarshal([]byte(body), &p); err != nil {
				t.Fatal(err)
			}
			out = append(out, p.Entries...)
			if p.NextCursor == nil {
				return out
			}
			q.Set("cursor", *p.NextCursor)
		}
	}
	all := walk(url.Values{})
	seen := map[string]bool{}
	for i, e := range all {
		if seen[e.ID] || (i > 0 && e.At.After(all[i-1].At)) || e.User == nil || e.User.Email != "amy@example.com" {
			t.Fatalf("entry %d: %+v", i, e)
		}
		seen[e.ID] = true
	}
	if len(all) != 12 {
		t.Fatalf("%d entries, want 12", len(all))
	}
	if got := walk(url.Values{"action": {"machine_updated"}}); len(got) != 4 || *got[0].MachineID != machine || string(got[0].Details) != `{"n":9}` {
		t.Fatalf("action filter: %d entries, first %+v %s", len(got), got[0], got[0].Details)
	}
	if got := walk(url.Values{"machine_id": {machine}}); len(got) != 4 {
		t.Fatalf("machine filter: %d entries", len(got))
	}
	for q, field := range map[string]string{
		"limit=0": "limit", "limit=201": "limit", "limit=x": "limit", "action=DROP%20TABLE": "action",
		"machine_id=1": "machine_id", "cursor=!!": "cursor", "cursor=e30": "cursor", "user=1": "user", "action=a&action=b": "action",
	} {
		v, _ := url.ParseQuery(q)
		code, body := get(v)
		if code != 400 || !strings.Contains(body, `"`+field+`"`) {
			t.Errorf("%s: %d %s, want 400 naming %s", q, code, body, field)
		}
	}
}
