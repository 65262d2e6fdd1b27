package migrate_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv"
	"github.com/optralis/optralis/migrations"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestMigrateFromEmptyThenNoOp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.Pool(t, testenv.EmptyDatabase(t), db.ToolProfile())

	first, err := migrate.Run(ctx, pool, migrate.ModeAuto, testenv.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if first.Mode != migrate.ModePostgres {
		t.Fatalf("auto mode on plain PostgreSQL chose %q", first.Mode)
	}
	if len(first.Applied) == 0 || first.Version < 3 {
		t.Fatalf("nothing applied: %+v", first)
	}
	for _, f := range first.Applied {
		if f == "00003_timeseries_timescale.sql" {
			t.Fatal("timescale migration applied in postgres mode")
		}
	}
	snapshot := schemaSnapshot(t, pool)

	second, err := migrate.Run(ctx, pool, migrate.ModeAuto, testenv.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Applied) != 0 || second.Version != first.Version || second.Mode != first.Mode {
		t.Fatalf("second run was not a no-op: %+v", second)
	}
	if after := schemaSnapshot(t, pool); after != snapshot {
		t.Fatal("second run changed the schema")
	}
	pending, err := migrate.Pending(ctx, pool)
	if err != nil || pending {
		t.Fatalf("Pending = %v, %v after migrating", pending, err)
	}
}

func TestConcurrentMigrators(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u := testenv.EmptyDatabase(t)
	const runners = 4
	results := make([]migrate.Result, runners)
	errs := make([]error, runners)
	var wg sync.WaitGroup
	for i := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate pools: separate sessions, as separate deploy-time invocations would be.
			pool := testenv.Pool(t, u, db.ToolProfile())
			results[i], errs[i] = migrate.Run(ctx, pool, migrate.ModePostgres, testenv.Discard())
		}()
	}
	wg.Wait()
	applied := 0
	for i := range runners {
		if errs[i] != nil {
			t.Fatalf("runner %d: %v", i, errs[i])
		}
		if len(results[i].Applied) > 0 {
			applied++
		}
		if results[i].Version != results[0].Version {
			t.Fatalf("runners disagree on the version: %+v", results)
		}
	}
	if applied != 1 {
		t.Fatalf("%d runners applied migrations, want exactly 1", applied)
	}
	pool := testenv.Pool(t, u, db.ToolProfile())
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	// Every migration file of the postgres mode (00003 exists in both families).
	all, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, name := range all {
		if !strings.HasSuffix(name, "_timescale.sql") {
			want++
		}
	}
	if want < 5 || n != want {
		t.Fatalf("goose recorded %d applied versions, want %d (each migration once)", n, want)
	}
	var builds int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM windows_builds`).Scan(&builds); err != nil || builds != 16 {
		t.Fatalf("seed rows applied %d times? windows_builds=%d err=%v", applied, builds, err)
	}
}

func TestModeIsRecordedAndEnforced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewDB(t, migrate.ModePostgres)

	mode, err := migrate.RecordedMode(ctx, pool)
	if err != nil || mode != migrate.ModePostgres {
		t.Fatalf("recorded mode = %q, %v", mode, err)
	}
	if _, err := migrate.Run(ctx, pool, migrate.ModeTimescale, testenv.Discard()); !errors.Is(err, migrate.ErrModeConflict) {
		t.Fatalf("asking a postgres-mode database for timescale: err = %v, want ErrModeConflict", err)
	}
	if _, err := migrate.Run(ctx, pool, "influx", testenv.Discard()); err == nil {
		t.Fatal("unknown mode accepted")
	}
}

func TestTimescaleRequestedWithoutExtension(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.Pool(t, testenv.EmptyDatabase(t), db.ToolProfile())
	ok, err := migrate.TimescaleAvailable(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		t.Skip("this PostgreSQL server has timescaledb; the refusal cannot be shown here")
	}
	if _, err := migrate.Run(ctx, pool, migrate.ModeTimescale, testenv.Discard()); err == nil {
		t.Fatal("timescale mode accepted on a server without the extension")
	}
	if mode, _ := migrate.RecordedMode(ctx, pool); mode != "" {
		t.Fatalf("a refused run recorded mode %q", mode)
	}
}

// schemaSnapshot renders every column, index and recorded migration of the database.
func schemaSnapshot(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	err := pool.QueryRow(context.Background(), `
		SELECT (SELECT string_agg(table_name || '.' || column_name || ':' || data_type, ',' ORDER BY table_name, column_name)
		          FROM information_schema.columns WHERE table_schema = 'public')
		    || '|' || (SELECT string_agg(indexdef, ',' ORDER BY indexdef) FROM pg_indexes WHERE schemaname = 'public')
		    || '|' || (SELECT string_agg(version_id::text, ',' ORDER BY id) FROM goose_db_version)`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
