package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv/tsdbsidecar"
)

// TimescaleServer names the TimescaleDB the timescale-mode tests run against.
func TimescaleServer() string {
	if u := os.Getenv("TIMESCALE_TEST_URL"); u != "" {
		return "the TimescaleDB server of TIMESCALE_TEST_URL"
	}
	return "the PGlite TimescaleDB sidecar (tools/tsdb-sidecar)"
}

// Timescale returns a pool on a fresh database migrated in timescale mode, closed when
// the test ends. With TIMESCALE_TEST_URL set it creates a database on that real server;
// otherwise it starts a PGlite TimescaleDB sidecar for the test (one backend session: the
// pool has a single connection, and the test owns the whole server).
func Timescale(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var cfg *pgxpool.Config
	if u := os.Getenv("TIMESCALE_TEST_URL"); u != "" {
		name := "ts_" + randomHex(8)
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatalf("testenv: TIMESCALE_TEST_URL: %v", err)
		}
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			conn.Close(ctx)
			t.Fatalf("testenv: %v", err)
		}
		conn.Close(ctx)
		t.Cleanup(func() {
			c, err := pgx.Connect(context.Background(), u)
			if err == nil {
				_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
				c.Close(context.Background())
			}
		})
		if cfg, err = db.Config(WithDatabase(u, name), db.ToolProfile()); err != nil {
			t.Fatal(err)
		}
	} else {
		srv, err := tsdbsidecar.Start(ctx, t.Logf)
		if err != nil {
			if tsdbsidecar.SkipMissing(err) {
				t.Skipf("no TimescaleDB to test against (%s is set): %v", tsdbsidecar.SkipEnv, err)
			}
			t.Fatalf("testenv: TimescaleDB sidecar: %v", err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		if cfg, err = tsdbsidecar.PoolConfig(srv.URL()); err != nil {
			t.Fatal(err)
		}
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(db.StatementTimeout.Milliseconds())
	}
	pool, err := db.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(pool.Close)
	res, err := migrate.Run(ctx, pool, migrate.ModeTimescale, Discard())
	if err != nil {
		t.Fatalf("testenv: migrating %s in timescale mode: %v", TimescaleServer(), err)
	}
	if res.Mode != migrate.ModeTimescale {
		t.Fatalf("testenv: database recorded mode %q", res.Mode)
	}
	return pool
}
