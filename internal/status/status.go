// Package status tracks service uptime (the 30-minute health check) and serves the public
// status page data (GET /status).
package status

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/httpx"
)

// Service statuses (spec "Service Uptime Tracking").
const (
	Online   = "online"
	Degraded = "degraded"
	Offline  = "offline"
)

// SlowDatabase is when a database ping counts as degraded (spec: "> 1000ms").
const SlowDatabase = time.Second

// Tracker runs the health checks and computes uptime.
type Tracker struct {
	Pool   *pgxpool.Pool
	Redis  *redis.Client // nil: no cache configured, not checked
	Logger *slog.Logger
}

// Check is the scheduled health check: it records one row per service. The API is online
// by definition when this code runs; the database is timed with a ping.
func (t Tracker) Check(ctx context.Context, now time.Time) error {
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	start := time.Now()
	err := t.Pool.Ping(pingCtx)
	cancel()
	elapsed := time.Since(start)
	dbStatus := Online
	switch {
	case err != nil:
		dbStatus = Offline
		t.Logger.WarnContext(ctx, "uptime: database ping failed", "error", err.Error())
	case elapsed > SlowDatabase:
		dbStatus = Degraded
	}
	names := []string{"api", "database"}
	statuses := []string{Online, dbStatus}
	times := []int64{0, elapsed.Milliseconds()}
	if t.Redis != nil {
		// The cache is optional: when it is down the service degrades, it does not stop.
		pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		start := time.Now()
		err := t.Redis.Ping(pingCtx).Err()
		cancel()
		st := Online
		if err != nil {
			st = Degraded
		}
		names, statuses, times = append(names, "cache"), append(statuses, st), append(times, time.Since(start).Milliseconds())
	}
	// If the database is down the insert fails too: the gap in the data is the record.
	_, err = t.Pool.Exec(ctx, `
		INSERT INTO service_uptime (service_name, status, response_time_ms, checked_at)
		SELECT n, s, ms, $4 FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(n, s, ms)`,
		names, statuses, times, now)
	if err != nil {
		return fmt.Errorf("uptime: recording checks: %w", err)
	}
	return nil
}

// Periods is the number of 12-hour periods in the 15-day history.
const Periods = 30

// Uptime15Days returns 30 percentages, oldest first: for each 12-hour period of the last
// 15 days, the share of checks (all services together) that were online or degraded.
// A period without checks counts as 100 % (a new deployment has no history).
func (t Tracker) Uptime15Days(ctx context.Context, now time.Time) ([]float64, error) {
	end := now.UTC().Truncate(12 * time.Hour).Add(12 * time.Hour)
	start := end.Add(-Periods * 12 * time.Hour)
	rows, err := t.Pool.Query(ctx, `
		SELECT floor(extract(epoch FROM checked_at - $1::timestamptz) / 43200)::int AS period,
		       avg(CASE WHEN status = 'offline' THEN 0.0 ELSE 100.0 END)::float8
		FROM service_uptime
		WHERE checked_at >= $1 AND checked_at < $2
		GROUP BY period`, start, end)
	if err != nil {
		return nil, fmt.Errorf("uptime: %w", err)
	}
	defer rows.Close()
	out := make([]float64, Periods)
	for i := range out {
		out[i] = 100
	}
	for rows.Next() {
		var p int
		var v float64
		if err := rows.Scan(&p, &v); err != nil {
			return nil, err
		}
		if p >= 0 && p < Periods {
			out[p] = v
		}
	}
	return out, rows.Err()
}

// ServiceState is the latest check of one service.
type ServiceState struct {
	Name           string    `json:"name"`
	Status         string    `json:"status"`
	ResponseTimeMS int       `json:"response_time_ms"`
	CheckedAt      time.Time `json:"checked_at"`
}

// Page is the public status page's data.
type Page struct {
	Status        string         `json:"status"`
	Services      []ServiceState `json:"services"`
	Uptime15Days  []float64      `json:"uptime_15_days"`
	UptimePercent float64        `json:"uptime_percent"`
	GeneratedAt   time.Time      `json:"generated_at"`
}

// Latest returns each service's most recent check.
func (t Tracker) Latest(ctx context.Context, now time.Time) ([]ServiceState, error) {
	rows, err := t.Pool.Query(ctx, `
		SELECT DISTINCT ON (service_name) service_name, status, COALESCE(response_time_ms, 0), checked_at
		FROM service_uptime WHERE checked_at > $1::timestamptz - INTERVAL '2 days' AND checked_at <= $1
		ORDER BY service_name, checked_at DESC`, now)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	defer rows.Close()
	out := []ServiceState{}
	for rows.Next() {
		var s ServiceState
		if err := rows.Scan(&s.Name, &s.Status, &s.ResponseTimeMS, &s.CheckedAt); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// HandleStatus serves GET /status (public). It answers even when the database is down:
// the page then says so instead of failing.
func HandleStatus(t Tracker, clk clock.Clock) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := clk.Now()
		page := Page{Status: Online, GeneratedAt: now}
		services, err := t.Latest(r.Context(), now)
		if err == nil {
			page.Uptime15Days, err = t.Uptime15Days(r.Context(), now)
		}
		if err != nil {
			t.Logger.WarnContext(r.Context(), "status: database unavailable", "error", err.Error())
			page.Status = Degraded
			page.Services = []ServiceState{{Name: "api", Status: Online, CheckedAt: now}, {Name: "database", Status: Offline, CheckedAt: now}}
			page.Uptime15Days = nil
			w.Header().Set("Cache-Control", "no-store")
			httpx.WriteJSON(w, http.StatusOK, page)
			return
		}
		page.Services = services
		page.Status = worst(services)
		var sum float64
		for _, v := range page.Uptime15Days {
			sum += v
		}
		page.UptimePercent = sum / float64(len(page.Uptime15Days))
		// A public page polled by many: let the CDN absorb it for a minute.
		w.Header().Set("Cache-Control", "public, max-age=60")
		httpx.WriteJSON(w, http.StatusOK, page)
	})
}

// worst is the overall status: the worst of the services' latest checks.
func worst(services []ServiceState) string {
	rank := func(s string) int {
		switch s {
		case Offline:
			return 2
		case Degraded:
			return 1
		}
		return 0
	}
	out := Online
	for _, s := range services {
		if rank(s.Status) > rank(out) {
			out = s.Status
		}
	}
	return out
}
