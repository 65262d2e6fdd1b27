package machinedata

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/db"
)

// Baseline is one metric_baselines row (spec "Table metric_baselines").
type Baseline struct {
	ID                string    `json:"id"`
	MachineID         string    `json:"machine_id"`
	MetricType        string    `json:"metric_type"`
	BaselineMean      *float64  `json:"baseline_mean"`
	BaselineStddev    *float64  `json:"baseline_stddev"`
	BaselineP95       *float64  `json:"baseline_p95"`
	CurrentValue      *float64  `json:"current_value"`
	ZScore            *float64  `json:"z_score"`
	WarningThreshold  float64   `json:"warning_threshold"`
	CriticalThreshold float64   `json:"critical_threshold"`
	DriftDetected     bool      `json:"drift_detected"`
	DriftSeverity     *string   `json:"drift_severity"`
	DriftExplanation  *string   `json:"drift_explanation"`
	LastUpdated       time.Time `json:"last_updated"`
}

// Drift is GET /api/machines/{id}/drift.
type Drift struct {
	MachineID string     `json:"machine_id"`
	Baselines []Baseline `json:"baselines"`
}

// HandleDrift is GET /api/machines/{id}/drift: the drift job's baselines of the machine,
// one per metric; an empty list until the job has run.
func HandleDrift(d Deps) http.Handler {
	return d.serve(func(ctx context.Context, _ url.Values, m machine) (any, error) {
		rows, err := d.Pool.Query(ctx, `
			SELECT id, machine_id, metric_type, baseline_mean::float8, baseline_stddev::float8, baseline_p95::float8,
			       current_value::float8, z_score::float8, warning_threshold::float8, critical_threshold::float8,
			       drift_detected, drift_severity, drift_explanation, last_updated
			FROM metric_baselines WHERE machine_id = $1 ORDER BY metric_type`, m.id)
		if err != nil {
			return nil, db.Error(err, "machinedata: drift")
		}
		bs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Baseline, error) {
			var b Baseline
			err := row.Scan(&b.ID, &b.MachineID, &b.MetricType, &b.BaselineMean, &b.BaselineStddev, &b.BaselineP95,
				&b.CurrentValue, &b.ZScore, &b.WarningThreshold, &b.CriticalThreshold, &b.DriftDetected, &b.DriftSeverity,
				&b.DriftExplanation, &b.LastUpdated)
			b.LastUpdated = b.LastUpdated.UTC()
			return b, err
		})
		if err != nil {
			return nil, db.Error(err, "machinedata: drift")
		}
		return Drift{MachineID: m.id, Baselines: nonNil(bs)}, nil
	})
}
