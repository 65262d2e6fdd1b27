package status_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/status"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestCheckRecordsServices(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	tr := status.Tracker{Pool: pool, Logger: testenv.Discard()}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	if err := tr.Check(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	latest, err := tr.Latest(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(latest) != 2 || latest[0].Name != "api" || latest[1].Name != "database" || latest[1].Status != status.Online {
		t.Fatalf("latest = %+v", latest)
	}
}

func TestUptime15Days(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	tr := status.Tracker{Pool: pool, Logger: testenv.Discard()}
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC) // current period: 00:00-12:00 on the 24th

	// Current period: api online twice, database offline once and degraded once -> 3/4 available.
	// Period 10 days earlier: everything offline -> 0 %. Data older than 15 days is ignored.
	_, err := pool.Exec(ctx, `INSERT INTO service_uptime (service_name, status, response_time_ms, checked_at) VALUES
		('api', 'online', 0, '2026-11-24 01:00Z'), ('database', 'offline', 0, '2026-11-24 01:00Z'),
		('api', 'online', 0, '2026-11-24 09:30Z'), ('database', 'degraded', 1500, '2026-11-24 09:30Z'),
		('api', 'offline', 0, '2026-11-14 03:00Z'), ('database', 'offline', 0, '2026-11-14 03:00Z'),
		('api', 'offline', 0, '2026-11-01 03:00Z')`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tr.Uptime15Days(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != status.Periods {
		t.Fatalf("%d values, want 30", len(got))
	}
	if got[29] != 75 {
		t.Errorf("current period = %v, want 75", got[29])
	}
	if got[9] != 0 { // 2026-11-14 00:00-12:00 is 20 periods before the current one
		t.Errorf("10 days ago = %v, want 0 (values %v)", got[9], got)
	}
	for i, v := range got {
		if i != 9 && i != 29 && v != 100 {
			t.Errorf("period %d without checks = %v, want 100", i, v)
		}
	}

	// The public page reflects it.
	w := httptest.NewRecorder()
	status.HandleStatus(tr, clock.Fixed(now)).ServeHTTP(w, httptest.NewRequest("GET", "/status", nil))
	var page status.Page
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	if page.Status != status.Degraded || len(page.Services) != 2 || len(page.Uptime15Days) != 30 {
		t.Fatalf("page = %+v", page)
	}
	if want := time.Date(2026, 11, 9, 12, 0, 0, 0, time.UTC); !page.UptimeStart.Equal(want) {
		t.Fatalf("uptime_start = %v, want %v (30 half-days ending with the current one)", page.UptimeStart, want)
	}
	if want := (28*100.0 + 75) / 30; page.UptimePercent != want {
		t.Fatalf("uptime percent = %v, want %v", page.UptimePercent, want)
	}
}

func TestStatusWithDatabaseDown(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	pool.Close()
	tr := status.Tracker{Pool: pool, Logger: testenv.Discard()}
	w := httptest.NewRecorder()
	status.HandleStatus(tr, clock.System{}).ServeHTTP(w, httptest.NewRequest("GET", "/status", nil))
	var page status.Page
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	if page.Status != status.Degraded || page.Services[1].Status != status.Offline {
		t.Fatalf("page = %+v", page)
	}
	if err := tr.Check(context.Background(), time.Now()); err == nil {
		t.Fatal("check succeeded with the database closed")
	}
}

func TestCacheCheckedWhenConfigured(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	rc, _ := testenv.Redis(t)
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	tr := status.Tracker{Pool: pool, Redis: rc, Logger: testenv.Discard()}
	if err := tr.Check(ctx, now); err != nil {
		t.Fatal(err)
	}
	// Redis gone: the check still succeeds and records the cache as offline, shown on the
	// page as optional; the whole service stays online and the uptime ignores it.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer dead.Close()
	tr.Redis = dead
	if err := tr.Check(ctx, now.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	latest, err := tr.Latest(ctx, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]status.ServiceState{}
	for _, s := range latest {
		got[s.Name] = s
	}
	if got["cache"].Status != status.Offline || !got["cache"].Optional || got["database"].Status != status.Online || got["database"].Optional || got["api"].Status != status.Online {
		t.Fatalf("latest = %+v", got)
	}
	if o := status.Overall(latest); o != status.Online {
		t.Fatalf("overall with the cache down = %s, want online", o)
	}
	up, err := tr.Uptime15Days(ctx, now.Add(time.Hour))
	if err != nil || up[status.Periods-1] != 100 {
		t.Fatalf("uptime with only the cache down = %v %v, want 100 in the current period", up, err)
	}
	w := httptest.NewRecorder()
	status.HandleStatus(tr, clock.Fixed(now.Add(time.Hour))).ServeHTTP(w, httptest.NewRequest("GET", "/status", nil))
	var page status.Page
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || page.Status != status.Online || len(page.Services) != 3 {
		t.Fatalf("page with the cache down: %s", w.Body.String())
	}
}

// TestAIChecked: with a provider configured, GET <health URL> decides the ai service
// (a real local HTTP server stands in for the provider).
func TestAIChecked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	var mu sync.Mutex
	answer, code, hits := `{"status":"healthy"}`, 200, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		hits++
		if r.Method != http.MethodGet || r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(answer))
	}))
	defer srv.Close()
	tr := status.Tracker{Pool: pool, Logger: testenv.Discard(), AIHealthURL: srv.URL + "/health"}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for i, c := range []struct {
		answer string
		code   int
		want   string
	}{
		{`{"status":"healthy"}`, 200, status.Online},
		{`{"status":"overloaded"}`, 200, status.Degraded},
		{`{"status":"healthy"}`, 503, status.Degraded},
		{`not json`, 200, status.Degraded},
	} {
		mu.Lock()
		answer, code = c.answer, c.code
		mu.Unlock()
		at := now.Add(time.Duration(i) * 30 * time.Minute)
		if err := tr.Check(ctx, at); err != nil {
			t.Fatal(err)
		}
		if got := latestOf(t, tr, at, "ai"); got.Status != c.want || got.Optional {
			t.Errorf("%d %s: ai = %+v, want %s", c.code, c.answer, got, c.want)
		}
	}
	// The provider unreachable: offline, and the whole service with it.
	srv.Close()
	at := now.Add(3 * time.Hour)
	if err := tr.Check(ctx, at); err != nil {
		t.Fatal(err)
	}
	if got := latestOf(t, tr, at, "ai"); got.Status != status.Offline {
		t.Errorf("unreachable provider: ai = %+v", got)
	}
	latest, _ := tr.Latest(ctx, at)
	if o := status.Overall(latest); o != status.Offline {
		t.Errorf("overall with the AI provider down = %s, want offline", o)
	}
	// No provider configured: no ai row.
	tr.AIHealthURL = ""
	if err := tr.Check(ctx, at.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM service_uptime WHERE checked_at = $1`, at.Add(30*time.Minute)).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows without a provider = %d %v, want 2 (api, database)", n, err)
	}
}

// TestCheckIsIdempotent: a retried invocation (same now), even concurrent, records once.
func TestCheckIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	tr := status.Tracker{Pool: pool, Logger: testenv.Discard()}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- tr.Check(ctx, now) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM service_uptime`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows after 4 runs at one instant = %d %v, want 2", n, err)
	}
}

