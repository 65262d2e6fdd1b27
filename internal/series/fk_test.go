package series_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/series"
	"github.com/optralis/optralis/internal/testenv"
)

// hotReferences lists the foreign keys from the time-series tables to machines, clients or
// users. Migration 00010 dropped them in both modes (issue 15 §1): on TimescaleDB,
// drop_chunks locks every table a hypertable references.
func hotReferences(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT c.conname || ' on ' || c.conrelid::regclass::text || ' -> ' || c.confrelid::regclass::text
		FROM pg_constraint c
		WHERE c.contype = 'f'
		  AND c.conrelid::regclass::text IN ('metrics', 'disk_info', 'event_logs', 'smart_data', 'activity_logs', 'service_uptime')
		  AND c.confrelid::regclass::text IN ('machines', 'clients', 'users')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// In postgres mode a long transaction deleting a client's old series, as retention does,
// does not block inserting or updating machines (two real sessions, a lock timeout).
func TestRetentionDoesNotBlockMachines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewDB(t, "postgres")
	if fks := hotReferences(t, pool); len(fks) > 0 {
		t.Errorf("foreign keys from the series to hot tables: %v", fks)
	}
	client := testenv.Client(t, pool, "Trial")
	machine := testenv.Machine(t, pool, client, "retained")
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	old := now.AddDate(0, 0, -30)
	if _, err := pool.Exec(ctx, `INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent) VALUES ($1, $2, 1, 1)`, machine, old); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO disk_info (machine_id, recorded_at, mount_point, total_gb, used_gb, used_percent) VALUES ($1, $2, '/', 10, 5, 50)`, machine, old); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO activity_logs (client_id, machine_id, action, created_at) VALUES ($1, $2, 'test', $3)`, client, machine, old); err != nil {
		t.Fatal(err)
	}

	// Session 1: retention's deletes, transaction left open.
	retention, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = retention.Rollback(ctx) }()
	for _, tbl := range series.ClientTables("postgres") {
		if _, err := series.DeleteClientBefore(ctx, retention, tbl, client, now.AddDate(0, 0, -7)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := retention.Exec(ctx, `DELETE FROM activity_logs WHERE created_at < $1`, now.AddDate(0, 0, -7)); err != nil {
		t.Fatal(err)
	}

	// Session 2: what enrolment and heartbeats do to machines, under a lock timeout.
	other, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := other.Exec(cctx, `SET lock_timeout = '2s'`); err != nil {
		t.Fatal(err)
	}
	steps := []struct{ name, sql string }{
		{"insert a machine", `INSERT INTO machines (client_id, hostname, os, arch) VALUES ($1, 'enrolled', 'linux', 'amd64')`},
		{"update the retained machine", `UPDATE machines SET last_seen = $2, updated_at = $2 WHERE client_id = $1 AND hostname = 'retained'`},
		{"update every machine of the client", `UPDATE machines SET notes = 'x', updated_at = $2 WHERE client_id = $1`},
	}
	for _, s := range steps {
		args := []any{client}
		if s.name != "insert a machine" {
			args = append(args, now)
		}
		start := time.Now()
		if _, err := other.Exec(cctx, s.sql, args...); err != nil {
			t.Fatalf("%s while retention's transaction is open: %v (after %s)", s.name, err, time.Since(start))
		}
	}
	if err := retention.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}
