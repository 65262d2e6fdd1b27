// Package migratefn assembles the migrate function: migrations and the first backfill of
// the hourly aggregates, at deploy time (never on a cold start of the serving functions).
package migratefn

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/logging"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/rollup"
	"github.com/optralis/optralis/internal/routes"
)

// Result is what a deploy-time migration reports.
type Result struct {
	Mode       string   `json:"mode"`
	ModeReason string   `json:"mode_reason"`
	Version    int64    `json:"version"`
	Applied    []string `json:"applied"`
	Backfilled bool     `json:"aggregates_backfilled"`
}

// Migrate applies pending migrations and backfills the hourly aggregates (the deploy-time
// "rafraîchissement initial") whenever that backfill is pending: a run that applies
// migrations records it as pending (schema_settings 'initial_refresh'), and only a
// successful refresh records it done, so a refresh that failed (e.g. SQLSTATE 55P03 past
// its retries) is completed by the next `optralis migrate` or migrate function, even
// though that run applies nothing.
func Migrate(ctx context.Context, pool *pgxpool.Pool, mode string, now time.Time, logger *slog.Logger) (Result, error) {
	return migrateWith(ctx, pool, mode, now, logger, func(ctx context.Context, mode string) error {
		return rollup.Refresher{Pool: pool, Mode: mode}.Initial(ctx, now)
	})
}

// Values of schema_settings 'initial_refresh'. A database migrated before the key
// existed has none: nothing is pending there (migration 00010 sets it when applied).
const (
	initialRefreshKey = "initial_refresh"
	refreshPending    = "pending"
	refreshDone       = "done"
)

// migrateWith is Migrate with the refresh given (tests make it fail).
func migrateWith(ctx context.Context, pool *pgxpool.Pool, mode string, now time.Time, logger *slog.Logger,
	refresh func(ctx context.Context, mode string) error) (Result, error) {
	res, err := migrate.Run(ctx, pool, mode, logger)
	if err != nil {
		return Result{}, err
	}
	out := Result{Mode: res.Mode, ModeReason: res.Reason, Version: res.Version, Applied: res.Applied}
	if out.Applied == nil {
		out.Applied = []string{}
	}
	logger.InfoContext(ctx, "migrations done", "mode", res.Mode, "version", res.Version, "applied", len(res.Applied))
	if len(res.Applied) > 0 {
		if err := setInitialRefresh(ctx, pool, refreshPending, now); err != nil {
			return out, err
		}
	}
	var state string
	err = pool.QueryRow(ctx, `SELECT value FROM schema_settings WHERE key = $1`, initialRefreshKey).Scan(&state)
	if err != nil && !db.IsNoRows(err) {
		return out, fmt.Errorf("reading the initial refresh state: %w", err)
	}
	if state != refreshPending {
		return out, nil
	}
	if len(res.Applied) == 0 {
		logger.InfoContext(ctx, "initial aggregate refresh pending from an earlier run: doing it now")
	}
	if err := refresh(ctx, res.Mode); err != nil {
		logger.ErrorContext(ctx, "initial aggregate refresh failed; it stays pending for the next migrate run", "error", err)
		return out, fmt.Errorf("initial aggregate refresh (still pending, run migrate again): %w", err)
	}
	if err := setInitialRefresh(ctx, pool, refreshDone, now); err != nil {
		return out, err
	}
	out.Backfilled = true
	logger.InfoContext(ctx, "initial aggregate refresh done")
	return out, nil
}

func setInitialRefresh(ctx context.Context, pool *pgxpool.Pool, state string, now time.Time) error {
	_, err := pool.Exec(ctx, `INSERT INTO schema_settings (key, value, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
		initialRefreshKey, state, now)
	if err != nil {
		return fmt.Errorf("recording the initial refresh as %s: %w", state, err)
	}
	return nil
}

// Handler is the Lambda's invocation: connect, migrate, disconnect (the function runs
// once per deployment, so it keeps no pool between invocations).
type Handler func(ctx context.Context, _ json.RawMessage) (Result, error)

// Open is the Lambda's cold start: DATABASE_URL (from its Secrets Manager reference) and
// TIMESERIES_MODE only; the function needs none of the API's secrets.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer, clk clock.Clock) (Handler, error) {
	logger := logging.New(stdout, slog.LevelInfo).With("function", routes.FnMigrate)
	env := app.LambdaEnv(ctx, getenv)
	url, mode, err := config.Database(env.Getenv)
	if serr := env.Err(); serr != nil {
		err = serr
	}
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, _ json.RawMessage) (Result, error) {
		pcfg, err := db.Config(url, db.ToolProfile())
		if err != nil {
			return Result{}, err
		}
		pool, err := db.Open(ctx, pcfg)
		if err != nil {
			return Result{}, err
		}
		defer pool.Close()
		return Migrate(ctx, pool, mode, clk.Now(), logger)
	}, nil
}