func latestOf(t *testing.T, tr status.Tracker, now time.Time, name string) status.ServiceState {
	t.Helper()
	latest, err := tr.Latest(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range latest {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no %s in %+v", name, latest)
	return status.ServiceState{}
}

// TestTimescaleUptime: in timescale mode (service_uptime is a hypertable, compressed after
// two days) the check records once per instant and the page reads the same figures,
// compressed chunks included.
func TestTimescaleUptime(t *testing.T) {
	ctx := context.Background()
	pool := testenv.Timescale(t)
	tr := status.Tracker{Pool: pool, Logger: testenv.Discard()}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for range 2 {
		if err := tr.Check(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	_, err := pool.Exec(ctx, `INSERT INTO service_uptime (service_name, status, response_time_ms, checked_at) VALUES
		('api', 'online', 0, '2026-11-14 03:00Z'), ('database', 'offline', 0, '2026-11-14 03:00Z'),
		('cache', 'offline', 0, '2026-11-14 03:00Z')`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('service_uptime', older_than => '2026-11-20'::timestamptz) c`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM service_uptime WHERE checked_at = $1`, now).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows at now after two runs = %d %v, want 2", n, err)
	}
	up, err := tr.Uptime15Days(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if up[9] != 50 || up[29] != 100 {
		t.Fatalf("uptime = %v, want 50 on 14 Nov (the cache not counted) and 100 now", up)
	}
}
