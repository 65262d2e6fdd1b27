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
	ModeAuto      = "auto"      // timescale when the extension is available, else postgres
	ModeTimescale = "timescale" // hypertables, compression, continuous aggregates
	ModePostgres  = "postgres"  // plain tables and rollup tables (Aurora, RDS)
)

// Result is what a run did.
type Result struct {
	Mode    string // the database's time-series mode after the run
	Applied []string
	Version int64
}

// ErrModeConflict is returned when a database already migrated in one mode is asked for another.
var ErrModeConflict = errors.New("time-series mode conflict")

// Run applies every pending migration. It is safe to run concurrently from several
// processes (a PostgreSQL session advisory lock serialises them) and a no-op when the
// database is up to date.
func Run(ctx context.Context, pool *pgxpool.Pool, requested string, logger *slog.Logger) (Result, error) {
	mode, err := resolveMode(ctx, pool, requested)
	if err != nil {
		return Result{}, err
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
	res := Result{Mode: mode}
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

// resolveMode decides the mode: the recorded one wins; a conflicting explicit request fails.
func resolveMode(ctx context.Context, pool *pgxpool.Pool, requested string) (string, error) {
	switch requested {
	case "", ModeAuto, ModeTimescale, ModePostgres:
	default:
		return "", fmt.Errorf("unknown time-series mode %q (want auto, timescale or postgres)", requested)
	}
	recorded, err := RecordedMode(ctx, pool)
	if err != nil {
		return "", fmt.Errorf("migrate: reading recorded mode: %w", err)
	}
	if recorded != "" {
		if requested == ModeTimescale || requested == ModePostgres {
			if requested != recorded {
				return "", fmt.Errorf("%w: the database is in %s mode, %s was requested", ErrModeConflict, recorded, requested)
			}
		}
		return recorded, nil
	}
	available, err := TimescaleAvailable(ctx, pool)
	if err != nil {
		return "", err
	}
	switch requested {
	case ModeTimescale:
		if !available {
			return "", errors.New("timescale mode requested but the timescaledb extension is not available on this server")
		}
		return ModeTimescale, nil
	case ModePostgres:
		return ModePostgres, nil
	}
	if available {
		return ModeTimescale, nil
	}
	return ModePostgres, nil
}

// TimescaleAvailable reports whether the server can load the timescaledb extension.
func TimescaleAvailable(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var ok bool
	err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')`).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("migrate: checking for timescaledb: %w", err)
	}
	return ok, nil
}
