package winbuilds_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
	"github.com/optralis/optralis/internal/winbuilds"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cycles(t *testing.T, names ...string) []winbuilds.Cycle {
	t.Helper()
	var all []winbuilds.Cycle
	for _, n := range names {
		var cs []winbuilds.Cycle
		if err := json.Unmarshal(fixture(t, n), &cs); err != nil {
			t.Fatal(err)
		}
		all = append(all, cs...)
	}
	return all
}

func summary(builds []winbuilds.Build) string {
	var lines []string
	for _, b := range builds {
		d := "-"
		if b.ReleaseDate != nil {
			d = b.ReleaseDate.Format("2006-01-02")
		}
		lines = append(lines, fmt.Sprintf("%s %d %s %s", b.OSType, b.BuildNumber, b.Name, d))
	}
	return strings.Join(lines, "\n")
}

// The fixtures are endoflife.date's format (windows.json and windows-server.json).
func TestParseFixtures(t *testing.T) {
	builds, err := winbuilds.Parse(cycles(t, "windows.json", "windows-server.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"client 17763 Windows 10 LTSC 2019 2018-11-13", // 10-1809-e-lts wins over 10-1809-w
		"client 19044 Windows 10 LTSC 2021 2021-11-16", // 10-21h2-e-lts over 10-21h2-w; 10-21h2-iot-lts dropped
		"client 19045 Windows 10 (22H2) 2022-10-18",
		"client 22631 Windows 11 (23H2) 2023-10-31",
		"client 26100 Windows 11 (24H2) 2024-10-01", // -w/-e over -e-lts; -iot-lts dropped
		"client 26200 Windows 11 (25H2) 2025-09-30",
		"server 17763 Windows Server 2019 2018-11-13", // 1809-sac ignored
		"server 20348 Windows Server 2022 2021-08-18", // 20h2, 2004 (semi-annual) ignored
		"server 26100 Windows Server 2025 2024-11-01", // 23h2 ignored; 2016 (14393) below 17763
	}, "\n")
	if got := summary(builds); got != want {
		t.Fatalf("parsed:\n%s\nwant:\n%s", got, want)
	}
}

