// Package retention deletes what the retention rules no longer allow (spec "Système de
// Cleanup"): each client's series by its licence (CleanupOldData) and the history tables
// with fixed retentions (CleanupSecondaryTables), in short statements under a time budget.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/series"
)

// Defaults of a Cleaner's zero fields.
const (
	// DefaultSlice is the largest span of one client's rows one DELETE removes: a day, the
	// chunk of a hypertable, so a backlog is deleted a chunk at a time.
	DefaultSlice = 24 * time.Hour
	// refreshStep is the window of one refresh of the continuous aggregates: a refresh
	// costs what was invalidated in it, so the step only sets how often the budget is
	// checked.
	refreshStep = 30 * 24 * time.Hour
	// DefaultBatch is the number of rows one DELETE of a history table removes.
	DefaultBatch = 5000
	// Margin is kept free before a context's deadline: a statement may run up to the
	// statement timeout, and the job must return before the Lambda is stopped.
	Margin = db.StatementTimeout + 15*time.Second
	// DefaultBudget bounds a run whose context has no deadline (the local stack, the CLI).
	DefaultBudget = 4 * time.Minute
)

// ErrOutOfTime is returned when a run stopped at its budget, between two statements; the
// next run resumes where it stopped (it starts again from the oldest rows left).
var ErrOutOfTime = errors.New("retention: stopped at the time budget, the rest waits for the next run")

// Cleaner deletes expired rows in one database.
type Cleaner struct {
	Pool   *pgxpool.Pool
	Mode   string // migrate.ModeTimescale or migrate.ModePostgres
	Logger *slog.Logger
	// Refresh re-materialises the hourly continuous aggregates over [from, to) (timescale
	// mode; rollup.Refresher.Refresh, which retries a refresh refused by a running policy
	// with 55P03). Nil: not done.
	Refresh func(ctx context.Context, from, to time.Time) error
	Slice   time.Duration // 0: DefaultSlice
	Batch   int           // 0: DefaultBatch
	// StopAt is when the run stops starting statements (see StopAt); zero: no limit.
	StopAt time.Time
}

// StopAt is the instant a run started at start stops starting statements: Margin before
// ctx's deadline, or start + DefaultBudget when ctx has none.
func StopAt(ctx context.Context, start time.Time) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d.Add(-Margin)
	}
	return start.Add(DefaultBudget)
}

func (c Cleaner) outOfTime() bool { return !c.StopAt.IsZero() && !time.Now().Before(c.StopAt) }

// clientRetention is one client and its licence's retention in days.
type clientRetention struct {
	ID                  string
	MetricsDays, Events int
}

