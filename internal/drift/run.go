package drift

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/db"
)

// run is one execution: the held connection (it carries the advisory lock) and the hour.
type run struct {
	d      Deps
	conn   *pgxpool.Conn
	now    time.Time
	hour   time.Time
	stopAt time.Time
}

type machine struct {
	id, clientID, os string
}

// previous is a row as the last run (or an admin, for the thresholds) left it.
type previous struct {
	warning, critical float64
	detected          bool
	severity          *string
	explanation       *string
}

// row is one metric_baselines row to write.
type row struct {
	m           machine
	metric      Metric
	stats       Stats
	verdict     Verdict
	explanation *string
	trigger     string // "", "new" or "worsened"
	// filled for triggers:
	outcome string // "ai", "ai_failed", "template" (no provider), "limit", "budget"
	aiText  string
	aiModel string
	aiErr   string
}

func (r *run) all(ctx context.Context) (Result, error) {
	var res Result
	for batches := 0; ; batches++ {
		if batches > 0 && r.d.Wall().After(r.stopAt) {
			return res, nil
		}
		ms, err := r.candidates(ctx)
		if err != nil {
			return res, err
		}
		if len(ms) == 0 {
			res.Complete = true
			return res, nil
		}
		if err := r.batch(ctx, ms, &res); err != nil {
			return res, err
		}
	}
}

// candidates are the next live machines without all their baselines for this hour,
// stalest first.
func (r *run) candidates(ctx context.Context) ([]machine, error) {
	rows, err := r.conn.Query(ctx, `
		SELECT m.id, m.client_id, m.os FROM machines m
		CROSS JOIN LATERAL (
		    SELECT count(*) FILTER (WHERE b.last_updated >= $1) AS fresh, min(b.last_updated) AS oldest
		    FROM metric_baselines b WHERE b.machine_id = m.id AND b.metric_type = ANY($2)) b
		WHERE m.deleted_at IS NULL AND b.fresh < $3
		ORDER BY b.oldest NULLS FIRST, m.id
		LIMIT $4`, r.hour, metricTypes(), len(Metrics()), r.d.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("drift: machines: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (machine, error) {
		var m machine
		return m, row.Scan(&m.id, &m.clientID, &m.os)
	})
}

func (r *run) batch(ctx context.Context, ms []machine, res *Result) error {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.id
	}
	prev, err := r.previous(ctx, ids)
	if err != nil {
		return err
	}
	var out []*row
	for _, metric := range Metrics() {
		stats, err := r.stats(ctx, metric, ids)
		if err != nil {
			return err
		}
		for _, m := range ms {
			p, ok := prev[key(m.id, metric.Type)]
			if !ok {
				p = previous{warning: 2.0, critical: 3.0} // the column defaults
			}
			rw := &row{m: m, metric: metric, stats: stats[m.id]}
			rw.verdict = Decide(rw.stats, metric, p.warning, p.critical)
			switch {
			case !rw.verdict.Detected:
			case !p.detected:
				rw.trigger = "new"
			case p.severity == nil || rank(rw.verdict.Severity) > rank(*p.severity):
				rw.trigger = "worsened"
			default:
				// The same drift goes on: its explanation stays the one written when it
				// appeared or last worsened.
				rw.explanation = p.explanation
			}
			if rw.verdict.Detected && rw.explanation == nil {
				t := Template(metric, rw.stats, rw.verdict)
				rw.explanation = &t
			}
			out = append(out, rw)
		}
	}
	r.explain(ctx, out, res)
	if err := r.write(ctx, out); err != nil {
		return err
	}
	res.Machines += len(ms)
	for _, rw := range out {
		if rw.verdict.Detected {
			res.Drifts++
		}
		if rw.trigger != "" {
			res.Triggers++
		}
	}
	return nil
}

func key(machineID, metric string) string { return machineID + "/" + metric }

