// Package cleanupfn assembles the cleanup function: the hourly maintenance (postgres-mode
// rollups, expired auth entries, expired install tokens, deleted machines' data, the
// per-licence retention and the fixed retentions of the history tables).
package cleanupfn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/auth/authclean"
	"github.com/optralis/optralis/internal/enrol"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/retention"
	"github.com/optralis/optralis/internal/rollup"
	"github.com/optralis/optralis/internal/routes"
	"github.com/optralis/optralis/internal/series"
)

// Job runs every part of the hourly maintenance. Each part runs even when an earlier one
// fails; the first error is returned so the run is marked failed. The retention parts stop
// between two statements at the run's budget (retention.StopAt: a margin before the
// Lambda's deadline) and resume on the next run; that is logged, not a failure.
func Job(core app.Core) app.JobFunc {
	parts := []struct {
		name string
		run  func(ctx context.Context, now, stopAt time.Time) error
	}{
		{"rollups", func(ctx context.Context, now, _ time.Time) error { return rollups(ctx, core, now) }},
		{"auth-cleanup", func(ctx context.Context, now, _ time.Time) error {
			return authclean.Run(ctx, core.Pool, core.Logger, now)
		}},
		{"install-token-cleanup", func(ctx context.Context, now, _ time.Time) error { return installTokens(ctx, core, now) }},
		{"deleted-machines", func(ctx context.Context, _, _ time.Time) error { return deletedMachines(ctx, core) }},
		{"licence-retention", func(ctx context.Context, now, stopAt time.Time) error {
			return withCleaner(ctx, core, stopAt, func(c retention.Cleaner) error { _, err := c.CleanupOldData(ctx, now); return err })
		}},
		{"secondary-tables", func(ctx context.Context, now, stopAt time.Time) error {
			return withCleaner(ctx, core, stopAt, func(c retention.Cleaner) error { _, err := c.CleanupSecondaryTables(ctx, now); return err })
		}},
	}
	return func(ctx context.Context, now time.Time) error {
		stopAt := retention.StopAt(ctx, time.Now())
		var first error
		for _, part := range parts {
			err := part.run(ctx, now, stopAt)
			if errors.Is(err, retention.ErrOutOfTime) {
				core.Logger.WarnContext(ctx, "cleanup step stopped at the time budget; the next run resumes it", "step", part.name)
				continue
			}
			if err != nil {
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

// withCleaner runs fn with a retention cleaner for the database's time-series mode.
func withCleaner(ctx context.Context, core app.Core, stopAt time.Time, fn func(retention.Cleaner) error) error {
	mode, err := migrate.RecordedMode(ctx, core.Pool)
	if err != nil {
		return err
	}
	if mode == "" {
		return fmt.Errorf("the database has not been migrated")
	}
	return fn(retention.Cleaner{
		Pool: core.Pool, Mode: mode, Logger: core.Logger, StopAt: stopAt,
		Refresh: rollup.Refresher{Pool: core.Pool, Mode: mode}.Refresh,
	})
}

// Open is the Lambda's cold start.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	return app.OpenJob(ctx, routes.FnCleanup, getenv, stdout, Job)
}
