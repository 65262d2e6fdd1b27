package app_test

import (
	"strings"
	"testing"

	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

// The fleet routes behind the real guard, with Redis up and down: a user lists and edits,
// only an admin deletes, a list cached before a change never shows after it, and the
// cleanup job then purges the deleted machine.
func TestMachineRoutesThroughTheStack(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string][]stackOption{"redis up": nil, "redis down": {withoutRedis(authtest.DownRedis())}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newStack(t, opts...)
			client := testenv.Client(t, s.d.Pool, "Pro")
			id := testenv.Machine(t, s.d.Pool, client, "web-01")
			testenv.Machine(t, s.d.Pool, client, "web-02")
			user, admin := s.browser("192.0.2.70"), s.browser("192.0.2.71")
			ut := user.login(s.account(client, principal.RoleUser)).AccessToken
			at := admin.login(s.account(client, principal.RoleAdmin)).AccessToken
			list := func() string {
				t.Helper()
				w := user.do("GET", "/api/machines?sort=-hostname", "", "Authorization", "Bearer "+ut)
				if w.Code != 200 {
					t.Fatalf("list: %d %s", w.Code, w.Body.String())
				}
				return w.Body.String()
			}
			if body := list(); !strings.Contains(body, `"total":2`) {
				t.Fatalf("list: %s", body)
			}
			if w := user.do("PATCH", "/api/machines/"+id, `{"display_name":"Front door"}`, "Authorization", "Bearer "+ut); w.Code != 200 {
				t.Fatalf("patch as a user: %d %s", w.Code, w.Body.String())
			}
			if body := list(); !strings.Contains(body, `"display_name":"Front door"`) {
				t.Fatalf("stale list after the rename: %s", body)
			}
			if w := user.do("DELETE", "/api/machines/"+id, "", "Authorization", "Bearer "+ut); w.Code != 403 {
				t.Fatalf("delete as a user: %d %s", w.Code, w.Body.String())
			}
			if w := admin.do("DELETE", "/api/machines/"+id, "", "Authorization", "Bearer "+at); w.Code != 204 {
				t.Fatalf("delete as an admin: %d %s", w.Code, w.Body.String())
			}
			if body := list(); strings.Contains(body, id) || !strings.Contains(body, `"total":1`) {
				t.Fatalf("stale list after the delete: %s", body)
			}
			if w := user.do("GET", "/api/overview", "", "Authorization", "Bearer "+ut); w.Code != 200 || !strings.Contains(w.Body.String(), `"total":1`) {
				t.Fatalf("overview: %d %s", w.Code, w.Body.String())
			}
			w := user.do("GET", "/api/activity?action=machine_deleted", "", "Authorization", "Bearer "+ut)
			if w.Code != 200 || !strings.Contains(w.Body.String(), id) {
				t.Fatalf("activity: %d %s", w.Code, w.Body.String())
			}
			for _, j := range s.d.Jobs() {
				if j.Name == "cleanup" {
					if err := j.Run(t.Context(), s.clock.Now()); err != nil {
						t.Fatal(err)
					}
				}
			}
			var n int
			if err := s.d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM machines WHERE id = $1`, id).Scan(&n); err != nil || n != 0 {
				t.Fatalf("the cleanup job left the deleted machine (%d, %v)", n, err)
			}
		})
	}
}
