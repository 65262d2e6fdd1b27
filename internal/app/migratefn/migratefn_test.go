package migratefn

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A first migration whose initial refresh fails (55P03, as when a refresh policy holds the
// aggregate past the retries) leaves it pending; the next run, which applies nothing,
// completes it; the run after that has nothing to do.
func TestInitialRefreshPendingUntilDone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.Pool(t, testenv.EmptyDatabase(t), db.ToolProfile())
	now := time.Date(2026, 3, 10, 12, 30, 0, 0, time.UTC)

	busy := &pgconn.PgError{Code: db.LockNotAvailable, Message: "concurrent refresh"}
	first, err := migrateWith(ctx, pool, migrate.ModePostgres, now, testenv.Discard(),
		func(context.Context, string) error { return busy })
	if db.Code(err) != db.LockNotAvailable || len(first.Applied) == 0 || first.Backfilled {
		t.Fatalf("first run: %+v %v, want migrations applied and the refresh's 55P03", first, err)
	}
	if s := refreshState(t, pool); s != refreshPending {
		t.Fatalf("after a failed refresh the state is %q, want pending", s)
	}

	// Data that only the initial refresh can bring into metrics_hourly.
	machine := testenv.Machine(t, pool, testenv.Client(t, pool, "Pro"), "host-pending")
	if _, err := pool.Exec(ctx, `INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent)
		VALUES ($1, $2, 40, 50), ($1, $3, 60, 70)`, machine, now.Add(-3*time.Hour), now.Add(-3*time.Hour+time.Minute)); err != nil {
		t.Fatal(err)
	}

	second, err := Migrate(ctx, pool, migrate.ModeAuto, now, testenv.Discard())
	if err != nil || len(second.Applied) != 0 || !second.Backfilled {
		t.Fatalf("second run: %+v %v, want nothing applied and the pending refresh done", second, err)
	}
	if s := refreshState(t, pool); s != refreshDone {
		t.Fatalf("after the refresh the state is %q, want done", s)
	}
	var avg float64
	if err := pool.QueryRow(ctx, `SELECT cpu_avg FROM metrics_hourly WHERE machine_id = $1`, machine).Scan(&avg); err != nil || avg != 50 {
		t.Fatalf("metrics_hourly cpu_avg = %v, %v; want 50 from the completed refresh", avg, err)
	}

	third, err := migrateWith(ctx, pool, migrate.ModeAuto, now, testenv.Discard(),
		func(context.Context, string) error { t.Error("refresh called with nothing pending"); return nil })
	if err != nil || len(third.Applied) != 0 || third.Backfilled {
		t.Fatalf("third run: %+v %v, want a no-op", third, err)
	}
}

func refreshState(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	if err := pool.QueryRow(context.Background(), `SELECT value FROM schema_settings WHERE key = $1`, initialRefreshKey).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
