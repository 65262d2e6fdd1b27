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
	if err := unschedulePolicies(ctx, pool); err != nil {
		t.Fatalf("testenv: unscheduling the policies on %s: %v", TimescaleServer(), err)
	}
	return pool
}

// unschedulePolicies stops the scheduler from running the test database's policies
// (compression, retention, aggregate refresh), then waits for any run already started to
// end. On a server with background workers the policies start as soon as the migration
// adds them: a retention run would delete a test's old rows before the test counts them,
// and a policy refresh makes the test's own refresh fail with 55P03. Tests drive the
// jobs themselves with CALL run_job, which runs an unscheduled job too. On the sidecar
// (no workers) this changes nothing. Jobs below 1000 are TimescaleDB's own (telemetry,
// job history retention).
func unschedulePolicies(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `SELECT alter_job(job_id, scheduled => false)
		FROM timescaledb_information.jobs WHERE job_id >= 1000 AND scheduled`); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var running int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM timescaledb_information.job_stats
			WHERE job_id >= 1000 AND job_status = 'Running'`).Scan(&running); err != nil {
			return err
		}
		if running == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d policy job(s) still running after 2 minutes", running)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
