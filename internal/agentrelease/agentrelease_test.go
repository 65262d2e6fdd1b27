package agentrelease_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/agentrelease"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/heartbeat"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	pool  *pgxpool.Pool
	cache cache.Store
	h     http.Handler
	admin principal.Principal
}

func newEnv(t *testing.T, rc *redis.Client) *env {
	t.Helper()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	live, prefix := testenv.Redis(t)
	if rc == nil {
		rc = live
	}
	e := &env{t: t, pool: pool, cache: cache.Store{Redis: rc, Prefix: prefix}}
	d := agentrelease.Deps{Pool: pool, Cache: e.cache, Clock: clock.Fixed(t0), Logger: testenv.Discard()}
	mux := http.NewServeMux()
	mux.Handle("GET /api/admin/agent-versions", agentrelease.HandleList(d))
	mux.Handle("PUT /api/admin/agent-versions/{channel}", agentrelease.HandlePublish(d))
	e.h = mux
	var id string
	if err := pool.QueryRow(context.Background(), `INSERT INTO users (email, password_hash, role) VALUES ('root@example.com', 'x', 'platform_admin') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	e.admin = principal.Principal{UserID: id, Role: principal.RolePlatformAdmin}
	return e
}

type answer struct {
	Code int
	Body string
}

func (e *env) do(method, path, body string) answer {
	r := httptest.NewRequest(method, path, bytes.NewBufferString(body))
	r.Header.Set("Content-Type", "application/json")
	r = r.WithContext(principal.With(r.Context(), e.admin))
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return answer{w.Code, w.Body.String()}
}

var sum = strings.Repeat("0123456789ABCDEF", 4)

func body(mod func(m map[string]any)) string {
	m := map[string]any{"version": "1.4.2", "notes": "  Fixes.\nMore fixes.  ",
		"downloads": map[string]any{
			"amd64": map[string]string{"url": "https://downloads.example.test/1.4.2/agent-amd64", "sha256": sum},
			"arm64": map[string]string{"url": "https://downloads.example.test/1.4.2/agent-arm64", "sha256": strings.ToLower(sum)},
		}}
	if mod != nil {
		mod(m)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestPublishAndList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	key := e.cache.Key(heartbeat.AgentVersionCacheKey("stable"))
	e.cache.Redis.Set(ctx, key, "1.0.0", time.Minute)

	a := e.do("PUT", "/api/admin/agent-versions/stable", body(nil))
	var rel agentrelease.Release
	if err := json.Unmarshal([]byte(a.Body), &rel); a.Code != 200 || err != nil {
		t.Fatalf("publish: %d %s", a.Code, a.Body)
	}
	if rel.Channel != "stable" || rel.Version != "1.4.2" || rel.Notes != "Fixes.\nMore fixes." || !rel.PublishedAt.Equal(t0) ||
		rel.PublishedBy == nil || *rel.PublishedBy != e.admin.UserID || rel.Downloads["amd64"].SHA256 != strings.ToLower(sum) || len(rel.Downloads) != 2 {
		t.Fatalf("published %+v", rel)
	}
	// The heartbeats' cached version of the channel is dropped (the deployment's key).
	if n := e.cache.Redis.Exists(ctx, key).Val(); n != 0 {
		t.Fatal("agent:version:stable still cached")
	}
	// A second channel, then a new release replacing the first channel's.
	if a := e.do("PUT", "/api/admin/agent-versions/beta-2", body(func(m map[string]any) { m["version"] = "v2.0.0-rc.1+build.7"; delete(m, "notes") })); a.Code != 200 {
		t.Fatalf("beta: %d %s", a.Code, a.Body)
	}
	if a := e.do("PUT", "/api/admin/agent-versions/stable", body(func(m map[string]any) {
		m["version"] = "1.5.0"
		m["downloads"] = map[string]any{"386": map[string]string{"url": "https://d.example.test/a", "sha256": sum}}
	})); a.Code != 200 {
		t.Fatalf("replace: %d %s", a.Code, a.Body)
	}
	a = e.do("GET", "/api/admin/agent-versions", "")
	var list struct{ Releases []agentrelease.Release }
	if err := json.Unmarshal([]byte(a.Body), &list); a.Code != 200 || err != nil || len(list.Releases) != 2 {
		t.Fatalf("list: %d %s", a.Code, a.Body)
	}
	beta, stable := list.Releases[0], list.Releases[1]
	if beta.Channel != "beta-2" || beta.Version != "v2.0.0-rc.1+build.7" || beta.Notes != "" ||
		stable.Channel != "stable" || stable.Version != "1.5.0" || len(stable.Downloads) != 1 || stable.Downloads["386"].URL != "https://d.example.test/a" {
		t.Fatalf("list: %s", a.Body)
	}
	var n int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM activity_logs WHERE action = 'agent_version_published' AND client_id IS NULL
		AND user_id = $1 AND created_at = $2`, e.admin.UserID, t0).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d audit entries: %v", n, err)
	}
}