func TestParseRefusals(t *testing.T) {
	for name, cs := range map[string][]winbuilds.Cycle{
		"unreadable latest":  {{Cycle: "11-24h2-w", Latest: "twenty-six", ReleaseDate: "2024-10-01"}},
		"latest too short":   {{Cycle: "2025", Latest: "10.0"}},
		"malformed date":     {{Cycle: "10-22h2", Latest: "10.0.19045", ReleaseDate: "18/10/2022"}},
		"build not a number": {{Cycle: "2022", Latest: "10.0.x"}},
	} {
		_, err := winbuilds.Parse(cs)
		if ae, ok := apperr.As(err); !ok || ae.Code != apperr.Upstream {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Irrelevant cycles are ignored whatever their content.
	if b, err := winbuilds.Parse([]winbuilds.Cycle{{Cycle: "xp", Latest: "garbage"}, {Cycle: "10-1507-iot", Latest: "?"}}); err != nil || len(b) != 0 {
		t.Fatalf("%v %v", b, err)
	}
}

// upstream serves the fixtures like endoflife.date, or misbehaves as told.
func upstream(t *testing.T, serve func(w http.ResponseWriter, r *http.Request, name string) bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/api/")
		if serve != nil && serve(w, r, name) {
			return
		}
		switch name {
		case "windows.json", "windows-server.json":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(fixture(t, name))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func dump(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	rows, _ := pool.Query(context.Background(), `SELECT os_type || ' ' || build_number || ' ' || name || ' ' || coalesce(release_date::text, '-') || ' ' || sort_order || ' ' || is_active
		FROM windows_builds ORDER BY os_type, build_number`)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func TestRefreshUpsertsFromTheAPI(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	ctx := context.Background()
	// A name the upstream now spells differently, to see an update.
	if _, err := pool.Exec(ctx, `UPDATE windows_builds SET name = 'Windows 10 22H2' WHERE os_type = 'client' AND build_number = 19045`); err != nil {
		t.Fatal(err)
	}
	srv := upstream(t, nil)
	src := winbuilds.Source{BaseURL: srv.URL + "/api", Client: &http.Client{Timeout: 5 * time.Second}}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	out, err := winbuilds.Refresh(ctx, pool, src, "", "192.0.2.7", now)
	if err != nil {
		t.Fatal(err)
	}
	if out.Inserted != 1 || out.Updated != 1 || out.Unchanged != 7 {
		t.Fatalf("change %+v, want 1 inserted (26200), 1 updated (19045), 7 unchanged", out.Change)
	}
	got := dump(t, pool)
	for _, want := range []string{
		"client 19045 Windows 10 (22H2) 2022-10-18 80 true",
		"client 26100 Windows 11 (24H2) 2024-10-01 120 true",
		"client 26200 Windows 11 (25H2) 2025-09-30 130 true",
		"server 14393 Windows Server 2016 2016-10-12 10 true", // seeded, kept though below 17763 upstream
		"server 26100 Windows Server 2025 2024-11-01 40 true",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if len(out.Builds.Client) != 13 || len(out.Builds.Server) != 4 || out.Builds.Client[12].BuildNumber != 26200 {
		t.Fatalf("grouped answer: %d client, %d server", len(out.Builds.Client), len(out.Builds.Server))
	}
	// A second refresh changes nothing.
	again, err := winbuilds.Refresh(ctx, pool, src, "", "", now.Add(time.Hour))
	if err != nil || again.Inserted+again.Updated != 0 || dump(t, pool) != got {
		t.Fatalf("second refresh: %+v %v", again.Change, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM activity_logs WHERE action = 'windows_builds_refreshed'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d audit entries, %v", n, err)
	}
	// The application's clock stamps the rows, not the database's.
	var created, firstAudit time.Time
	if err := pool.QueryRow(ctx, `SELECT created_at FROM windows_builds WHERE os_type = 'client' AND build_number = 26200`).Scan(&created); err != nil || !created.Equal(now) {
		t.Fatalf("inserted build created_at %v (%v), want %v", created, err, now)
	}
	if err := pool.QueryRow(ctx, `SELECT min(created_at) FROM activity_logs WHERE action = 'windows_builds_refreshed'`).Scan(&firstAudit); err != nil || !firstAudit.Equal(now) {
		t.Fatalf("audit created_at %v (%v), want %v", firstAudit, err, now)
	}
}

// Timeout, non-200, malformed answers: 502 with a message saying what failed, and not a
// row changed.
func TestRefreshUpstreamFailuresChangeNothing(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	before := dump(t, pool)
	body := func(name, content string) func(http.ResponseWriter, *http.Request, string) bool {
		return func(w http.ResponseWriter, _ *http.Request, n string) bool {
			if n != name {
				return false
			}
			_, _ = w.Write([]byte(content))
			return true
		}
	}
	cases := []struct {
		name  string
		serve func(http.ResponseWriter, *http.Request, string) bool
		want  string
	}{
		{"timeout", func(w http.ResponseWriter, r *http.Request, n string) bool {
			if n == "windows-server.json" {
				select {
				case <-time.After(3 * time.Second):
				case <-r.Context().Done():
				}
			}
			return false
		}, "windows-server.json did not answer in time"},
		{"server error", func(w http.ResponseWriter, _ *http.Request, n string) bool {
			if n == "windows.json" {
				http.Error(w, "boom", 500)
				return true
			}
			return false
		}, "windows.json answered HTTP 500"},
		{"not found", func(w http.ResponseWriter, r *http.Request, n string) bool {
			if n == "windows-server.json" {
				http.NotFound(w, r)
				return true
			}
			return false
		}, "windows-server.json answered HTTP 404"},
		{"object instead of list", body("windows.json", `{"cycles":[]}`), "windows.json is not the expected JSON"},
		{"truncated", body("windows.json", `[{"cycle":"11-24h2-w","latest":"10.0.26`), "windows.json is not the expected JSON"},
		{"HTML", body("windows-server.json", `<html>maintenance</html>`), "windows-server.json is not the expected JSON"},
		{"cycle not a string", body("windows.json", `[{"cycle":true,"latest":"10.0.26100"}]`), "windows.json is not the expected JSON"},
		{"bad latest", body("windows.json", `[{"cycle":"11-24h2-w","latest":"soon"}]`), `cycle "11-24h2-w" has no readable build`},
		{"no server builds", body("windows-server.json", `[]`), "lists no supported Windows Server build"},
		{"no client builds", body("windows.json", `[{"cycle":"8.1","latest":"6.3.9600"}]`), "lists no supported Windows client build"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := upstream(t, tc.serve)
			src := winbuilds.Source{BaseURL: srv.URL + "/api", Client: &http.Client{Timeout: 300 * time.Millisecond}}
			// Through the handler, as the platform admin calls it.
			r := httptest.NewRequest("POST", "/api/admin/windows-builds/refresh", nil)
			r = r.WithContext(principal.With(r.Context(), principal.Principal{UserID: "00000000-0000-0000-0000-000000000001", Role: principal.RolePlatformAdmin}))
			w := httptest.NewRecorder()
			winbuilds.HandleRefresh(winbuilds.Deps{Pool: pool, Source: src, Logger: testenv.Discard(), Clock: clock.System{}}).ServeHTTP(w, r)
			var b struct {
				Error struct{ Code, Message string }
			}
			_ = json.Unmarshal(w.Body.Bytes(), &b)
			if w.Code != 502 || b.Error.Code != "upstream_error" || !strings.Contains(b.Error.Message, tc.want) {
				t.Fatalf("%d %s, want 502 with %q", w.Code, w.Body.String(), tc.want)
			}
			if after := dump(t, pool); after != before {
				t.Fatalf("rows changed:\n%s", after)
			}
		})
	}
}

func TestListHandler(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	w := httptest.NewRecorder()
	winbuilds.HandleList(winbuilds.Deps{Pool: pool, Logger: testenv.Discard(), Clock: clock.System{}}).ServeHTTP(w, httptest.NewRequest("GET", "/api/admin/windows-builds", nil))
	var g winbuilds.Grouped
	if err := json.Unmarshal(w.Body.Bytes(), &g); err != nil || w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	if len(g.Client) != 12 || len(g.Server) != 4 || g.Client[0].Name != "Windows 10 LTSC 2019" || g.Server[3].Name != "Windows Server 2025" {
		t.Fatalf("seeded builds: %+v", g)
	}
}
