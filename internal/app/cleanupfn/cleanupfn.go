// Package cleanupfn assembles the cleanup function: the hourly maintenance (postgres-mode
// rollups, expired auth entries, expired install tokens, deleted machines' data).
package cleanupfn

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/auth/authclean"
	"github.com/optralis/optralis/internal/enrol"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/rollup"
	"github.com/optralis/optralis/internal/routes"
	"github.com/optralis/optralis/internal/series"
)

// Job runs every part of the hourly maintenance. Each part runs even when an earlier one
// fails; the first error is returned so the run is marked failed.
func Job(core app.Core) app.JobFunc {
	parts := []struct {
		name string
		run  app.JobFunc
	}{
		{"rollups", func(ctx context.Context, now time.Time) error { return rollups(ctx, core, now) }},
		{"auth-cleanup", func(ctx context.Context, now time.Time) error { return authclean.Run(ctx, core.Pool, core.Logger, now) }},
		{"install-token-cleanup", func(ctx context.Context, now time.Time) error { return installTokens(ctx, core, now) }},
		{"deleted-machines", func(ctx context.Context, _ time.Time) error { return deletedMachines(ctx, core) }},
	}
	return func(ctx context.Context, now time.Time) error {
		var first error
		for _, part := range parts {
			if err := part.run(ctx, now); err != nil {
				core.Logger.ErrorContext(ctx, "cleanup step failed", "step", part.name, "error", err.Error())
				if first == nil {
					first = fmt.Errorf("%s: %w", part.name, err)
				}
			}
		}
		return first
	}
}

// rollups refreshes the hourly rollup tables in postgres mode (TimescaleDB refreshes its
// continuous aggregates itself).
func rollups(ctx context.Context, core app.Core, now time.Time) error {
	mode, err := migrate.RecordedMode(ctx, core.Pool)
	if err != nil {
		return err
	}
	if mode == "" {
		return fmt.Errorf("the database has not been migrated")
	}
	return rollup.Refresher{Pool: core.Pool, Mode: mode}.Job(ctx, now)
}

// installTokens deletes install tokens expired for more than 24 hours.
func installTokens(ctx context.Context, core app.Core, now time.Time) error {
	n, err := enrol.CleanupExpiredTokens(ctx, core.Pool, now)
	if err == nil && n > 0 {
		core.Logger.InfoContext(ctx, "expired install tokens deleted", "count", n)
	}
	return err
}

// PurgeBatch bounds the deleted machines purged per run, so one run stays short; the rest
// wait for the next hour.
const PurgeBatch = 200

// deletedMachines purges the series and rows of machines deleted from the dashboard.
func deletedMachines(ctx context.Context, core app.Core) error {
	mode, err := migrate.RecordedMode(ctx, core.Pool)
	if err != nil {
		return err
	}
	n, del, err := series.PurgeDeletedMachines(ctx, core.Pool, mode, PurgeBatch)
	if n > 0 {
		core.Logger.InfoContext(ctx, "deleted machines purged", "machines", n, "rows", del)
	}
	return err
}

// Open is the Lambda's cold start.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	return app.OpenJob(ctx, routes.FnCleanup, getenv, stdout, Job)
}