// Every bad field is a 400 naming it, and nothing is published.
func TestPublishBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	dl := func(arch, url, sha string) func(m map[string]any) {
		return func(m map[string]any) {
			m["downloads"] = map[string]any{arch: map[string]string{"url": url, "sha256": sha}}
		}
	}
	cases := []struct {
		channel string
		mod     func(m map[string]any)
		field   string
	}{
		{"Stable", nil, "channel"},
		{"1stable", nil, "channel"},
		{"stable_x", nil, "channel"},
		{strings.Repeat("a", 21), nil, "channel"},
		{"stable", func(m map[string]any) { delete(m, "version") }, "version"},
		{"stable", func(m map[string]any) { m["version"] = "1.4" }, "version"},
		{"stable", func(m map[string]any) { m["version"] = "latest" }, "version"},
		{"stable", func(m map[string]any) { m["version"] = "01.2.3" }, "version"},
		{"stable", func(m map[string]any) { m["version"] = "1.2.3-" + strings.Repeat("a", 45) }, "version"},
		{"stable", func(m map[string]any) { delete(m, "downloads") }, "downloads"},
		{"stable", func(m map[string]any) { m["downloads"] = map[string]any{} }, "downloads"},
		{"stable", dl("armv9", "https://d.example.test/a", sum), "downloads.armv9"},
		{"stable", dl("amd64", "http://d.example.test/a", sum), "downloads.amd64.url"},
		{"stable", dl("amd64", "https:///nohost", sum), "downloads.amd64.url"},
		{"stable", dl("amd64", "https://user:pw@d.example.test/a", sum), "downloads.amd64.url"},
		{"stable", dl("amd64", "", sum), "downloads.amd64.url"},
		{"stable", dl("amd64", "https://d.example.test/"+strings.Repeat("a", 2048), sum), "downloads.amd64.url"},
		{"stable", dl("amd64", "https://d.example.test/a", sum[:63]), "downloads.amd64.sha256"},
		{"stable", dl("amd64", "https://d.example.test/a", sum[:63]+"g"), "downloads.amd64.sha256"},
		{"stable", func(m map[string]any) { m["notes"] = strings.Repeat("n", agentrelease.MaxNotesLen+1) }, "notes"},
		{"stable", func(m map[string]any) { m["notes"] = "bell\a" }, "notes"},
		{"stable", func(m map[string]any) { m["extra"] = 1 }, ""},
		{"stable", func(m map[string]any) {
			m["downloads"] = map[string]any{"amd64": map[string]string{"url": "https://d.example.test/a", "sha256": sum, "md5": "x"}}
		}, ""},
	}
	for _, c := range cases {
		a := e.do("PUT", "/api/admin/agent-versions/"+c.channel, body(c.mod))
		if a.Code != 400 {
			t.Errorf("%s %s: %d %s", c.channel, body(c.mod)[:min(len(body(c.mod)), 120)], a.Code, a.Body)
			continue
		}
		var b struct {
			Error struct{ Fields map[string]string }
		}
		_ = json.Unmarshal([]byte(a.Body), &b)
		if _, ok := b.Error.Fields[c.field]; c.field != "" && !ok {
			t.Errorf("%s: does not name %s: %s", c.channel, c.field, a.Body)
		}
	}
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM agent_releases`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d releases after refusals: %v", n, err)
	}
}

func TestPublishWithRedisDown(t *testing.T) {
	t.Parallel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = dead.Close() })
	e := newEnv(t, dead)
	if a := e.do("PUT", "/api/admin/agent-versions/stable", body(nil)); a.Code != 200 {
		t.Fatalf("publish with Redis down: %d %s", a.Code, a.Body)
	}
	if a := e.do("GET", "/api/admin/agent-versions", ""); a.Code != 200 || !strings.Contains(a.Body, `"version":"1.4.2"`) {
		t.Fatalf("list with Redis down: %d %s", a.Code, a.Body)
	}
}