func (r *run) previous(ctx context.Context, ids []string) (map[string]previous, error) {
	rows, err := r.conn.Query(ctx, `
		SELECT machine_id, metric_type, warning_threshold::float8, critical_threshold::float8,
		       drift_detected, drift_severity, drift_explanation
		FROM metric_baselines WHERE machine_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("drift: previous baselines: %w", err)
	}
	out := map[string]previous{}
	var id, metric string
	var p previous
	_, err = pgx.ForEachRow(rows, []any{&id, &metric, &p.warning, &p.critical, &p.detected, &p.severity, &p.explanation}, func() error {
		out[key(id, metric)] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("drift: previous baselines: %w", err)
	}
	return out, nil
}

// stats is one set-based statement for the batch: the baseline over the 7 days before the
// last hour, and the last hour's average from the raw rows (the hourly aggregates may not
// hold the last hour yet: TimescaleDB's policy stops an hour back).
func (r *run) stats(ctx context.Context, m Metric, ids []string) (map[string]Stats, error) {
	last := r.hour.Add(-time.Hour)
	rows, err := r.conn.Query(ctx, `
		WITH hist AS (
		    SELECT machine_id, count(*) AS n, avg(v) AS mean, stddev_samp(v) AS sd,
		           percentile_cont(0.95) WITHIN GROUP (ORDER BY v) AS p95
		    FROM (`+m.hourly+`) h
		    WHERE v IS NOT NULL
		    GROUP BY machine_id),
		cur AS (
		    SELECT machine_id, avg(`+m.column+`) AS v FROM metrics
		    WHERE machine_id = ANY($1) AND recorded_at >= $3 AND recorded_at < $4 AND `+m.column+` IS NOT NULL
		    GROUP BY machine_id)
		SELECT hist.machine_id, hist.n, hist.mean::float8, hist.sd::float8, hist.p95::float8, NULL::float8 FROM hist
		UNION ALL
		SELECT cur.machine_id, 0, NULL, NULL, NULL, cur.v::float8 FROM cur`,
		ids, last.Add(-Window), last, r.hour)
	if err != nil {
		return nil, fmt.Errorf("drift: %s statistics: %w", m.Type, err)
	}
	out := map[string]Stats{}
	var id string
	var n int
	var mean, sd, p95, cur *float64
	_, err = pgx.ForEachRow(rows, []any{&id, &n, &mean, &sd, &p95, &cur}, func() error {
		s := out[id]
		if cur != nil {
			v := *cur
			s.Current = &v
		} else {
			s.Points, s.Mean, s.Stddev, s.P95 = n, copyPtr(mean), copyPtr(sd), copyPtr(p95)
		}
		out[id] = s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("drift: %s statistics: %w", m.Type, err)
	}
	return out, nil
}

func copyPtr(p *float64) *float64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// write upserts the batch's rows and records the triggers and analyses, in one
// transaction stamped with the run's now. The thresholds are never written: an admin's
// stay.
func (r *run) write(ctx context.Context, rows []*row) error {
	n := len(rows)
	var (
		ids, types            = make([]string, n), make([]string, n)
		mean, sd, p95, cur, z = make([]*float64, n), make([]*float64, n), make([]*float64, n), make([]*float64, n), make([]*float64, n)
		detected              = make([]bool, n)
		severity, explanation = make([]*string, n), make([]*string, n)
	)
	for i, rw := range rows {
		ids[i], types[i] = rw.m.id, rw.metric.Type
		mean[i], sd[i], p95[i], cur[i] = clampPtr(rw.stats.Mean), clampPtr(rw.stats.Stddev), clampPtr(rw.stats.P95), clampPtr(rw.stats.Current)
		z[i], detected[i], explanation[i] = rw.verdict.Z, rw.verdict.Detected, rw.explanation
		if rw.verdict.Severity != "" {
			s := rw.verdict.Severity
			severity[i] = &s
		}
	}
	return db.InTxAt(ctx, r.conn, r.now, func(tx *db.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO metric_baselines (machine_id, metric_type, baseline_mean, baseline_stddev, baseline_p95,
			       current_value, z_score, drift_detected, drift_severity, drift_explanation, last_updated)
			SELECT u.machine_id, u.metric_type, u.mean, u.sd, u.p95, u.cur, u.z, u.detected, u.severity, u.explanation, $11
			FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[],
			            $8::bool[], $9::text[], $10::text[])
			     AS u(machine_id, metric_type, mean, sd, p95, cur, z, detected, severity, explanation)
			JOIN machines m ON m.id = u.machine_id AND m.deleted_at IS NULL
			ON CONFLICT (machine_id, metric_type) DO UPDATE SET
			       baseline_mean = EXCLUDED.baseline_mean, baseline_stddev = EXCLUDED.baseline_stddev,
			       baseline_p95 = EXCLUDED.baseline_p95, current_value = EXCLUDED.current_value,
			       z_score = EXCLUDED.z_score, drift_detected = EXCLUDED.drift_detected,
			       drift_severity = EXCLUDED.drift_severity, drift_explanation = EXCLUDED.drift_explanation,
			       last_updated = EXCLUDED.last_updated`,
			ids, types, mean, sd, p95, cur, z, detected, severity, explanation, tx.Now)
		if err != nil {
			return fmt.Errorf("drift: writing baselines: %w", err)
		}
		for _, rw := range rows {
			if rw.trigger == "" {
				continue
			}
			if err := r.record(ctx, tx, rw); err != nil {
				return err
			}
		}
		return nil
	})
}

