// Package migrate applies the embedded schema with goose, choosing the time-series mode.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/migrations"
)

// Time-series modes (GUIDE §4).
const (
	ModeAuto      = "auto"      // timescale when the extension is usable (installed or preloaded), else postgres
	ModeTimescale = "timescale" // hypertables, compression, continuous aggregates
	ModePostgres  = "postgres"  // plain tables and rollup tables (Aurora, RDS)
)

// Result is what a run did.
type Result struct {
	Mode    string // the database's time-series mode after the run
	Reason  string // why that mode was chosen, for people
	Applied []string
	Version int64
}

// ErrModeConflict is returned when a database already migrated in one mode is asked for another.
var ErrModeConflict = errors.New("time-series mode conflict")

// Run applies every pending migration. It is safe to run concurrently from several
// processes (a PostgreSQL session advisory lock serialises them) and a no-op when the
// database is up to date.
func Run(ctx context.Context, pool *pgxpool.Pool, requested string, logger *slog.Logger) (Result, error) {
	mode, reason, err := resolveMode(ctx, pool, requested)
	if err != nil {
		return Result{}, err
	}
	if logger != nil {
		logger.InfoContext(ctx, "time-series mode "+mode+": "+reason, "mode", mode, "reason", reason)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := newProvider(db, mode, logger)
	if err != nil {
		return Result{}, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("migrate: %w", err)
	}
	res := Result{Mode: mode, Reason: reason}
	for _, r := range results {
		res.Applied = append(res.Applied, r.Source.Path)
	}
	if res.Version, err = p.GetDBVersion(ctx); err != nil {
		return Result{}, fmt.Errorf("migrate: reading version: %w", err)
	}
	// Another runner may have chosen the mode first; report what the database holds.
	if recorded, err := RecordedMode(ctx, pool); err == nil && recorded != "" {
		res.Mode = recorded
	}
	return res, nil
}

// Pending reports whether migrations remain to be applied (used to refuse serving an old schema).
func Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	mode, err := RecordedMode(ctx, pool)
	if err != nil {
		return false, err
	}
	if mode == "" {
		return true, nil
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := newProvider(db, mode, nil)
	if err != nil {
		return false, err
	}
	return p.HasPending(ctx)
}

func newProvider(db *sql.DB, mode string, logger *slog.Logger) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker(
		// Retry every second for up to 10 minutes: a deploy may race a slow migration.
		lock.WithLockTimeout(1, 600),
	)
	if err != nil {
		return nil, err
	}
	exclude, err := otherModeFiles(migrations.FS, mode)
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{
		goose.WithSessionLocker(locker),
		goose.WithExcludeNames(exclude),
		goose.WithDisableGlobalRegistry(true),
	}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	return goose.NewProvider(goose.DialectPostgres, db, migrations.FS, opts...)
}

// otherModeFiles lists the migrations of the mode not chosen, which goose must not see.
func otherModeFiles(fsys fs.FS, mode string) ([]string, error) {
	other := "_" + ModeTimescale + ".sql"
	if mode == ModeTimescale {
		other = "_" + ModePostgres + ".sql"
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, other) {
			out = append(out, n)
		}
	}
	return out, nil
}

// RecordedMode returns the mode stored in the database, or "" before the first migration.
func RecordedMode(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_settings') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return "", err
	}
	var mode string
	err := pool.QueryRow(ctx, `SELECT value FROM schema_settings WHERE key = 'timeseries_mode'`).Scan(&mode)
	if db.IsNoRows(err) {
		return "", nil
	}
	return mode, err
}

// resolveMode decides the mode and says why: the recorded one wins; a conflicting explicit
// request fails; auto picks timescale only when the extension is usable, not merely listed.
func resolveMode(ctx context.Context, pool *pgxpool.Pool, requested string) (string, string, error) {
	switch requested {
	case "", ModeAuto, ModeTimescale, ModePostgres:
	default:
		return "", "", fmt.Errorf("unknown time-series mode %q (want auto, timescale or postgres)", requested)
	}
	recorded, err := RecordedMode(ctx, pool)
	if err != nil {
		return "", "", fmt.Errorf("migrate: reading recorded mode: %w", err)
	}
	if recorded != "" {
		if requested == ModeTimescale || requested == ModePostgres {
			if requested != recorded {
				return "", "", fmt.Errorf("%w: the database is in %s mode, %s was requested", ErrModeConflict, recorded, requested)
			}
		}
		return recorded, "the database was migrated in " + recorded + " mode before (the recorded mode wins)", nil
	}
	if requested == ModePostgres {
		return ModePostgres, "postgres mode requested", nil
	}
	ts, err := DetectTimescale(ctx, pool)
	if err != nil {
		return "", "", err
	}
	return chooseMode(requested, ts)
}

