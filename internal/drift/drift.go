// Package drift is the hourly drift detection (spec "Table metric_baselines"): per live
// machine and metric, a 7-day baseline (mean, standard deviation, p95 of the hourly
// averages) against the last hour's average, a z-score, a verdict from the row's own
// thresholds, and an explanation of each new or worsened drift, from an AI provider when
// one is configured, from a template otherwise.
package drift

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Window is the baseline: the hourly averages of the 7 days before the last hour.
const Window = 7 * 24 * time.Hour

// MinPoints is the history a verdict needs: 48 hourly averages (two days) in the window.
// Below it, or without a last-hour average, the row holds the figures known so far with
// no z-score, no drift and no explanation.
const MinPoints = 48

// Defaults of Deps.
const (
	DefaultBatchSize = 200
	DefaultBudget    = 3 * time.Minute
	// ExplanationTTL is how long an AI analysis is kept (ai_analysis_results.expires_at):
	// the length of the baseline it was made against.
	ExplanationTTL = Window
)

// Metric is one metric_type of metric_baselines.
type Metric struct {
	Type  string // metric_type
	Label string // in explanations: "CPU"
	Unit  string // " %", " ms"
	// StddevFloor is the smallest standard deviation a z-score is computed with, so a
	// perfectly flat history followed by a jump is a drift (not a division by zero) and
	// jitter under the floor is not.
	StddevFloor float64
	// hourly selects (machine_id, v), one hourly average per row, for machines $1 and
	// hours [$2, $3).
	hourly string
	column string // the raw metrics column, for the last hour's average
}

// Metrics are the three metrics the spec names. cpu and ram baselines come from the
// hourly aggregate metrics_hourly; disk latency has no aggregate, so its hourly averages
// are computed from the raw rows of the batch's machines (an index range scan on
// (machine_id, recorded_at); 200 machines x 7 days x 1 heartbeat a minute is about 2 M
// rows per statement).
func Metrics() []Metric {
	return []Metric{
		{Type: "cpu_percent", Label: "CPU", Unit: " %", StddevFloor: 1, column: "cpu_percent",
			hourly: `SELECT machine_id, cpu_avg AS v FROM metrics_hourly WHERE machine_id = ANY($1) AND bucket >= $2 AND bucket < $3`},
		{Type: "ram_percent", Label: "RAM", Unit: " %", StddevFloor: 1, column: "ram_percent",
			hourly: `SELECT machine_id, ram_avg AS v FROM metrics_hourly WHERE machine_id = ANY($1) AND bucket >= $2 AND bucket < $3`},
		{Type: "disk_latency_ms", Label: "Disk latency", Unit: " ms", StddevFloor: 1, column: "disk_latency_ms",
			hourly: `SELECT machine_id, avg(disk_latency_ms) AS v FROM metrics
			         WHERE machine_id = ANY($1) AND recorded_at >= $2 AND recorded_at < $3 AND disk_latency_ms IS NOT NULL
			         GROUP BY machine_id, date_trunc('hour', recorded_at AT TIME ZONE 'UTC')`},
	}
}

func metricTypes() []string {
	var out []string
	for _, m := range Metrics() {
		out = append(out, m.Type)
	}
	return out
}

// Explainer asks an AI provider for a short text (aiclient.Client satisfies it through
// an adapter in Deps).
type Explainer interface {
	Explain(ctx context.Context, prompt string) (text, model string, err error)
}

// Deps is what a run needs.
type Deps struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// AI explains new and worsened drifts; nil: every explanation is the template's.
	AI Explainer
	// MaxAICalls bounds the provider calls per run; the drifts beyond it get the template.
	MaxAICalls int
	// BatchSize is the machines per set-based statement (0: DefaultBatchSize).
	BatchSize int
	// Budget is the wall time after which no new batch or provider call starts; the
	// machines left are the first of the next run (0: DefaultBudget). The function's
	// timeout leaves room for one batch and its provider calls after it.
	Budget time.Duration
	// Wall is the real clock the budget is measured with (nil: time.Now).
	Wall func() time.Time
}

