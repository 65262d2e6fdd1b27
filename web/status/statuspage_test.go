package statuspage_test

import (
	"bytes"
	"context"
	"flag"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/localsvc"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/status"
	"github.com/optralis/optralis/internal/testenv"
	statuspage "github.com/optralis/optralis/web/status"
)

// -update rewrites the README's screenshot (docs/status-page.png) from the outage test.
var update = flag.Bool("update", false, "rewrite docs/status-page.png")

func TestMain(m *testing.M) { testenv.Main(m) }

// now is the pages' fixed clock: 24 Nov 2026 10:00 UTC, in the 00:00–12:00 period.
var now = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// site serves the page and GET /status from one origin, as the local stack does, over a
// database holding the planted checks.
func site(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	tr := status.Tracker{Pool: pool, Logger: testenv.Discard()}
	mux := http.NewServeMux()
	mux.Handle(statuspage.Prefix, statuspage.Handler())
	mux.Handle("GET /status", status.HandleStatus(tr, clock.Fixed(now)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + statuspage.Prefix
}

// plant records a check of every service every 30 minutes over the 15 days up to now,
// with the statuses status(service, at) returns.
func plant(t *testing.T, pool *pgxpool.Pool, st func(service string, at time.Time) string) {
	t.Helper()
	var names, statuses []string
	var times []time.Time
	var ms []int64
	for at := now.Add(-15 * 24 * time.Hour); !at.After(now); at = at.Add(30 * time.Minute) {
		for _, s := range []string{"api", "database", "ai", "cache"} {
			names, statuses, times = append(names, s), append(statuses, st(s, at)), append(times, at)
			ms = append(ms, map[string]int64{"api": 0, "database": 3, "ai": 180, "cache": 1}[s])
		}
	}
	_, err := pool.Exec(context.Background(), `
		INSERT INTO service_uptime (service_name, status, response_time_ms, checked_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[])`, names, statuses, ms, times)
	if err != nil {
		t.Fatal(err)
	}
}

// chromium returns the path of a headless-capable Chromium, installing Debian's package
// when missing and running as root (as the harness does for PostgreSQL); otherwise the
// test is skipped with the missing prerequisite named.
func chromium(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if p, err := exec.LookPath("chromium"); err == nil {
			return p
		}
		t.Skip("prerequisite missing: Chromium (install Debian's package: sudo apt-get install -y chromium)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	p, err := localsvc.EnsureTool(ctx, "chromium", "chromium")
	if err != nil {
		t.Fatalf("installing Chromium: %v", err)
	}
	return p
}

// browse runs headless Chromium on url: the DOM after the page's scripts have run, and
// a screenshot when shot is set.
func browse(t *testing.T, url, shot string) string {
	t.Helper()
	bin := chromium(t)
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--hide-scrollbars", "--window-size=900,780",
		"--virtual-time-budget=15000"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if shot != "" {
		out, err := exec.CommandContext(ctx, bin, append(args, "--screenshot="+shot, url)...).CombinedOutput()
		if err != nil {
			t.Fatalf("chromium --screenshot: %v\n%s", err, out)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append(args, "--dump-dom", url)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium --dump-dom: %v\n%s", err, stderr.String())
	}
	return stdout.String()
}

var (
	barRE     = regexp.MustCompile(`<div class="bar (\w+)"[^>]*data-uptime="([^"]*)"[^>]*data-period-start="([^"]*)"[^>]*title="([^"]*)"`)
	serviceRE = regexp.MustCompile(`<li class="service" data-service="(\w+)" data-status="(\w+)">(.*?)</li>`)
	overallRE = regexp.MustCompile(`<section id="overall" class="overall" data-state="(\w+)"[^>]*>[\s\S]*?<span id="overall-text">([^<]*)</span>`)
)

type bar struct{ level, uptime, start, title string }

type rendered struct {
	overall, overallText string
	services             map[string]string // name -> status
	optional             map[string]bool
	order                []string
	bars                 []bar
}

func parse(t *testing.T, dom string) rendered {
	t.Helper()
	if !strings.Contains(dom, `data-loaded="true"`) {
		t.Fatalf("the page did not render GET /status:\n%s", dom)
	}
	var r rendered
	m := overallRE.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no overall state in:\n%s", dom)
	}
	r.overall, r.overallText = m[1], html.UnescapeString(m[2])
	r.services, r.optional = map[string]string{}, map[string]bool{}
	for _, m := range serviceRE.FindAllStringSubmatch(dom, -1) {
		r.services[m[1]] = m[2]
		r.order = append(r.order, m[1])
		r.optional[m[1]] = regexp.MustCompile(`class="tag"[^>]*>optional<`).MatchString(m[3])
	}
	for _, m := range barRE.FindAllStringSubmatch(dom, -1) {
		r.bars = append(r.bars, bar{m[1], m[2], m[3], html.UnescapeString(m[4])})
	}
	return r
}

// TestPageShowsServicesAndAnOutage: 15 days of checks with a database outage on the
// morning of 20 November (6 of 24 checks offline) and one failed check on the 14th. The
// page shows the four services, the cache as optional, 30 bars oldest first, the outage
// as a red bar with its period and figure, the single failure as an amber one.
func TestPageShowsServicesAndAnOutage(t *testing.T) {
	pool := testenv.NewDB(t, migrate.ModePostgres)
	outage := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	blip := time.Date(2026, 11, 14, 15, 30, 0, 0, time.UTC)
	plant(t, pool, func(s string, at time.Time) string {
		switch {
		case s == "database" && !at.Before(outage) && at.Before(outage.Add(3*time.Hour)):
			return status.Offline
		case s == "database" && at.Equal(blip):
			return status.Offline
		case s == "ai" && at.Equal(blip):
			return status.Degraded // available: counts as up
		}
		return status.Online
	})
	shot := filepath.Join(t.TempDir(), "status-page.png")
	r := parse(t, browse(t, site(t, pool), shot))

	if r.overall != "online" || r.overallText != "All systems operational" {
		t.Errorf("overall = %s %q", r.overall, r.overallText)
	}
	for _, s := range []string{"api", "database", "ai", "cache"} {
		if r.services[s] != "online" {
			t.Errorf("service %s = %q, want online (services %v)", s, r.services[s], r.services)
		}
	}
	if got := strings.Join(r.order, ","); got != "api,database,ai,cache" {
		t.Errorf("services in order %s, want api,database,ai,cache", got)
	}
	if !r.optional["cache"] || r.optional["database"] {
		t.Errorf("optional = %v, want the cache only", r.optional)
	}
	if len(r.bars) != status.Periods {
		t.Fatalf("%d bars, want %d", len(r.bars), status.Periods)
	}
	if r.bars[0].start != "2026-11-09T12:00:00.000Z" || r.bars[29].start != "2026-11-24T00:00:00.000Z" {
		t.Errorf("bars run %s .. %s, want 9 Nov 12:00 .. 24 Nov 00:00", r.bars[0].start, r.bars[29].start)
	}
	for i, b := range r.bars {
		want := bar{"up", "100", b.start, b.title}
		switch b.start {
		case "2026-11-20T00:00:00.000Z": // 24 checks × 3 counted services (not the cache) = 72, 6 offline
			want = bar{"down", "91.66666666666667", b.start, "20 Nov 00:00–12:00 UTC: 91.6 % available"}
		case "2026-11-14T12:00:00.000Z": // one offline check of 72
			want = bar{"partial", "98.61111111111111", b.start, "14 Nov 12:00–24:00 UTC: 98.6 % available"}
		}
		if b != want {
			t.Errorf("bar %d = %+v, want %+v", i, b, want)
		}
	}
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot: %v", err)
	}
	if *update {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "status-page.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPageShowsCurrentOutage: the latest checks say the database is offline: the page
// says so; the cache being down alone leaves the service operational.
func TestPageShowsCurrentOutage(t *testing.T) {
	pool := testenv.NewDB(t, migrate.ModePostgres)
	plant(t, pool, func(s string, at time.Time) string {
		if s == "cache" && at.After(now.Add(-2*time.Hour)) {
			return status.Offline
		}
		if s == "database" && at.Equal(now) {
			return status.Offline
		}
		return status.Online
	})
	r := parse(t, browse(t, site(t, pool), ""))
	if r.overall != "offline" || r.overallText != "Service outage" || r.services["database"] != "offline" || r.services["cache"] != "offline" {
		t.Errorf("page = %+v", r)
	}
	if len(r.bars) != status.Periods || r.bars[29].level != "partial" {
		t.Errorf("bars = %+v", r.bars)
	}

	// Only the (optional) cache down: operational.
	if _, err := pool.Exec(context.Background(), `DELETE FROM service_uptime WHERE service_name = 'database' AND checked_at = $1`, now); err != nil {
		t.Fatal(err)
	}
	r = parse(t, browse(t, site(t, pool), ""))
	if r.overall != "online" || r.services["cache"] != "offline" || !r.optional["cache"] {
		t.Errorf("page with only the cache down = %+v", r)
	}
}

// TestPageSaysWhenTheAPIIsUnreachable: no GET /status answer, an explicit message.
func TestPageSaysWhenTheAPIIsUnreachable(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(statuspage.Prefix, statuspage.Handler())
	srv := httptest.NewServer(mux) // GET /status: 404
	defer srv.Close()
	dom := browse(t, srv.URL+statuspage.Prefix, "")
	if !strings.Contains(dom, `data-state="error"`) || !strings.Contains(dom, "Status unavailable") {
		t.Fatalf("dom:\n%s", dom)
	}
}