// CleanupOldData deletes, for every client, its rows older than its licence's retention
// (spec "Rétention par Licence"): metrics, disk_info, smart_data, metric_aggregates and the
// hourly rollups by the metrics figure, event_logs by the events figure. Each DELETE ...
// USING machines removes at most one slice (a day) of one client's oldest rows of one
// table, so no statement holds its locks for long; the budget is checked between
// statements. It logs "[Cleanup] Deleted N rows from <table> for client <id>" per client
// and table that lost rows, and returns the rows deleted per table.
//
// Timescale mode: the hourly aggregates are continuous aggregates, which cannot be deleted
// from. The raw deletes invalidate their buckets; once the clients are done, the cleaner
// re-materialises the deleted ranges (Refresh), which drops the buckets left without rows,
// also those older than the refresh policy's 31-day window that the policy never revisits.
// A run stopped by its budget before that refresh leaves those buckets until the 365-day
// safety net: the read side clips every query to the licence's retention, so they are
// never served.
func (c Cleaner) CleanupOldData(ctx context.Context, now time.Time) (series.Deleted, error) {
	rows, err := c.Pool.Query(ctx, `SELECT c.id, r.metrics_retention_days, r.events_retention_days
		FROM clients c JOIN license_retention r ON r.license_tier = c.license_tier ORDER BY c.id`)
	if err != nil {
		return nil, db.Error(err, "cleanup: clients")
	}
	clients, err := pgx.CollectRows(rows, pgx.RowToStructByPos[clientRetention])
	if err != nil {
		return nil, db.Error(err, "cleanup: clients")
	}
	total := series.Deleted{}
	var pending ranges // deleted ranges of the continuous aggregates' sources
	var runErr error
clients:
	for _, cl := range clients {
		for _, t := range series.ClientTables(c.Mode) {
			days := cl.MetricsDays
			if t.Events {
				days = cl.Events
			}
			cutoff := now.Add(-time.Duration(days) * 24 * time.Hour)
			n, oldest, err := c.deleteClient(ctx, t, cl.ID, cutoff)
			if n > 0 {
				total[t.Table] += n
				c.Logger.InfoContext(ctx, fmt.Sprintf("[Cleanup] Deleted %d rows from %s for client %s", n, t.Table, cl.ID),
					"table", t.Table, "client_id", cl.ID, "rows", n)
				if t.Aggregated {
					pending.add(oldest, cutoff)
				}
			}
			if errors.Is(err, ErrOutOfTime) || ctx.Err() != nil {
				runErr = err
				break clients
			}
			if err != nil {
				// One client's failure does not hold the others back; the run fails.
				c.Logger.ErrorContext(ctx, "cleanup failed for a client", "table", t.Table, "client_id", cl.ID, "error", err.Error())
				if runErr == nil {
					runErr = fmt.Errorf("client %s: %w", cl.ID, err)
				}
				continue clients
			}
		}
	}
	if err := c.refresh(ctx, pending); err != nil && (runErr == nil || errors.Is(runErr, ErrOutOfTime)) {
		runErr = err
	}
	return total, runErr
}

// deleteClient deletes the client's rows of t before cutoff, oldest slice first, and
// returns how many and the oldest deleted row's time.
func (c Cleaner) deleteClient(ctx context.Context, t series.Retained, clientID string, cutoff time.Time) (n int64, first time.Time, err error) {
	slice := c.Slice
	if slice <= 0 {
		slice = DefaultSlice
	}
	for {
		if c.outOfTime() {
			return n, first, ErrOutOfTime
		}
		oldest, ok, err := series.OldestClientRow(ctx, c.Pool, t, clientID, cutoff)
		if err != nil || !ok {
			return n, first, err
		}
		if first.IsZero() {
			first = oldest
		}
		// Up to the end of the oldest row's slice (aligned on UTC days, the chunks), or the
		// cutoff.
		to := oldest.UTC().Truncate(slice).Add(slice)
		if to.After(cutoff) {
			to = cutoff
		}
		k, err := series.DeleteClientBefore(ctx, c.Pool, t, clientID, to)
		n += k
		if db.Code(err) == db.QueryCanceled && ctx.Err() == nil && to.Sub(oldest) > time.Minute {
			// The statement timeout cut a slice too large for this client (the statement
			// was rolled back): halve it and go on.
			slice = max(slice/2, time.Minute)
			c.Logger.WarnContext(ctx, "cleanup slice hit the statement timeout; halving it",
				"table", t.Table, "client_id", clientID, "slice", slice.String())
			continue
		}
		if err != nil {
			return n, first, err
		}
	}
}

// refresh re-materialises the continuous aggregates over the deleted ranges, a step at a
// time (timescale mode).
func (c Cleaner) refresh(ctx context.Context, pending ranges) error {
	if c.Mode != migrate.ModeTimescale || c.Refresh == nil {
		return nil
	}
	for _, r := range pending {
		// The bucket holding the cutoff lost some rows too: refresh up to its end.
		end := r.to.Truncate(time.Hour).Add(time.Hour)
		for from := r.from.Truncate(time.Hour); from.Before(end); from = from.Add(refreshStep) {
			if c.outOfTime() {
				return ErrOutOfTime
			}
			to := from.Add(refreshStep)
			if to.After(end) {
				to = end
			}
			if err := c.Refresh(ctx, from, to); err != nil {
				return err
			}
		}
		c.Logger.InfoContext(ctx, "[Cleanup] Refreshed the hourly aggregates over the deleted range",
			"from", r.from.Truncate(time.Hour), "to", end)
	}
	return nil
}

