// Package testenv gives tests real PostgreSQL and Redis servers: the ones named by
// TEST_DATABASE_URL / TEST_REDIS_URL, or throwaway servers it starts itself.
//
// Each test gets its own database cloned from a migrated template, so tests stay isolated
// and can run in parallel. Packages using it call testenv.Main from TestMain so that
// throwaway servers are stopped when the tests end.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/localsvc"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/migrations"
)

// The servers are shared by every test of the process. This is the one place with
// package-level state: a test binary is one process and its servers live as long as it.
var (
	pgOnce   sync.Once
	pgURL    string
	pgErr    error
	pgServer *localsvc.Postgres
	pgTmpDir string

	redisOnce   sync.Once
	redisURL    string
	redisErr    error
	redisServer *localsvc.Redis

	templates sync.Map // mode -> *templateOnce
)

type templateOnce struct {
	once sync.Once
	name string
	err  error
}

// Main runs the tests and then stops any server this package started.
func Main(m *testing.M) {
	code := m.Run()
	if pgServer != nil {
		_ = pgServer.Stop()
		_ = os.RemoveAll(pgTmpDir)
	}
	if redisServer != nil {
		redisServer.Stop()
	}
	os.Exit(code)
}

// ServerURL returns the URL of the PostgreSQL server's maintenance database.
func ServerURL(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() {
		if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
			pgURL = u
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if pgErr = localsvc.EnsurePostgresInstalled(ctx, func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }); pgErr != nil {
			return
		}
		if pgTmpDir, pgErr = os.MkdirTemp("", "optralis-testpg-"); pgErr != nil {
			return
		}
		pgServer, pgErr = localsvc.StartPostgres(ctx, pgTmpDir+"/data", 0, true)
		if pgErr == nil {
			pgURL = pgServer.URL("postgres")
		}
	})
	if pgErr != nil {
		t.Fatalf("testenv: no PostgreSQL server (set TEST_DATABASE_URL or install postgresql): %v", pgErr)
	}
	return pgURL
}

// WithDatabase returns url with its database name replaced.
func WithDatabase(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

// EmptyDatabase creates a fresh, unmigrated database dropped when the test ends, and
// returns its URL.
func EmptyDatabase(t testing.TB) string {
	t.Helper()
	return createDatabase(t, "")
}

// NewDB returns a pool on a fresh database migrated in the given mode ("postgres" on plain
// PostgreSQL), cloned from a template migrated once per process.
func NewDB(t testing.TB, mode string) *pgxpool.Pool {
	t.Helper()
	tmpl, err := template(t, mode)
	if err != nil {
		t.Fatalf("testenv: template: %v", err)
	}
	u := createDatabase(t, tmpl)
	return Pool(t, u, db.ToolProfile())
}

// Pool opens a pool on url closed when the test ends.
func Pool(t testing.TB, rawURL string, p db.Profile) *pgxpool.Pool {
	t.Helper()
	cfg, err := db.Config(rawURL, p)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := db.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func createDatabase(t testing.TB, template string) string {
	t.Helper()
	admin := ServerURL(t)
	name := "t_" + randomHex(8)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer conn.Close(ctx)
	stmt := "CREATE DATABASE " + name
	if template != "" {
		stmt += " TEMPLATE " + template
	}
	// Cloning fails while another session is still attached to the template; retry briefly.
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, stmt)
		if err == nil || attempt == 50 || !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("testenv: %s: %v", stmt, err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return WithDatabase(admin, name)
}

// template returns the name of a database migrated in mode, creating it once per server
// (named after the migrations' content, so a schema change makes a new one).
func template(t testing.TB, mode string) (string, error) {
	v, _ := templates.LoadOrStore(mode, &templateOnce{})
	to := v.(*templateOnce)
	to.once.Do(func() { to.name, to.err = buildTemplate(ServerURL(t), mode) })
	return to.name, to.err
}

func buildTemplate(admin, mode string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	name := "tmpl_" + mode + "_" + migrationsHash()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	// Several test binaries run at once: one builds the template, the others wait for it.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(727272)"); err != nil {
		return "", err
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock(727272)")
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	cfg, err := db.Config(WithDatabase(admin, name), db.ToolProfile())
	if err != nil {
		return "", err
	}
	pool, err := db.Open(ctx, cfg)
	if err != nil {
		return "", err
	}
	_, err = migrate.Run(ctx, pool, mode, slog.New(slog.DiscardHandler))
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("migrating template in %s mode: %w", mode, err)
	}
	// Marked as a template only once complete, so a half-built one is never cloned.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+name+" WITH IS_TEMPLATE true"); err != nil {
		return "", err
	}
	return name, nil
}

func migrationsHash() string {
	h := sha256.New()
	_ = fs.WalkDir(migrations.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(migrations.FS, p)
		h.Write([]byte(p))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// RedisURL returns the URL of a Redis server for tests.
func RedisURL(t testing.TB) string {
	t.Helper()
	redisOnce.Do(func() {
		if u := os.Getenv("TEST_REDIS_URL"); u != "" {
			redisURL = u
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if redisErr = localsvc.EnsureRedisInstalled(ctx); redisErr != nil {
			return
		}
		redisServer, redisErr = localsvc.StartRedis(ctx, 0)
		if redisErr == nil {
			redisURL = redisServer.URL()
		}
	})
	if redisErr != nil {
		t.Fatalf("testenv: no Redis server (set TEST_REDIS_URL or install redis-server): %v", redisErr)
	}
	return redisURL
}

// Redis returns a client on the test Redis server and a key prefix unique to the test, so
// parallel tests sharing the server never see each other's keys.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c, "t" + randomHex(6) + ":"
}

// Discard is a logger that drops everything, for code under test that logs.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
