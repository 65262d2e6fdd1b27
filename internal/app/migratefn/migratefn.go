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

// Migrate applies pending migrations and, when any were applied, backfills the hourly
// aggregates (the deploy-time "rafraîchissement initial").
func Migrate(ctx context.Context, pool *pgxpool.Pool, mode string, now time.Time, logger *slog.Logger) (Result, error) {
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
		if err := (rollup.Refresher{Pool: pool, Mode: res.Mode}).Initial(ctx, now); err != nil {
			return out, fmt.Errorf("initial aggregate refresh: %w", err)
		}
		out.Backfilled = true
	}
	return out, nil
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
