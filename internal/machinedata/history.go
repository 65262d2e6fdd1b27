package machinedata

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/series"
)

// History is a history answer: hourly points of one machine over a window.
type History[P any] struct {
	MachineID string `json:"machine_id"`
	Window
	// Source is "aggregates" (the hourly rollups) or "raw" (the last reading of each
	// hour, when fewer than 5 hours are aggregated).
	Source string `json:"source"`
	Points []P    `json:"points"`
}

type reader[P any] func(ctx context.Context, q db.Querier, machineID string, from, to time.Time) ([]P, string, error)

func handleHistory[P any](d Deps, read reader[P]) http.Handler {
	return d.serve(func(ctx context.Context, q url.Values, m machine) (any, error) {
		bad := problems{}
		w := bad.window(q, d.Clock.Now(), m.metricsDays)
		if err := bad.err(); err != nil {
			return nil, err
		}
		pts, src, err := read(ctx, d.Pool, m.id, w.From, w.To)
		if err != nil {
			return nil, err
		}
		return History[P]{MachineID: m.id, Window: w, Source: src, Points: pts}, nil
	})
}

// HandleMetrics is GET /api/machines/{id}/metrics: CPU, RAM and CPU temperature per hour.
func HandleMetrics(d Deps) http.Handler { return handleHistory(d, series.CPURAMHistory) }

// HandleNetwork is GET /api/machines/{id}/network: traffic, packet loss and latency per hour.
func HandleNetwork(d Deps) http.Handler { return handleHistory(d, series.NetworkHistory) }

// HandleDisks is GET /api/machines/{id}/disks: usage per hour and mount point.
func HandleDisks(d Deps) http.Handler { return handleHistory(d, series.DiskHistory) }