// Result is what a run did.
type Result struct {
	Machines   int  // machines whose baselines were written
	Drifts     int  // rows with a drift
	Triggers   int  // new or worsened drifts (explained this run)
	AICalls    int  // provider calls made
	AIFailures int  // of which failed (the template was used)
	Complete   bool // false: the budget ran out, the rest waits for the next run
	Skipped    bool // another run holds the lock
}

// lockKey is the session advisory lock that keeps two runs (an EventBridge retry next to
// a late run) from explaining the same drift twice.
const lockKey = "optralis.drift"

// Run computes every live machine's baselines for the hour of now. Machines already done
// in this hour are skipped, so a second run in the same hour writes nothing and asks the
// provider nothing; the stalest machines go first, so a run cut short by its budget is
// resumed by the next.
func Run(ctx context.Context, d Deps, now time.Time) (Result, error) {
	if d.BatchSize <= 0 {
		d.BatchSize = DefaultBatchSize
	}
	if d.Budget <= 0 {
		d.Budget = DefaultBudget
	}
	if d.Wall == nil {
		d.Wall = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	stopAt := d.Wall().Add(d.Budget)
	now = now.UTC()
	hour := now.Truncate(time.Hour)

	conn, err := d.Pool.Acquire(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("drift: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, lockKey).Scan(&locked); err != nil {
		return Result{}, fmt.Errorf("drift: lock: %w", err)
	}
	if !locked {
		d.Logger.InfoContext(ctx, "drift: another run is in progress, skipped")
		return Result{Skipped: true, Complete: true}, nil
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock(hashtext($1))`, lockKey); err != nil {
			// A connection that may still hold the lock must not go back to the pool.
			_ = conn.Conn().Close(uctx)
		}
	}()

	r := run{d: d, conn: conn, now: now, hour: hour, stopAt: stopAt}
	res, runErr := r.all(ctx)
	if err := r.recordRoutine(ctx, res, runErr); err != nil && runErr == nil {
		runErr = err
	}
	level := slog.LevelInfo
	if runErr != nil {
		level = slog.LevelError
	}
	attrs := []any{"machines", res.Machines, "drifts", res.Drifts, "triggers", res.Triggers,
		"ai_calls", res.AICalls, "ai_failures", res.AIFailures, "complete", res.Complete, "hour", hour}
	if runErr != nil {
		attrs = append(attrs, "error", runErr.Error())
	}
	d.Logger.Log(ctx, level, "[Drift] baselines updated", attrs...)
	return res, runErr
}

// Verdict is a row's drift decision.
type Verdict struct {
	Z        *float64
	Detected bool
	Severity string // "", "warning" or "critical"
	Stddev   float64
}

// Stats are one machine's figures for one metric.
type Stats struct {
	Points  int
	Mean    *float64
	Stddev  *float64
	P95     *float64
	Current *float64
}

// Decide computes the z-score and the verdict from the row's thresholds. No verdict
// without MinPoints hourly averages and a last-hour average.
func Decide(s Stats, m Metric, warning, critical float64) Verdict {
	if s.Points < MinPoints || s.Mean == nil || s.Current == nil {
		return Verdict{}
	}
	sd := 0.0
	if s.Stddev != nil {
		sd = *s.Stddev
	}
	sd = math.Max(sd, m.StddevFloor)
	z := clamp((*s.Current - *s.Mean) / sd)
	v := Verdict{Z: &z, Stddev: sd}
	switch a := math.Abs(z); {
	case a >= critical:
		v.Detected, v.Severity = true, "critical"
	case a >= warning:
		v.Detected, v.Severity = true, "warning"
	}
	return v
}

// maxDecimal is the largest magnitude a DECIMAL(10, 2) column holds.
const maxDecimal = 99_999_999.99

func clamp(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return math.Max(-maxDecimal, math.Min(maxDecimal, v))
}

func clampPtr(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := clamp(*p)
	return &v
}

func rank(severity string) int {
	switch severity {
	case "warning":
		return 1
	case "critical":
		return 2
	}
	return 0
}