// record writes a trigger (ai_trigger_history) and, when the provider answered, its
// analysis (ai_analysis_results).
func (r *run) record(ctx context.Context, tx *db.Tx, rw *row) error {
	figures := map[string]any{
		"metric_type": rw.metric.Type, "severity": rw.verdict.Severity, "trigger": rw.trigger,
		"z_score": rw.verdict.Z, "current_value": rw.stats.Current, "baseline_mean": rw.stats.Mean,
		"baseline_stddev": rw.stats.Stddev, "baseline_p95": rw.stats.P95, "hourly_points": rw.stats.Points,
	}
	details := map[string]any{"outcome": rw.outcome}
	for k, v := range figures {
		details[k] = v
	}
	if rw.aiErr != "" {
		details["error"] = rw.aiErr
	}
	dj, err := json.Marshal(details)
	if err != nil {
		return err
	}
	reason := fmt.Sprintf("%s %s drift (%s, z %.2f)", rw.metric.Type, rw.verdict.Severity, rw.trigger, *rw.verdict.Z)
	if _, err := tx.Exec(ctx, `
		INSERT INTO ai_trigger_history (client_id, machine_id, trigger_type, reason, details, executed_at)
		VALUES ($1, $2, 'drift', $3, $4, $5)`, rw.m.clientID, rw.m.id, reason, dj, tx.Now); err != nil {
		return fmt.Errorf("drift: recording the trigger: %w", err)
	}
	if rw.outcome != "ai" {
		return nil
	}
	figures["explanation"] = rw.aiText
	rj, err := json.Marshal(figures)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO ai_analysis_results (client_id, machine_id, analysis_type, summary, result, model, created_at, expires_at)
		VALUES ($1, $2, 'drift', $3, $4, $5, $6, $7)`,
		rw.m.clientID, rw.m.id, rw.aiText, rj, rw.aiModel, tx.Now, tx.Now.Add(ExplanationTTL)); err != nil {
		return fmt.Errorf("drift: recording the analysis: %w", err)
	}
	return nil
}

// recordRoutine writes the run's ai_routine_history row: success when every trigger was
// explained as intended (by the provider when one is configured), partial when some fell
// back to the template or the budget cut the run short, failed when the run failed or
// every provider call failed.
func (r *run) recordRoutine(ctx context.Context, res Result, runErr error) error {
	status := "success"
	switch {
	case runErr != nil || (res.AICalls > 0 && res.AIFailures == res.AICalls):
		status = "failed"
	case res.AIFailures > 0 || !res.Complete || (r.d.AI != nil && res.AICalls < res.Triggers):
		status = "partial"
	}
	details, err := json.Marshal(map[string]any{
		"hour": r.hour, "drifts": res.Drifts, "triggers": res.Triggers, "ai_calls": res.AICalls,
		"ai_failures": res.AIFailures, "complete": res.Complete, "provider": r.d.AI != nil,
		"max_ai_calls": r.d.MaxAICalls, "min_hourly_points": MinPoints,
	})
	if err != nil {
		return err
	}
	var errText *string
	if runErr != nil {
		s := runErr.Error()
		errText = &s
	}
	// The run's own context may be the one that ran out: record the outcome regardless.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := r.conn.Exec(wctx, `
		INSERT INTO ai_routine_history (client_id, routine_name, status, machines_analyzed, details, error, executed_at)
		VALUES (NULL, 'drift', $1, $2, $3, $4, $5)`, status, res.Machines, details, errText, r.now); err != nil {
		return fmt.Errorf("drift: recording the run: %w", err)
	}
	return nil
}