// chooseMode is the decision for a database without a recorded mode.
func chooseMode(requested string, ts Timescale) (string, string, error) {
	if requested == ModeTimescale {
		if !ts.Listed {
			return "", "", errors.New("timescale mode requested but the timescaledb extension is not available on this server")
		}
		if !ts.Usable() {
			return "", "", errors.New("timescale mode requested but " + ts.why())
		}
		return ModeTimescale, "timescale mode requested; " + ts.why(), nil
	}
	if ts.Usable() {
		return ModeTimescale, "TIMESERIES_MODE=auto: " + ts.why(), nil
	}
	return ModePostgres, "TIMESERIES_MODE=auto: " + ts.why() + " (set TIMESERIES_MODE=timescale to insist)", nil
}

// Timescale is what a server offers of the timescaledb extension.
type Timescale struct {
	Listed    bool // its files are installed (pg_available_extensions)
	Installed bool // already created in this database (pg_extension)
	// Preloaded: shared_preload_libraries holds timescaledb, which CREATE EXTENSION needs
	// ("FATAL: extension "timescaledb" must be preloaded" otherwise).
	Preloaded bool
	// Probed: shared_preload_libraries was not readable (not a superuser), so a
	// CREATE EXTENSION was tried in a transaction and rolled back; Preloaded is its outcome.
	Probed bool
}

// Usable reports whether timescale mode can be migrated on this database.
func (t Timescale) Usable() bool { return t.Installed || (t.Listed && t.Preloaded) }

func (t Timescale) why() string {
	switch {
	case t.Installed:
		return "the timescaledb extension is installed in this database"
	case !t.Listed:
		return "the timescaledb extension is not available on this server"
	case t.Preloaded && t.Probed:
		return "the timescaledb extension is available and CREATE EXTENSION works (tried and rolled back)"
	case t.Preloaded:
		return "the timescaledb extension is available and preloaded (shared_preload_libraries)"
	case t.Probed:
		return "the timescaledb extension is listed but CREATE EXTENSION fails (not preloaded?)"
	}
	return "the timescaledb extension is listed but not preloaded: add timescaledb to shared_preload_libraries and restart PostgreSQL to use it"
}

// DetectTimescale finds out whether the timescaledb extension is usable, not merely listed.
func DetectTimescale(ctx context.Context, pool *pgxpool.Pool) (Timescale, error) {
	var t Timescale
	var preload *string
	err := pool.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),
		EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'),
		(SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries')`).Scan(&t.Listed, &t.Installed, &preload)
	if err != nil {
		return Timescale{}, fmt.Errorf("migrate: checking for timescaledb: %w", err)
	}
	if preload != nil {
		t.Preloaded = preloads(*preload)
		return t, nil
	}
	if t.Listed && !t.Installed {
		// Not readable by this role: try it. Without the preload the server ends the
		// session (FATAL), which only costs the pool that connection.
		t.Probed = true
		t.Preloaded = probeCreateExtension(ctx, pool) == nil
	}
	return t, nil
}

// preloads reports whether a shared_preload_libraries value loads timescaledb.
func preloads(setting string) bool {
	for _, lib := range strings.Split(setting, ",") {
		lib = strings.Trim(strings.TrimSpace(lib), `"`)
		if lib == "timescaledb" || strings.HasSuffix(lib, "/timescaledb") {
			return true
		}
	}
	return false
}

func probeCreateExtension(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS timescaledb")
	return err
}

// TimescaleAvailable reports whether timescale mode can be used on this database: the
// extension is installed here, or listed and preloaded.
func TimescaleAvailable(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	t, err := DetectTimescale(ctx, pool)
	return t.Usable(), err
}