// ranges is a set of time ranges, merged when they overlap.
type ranges []struct{ from, to time.Time }

func (rs *ranges) add(from, to time.Time) {
	for i := range *rs {
		r := &(*rs)[i]
		if !from.After(r.to) && !to.Before(r.from) {
			if from.Before(r.from) {
				r.from = from
			}
			if to.After(r.to) {
				r.to = to
			}
			return
		}
	}
	*rs = append(*rs, struct{ from, to time.Time }{from, to})
}

// secondary is a history table with a fixed retention: where picks the expired rows, $1
// being the run's instant.
type secondary struct {
	table, where string
}

// secondaryTables are the fixed retentions (spec "Tables avec rétention fixe"). In
// timescale mode activity_logs and service_uptime are hypertables whose native retention
// policies (30 days) drop them; in postgres mode the cleaner deletes them.
func secondaryTables(mode string) []secondary {
	tables := []secondary{
		{"notification_history", `sent_at < $1::timestamptz - INTERVAL '30 days'`},
		// Alert episodes: 90 days after they resolved. Open ones (pending, firing) are never
		// deleted here however old: the evaluation owns them. Rows the evaluation never
		// opened (no started_at, before migration 00012) go by triggered_at as before.
		{"alert_rule_history", `resolved_at < $1::timestamptz - INTERVAL '90 days'
			OR (started_at IS NULL AND resolved_at IS NULL AND triggered_at < $1::timestamptz - INTERVAL '90 days')`},
		// "expires_at ou 90 jours": expired, or created more than 90 days ago.
		{"ai_analysis_results", `expires_at <= $1::timestamptz OR created_at < $1::timestamptz - INTERVAL '90 days'`},
		{"ai_trigger_history", `executed_at < $1::timestamptz - INTERVAL '90 days'`},
		{"ai_routine_history", `executed_at < $1::timestamptz - INTERVAL '90 days'`},
	}
	if mode != migrate.ModeTimescale {
		tables = append(tables,
			secondary{"activity_logs", `created_at < $1::timestamptz - INTERVAL '30 days'`},
			secondary{"service_uptime", `checked_at < $1::timestamptz - INTERVAL '30 days'`})
	}
	return tables
}

// CleanupSecondaryTables deletes the expired rows of the history tables with a fixed
// retention, Batch rows per statement (picked by ctid: these tables are plain), and logs
// "[Cleanup] Deleted N rows from <table> (global)" per table that lost rows.
func (c Cleaner) CleanupSecondaryTables(ctx context.Context, now time.Time) (series.Deleted, error) {
	batch := c.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	total := series.Deleted{}
	for _, t := range secondaryTables(c.Mode) {
		var n int64
		var err error
		for {
			if c.outOfTime() {
				err = ErrOutOfTime
				break
			}
			// Table names and conditions come from secondaryTables, never from input.
			tag, e := c.Pool.Exec(ctx, `DELETE FROM `+t.table+` WHERE ctid = ANY(ARRAY(
				SELECT ctid FROM `+t.table+` WHERE `+t.where+` LIMIT $2))`, now, batch)
			if e != nil {
				err = db.Error(e, "cleanup "+t.table)
				break
			}
			n += tag.RowsAffected()
			if tag.RowsAffected() < int64(batch) {
				break
			}
		}
		if n > 0 {
			total[t.table] = n
			c.Logger.InfoContext(ctx, fmt.Sprintf("[Cleanup] Deleted %d rows from %s (global)", n, t.table),
				"table", t.table, "scope", "global", "rows", n)
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
