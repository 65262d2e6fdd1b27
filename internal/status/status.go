// Package status tracks service uptime (the 30-minute health check) and serves the public
// status page data (GET /status).
package status

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	json "github.com/goccy/go-json"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/httpx"
)

// Service statuses (spec "Service Uptime Tracking").
const (
	Online   = "online"
	Degraded = "degraded"
	Offline  = "offline"
)

// The services checked. The spec names api, database and ai; the cache (Redis) is checked
// when one is configured, but it is optional (the service runs without it), so it is
// shown and never counts toward the overall status or the uptime.
const (
	ServiceAPI      = "api"
	ServiceDatabase = "database"
	ServiceAI       = "ai"
	ServiceCache    = "cache"
)

// Optional reports whether a service may be down without the service being degraded.
func Optional(service string) bool { return service == ServiceCache }

// SlowDatabase is when a database ping counts as degraded (spec: "> 1000ms").
const SlowDatabase = time.Second

// Time limits of the checks: the whole check stays well inside the function's timeout.
const (
	databaseTimeout = 5 * time.Second
	cacheTimeout    = 2 * time.Second
	aiTimeout       = 5 * time.Second
)

// Tracker runs the health checks and computes uptime.
type Tracker struct {
	Pool   *pgxpool.Pool
	Redis  *redis.Client // nil: no cache configured, not checked
	Logger *slog.Logger
	// AIHealthURL is the AI provider's health endpoint (GET, JSON {"status": "healthy"});
	// empty: no provider configured, the ai service is not checked.
	AIHealthURL string
	// HTTP makes the AI check's request (nil: a plain client; the check has its own timeout).
	HTTP *http.Client
}

// Check is the scheduled health check: it records one row per service, all stamped now.
// The API is online by definition when this code runs; the database is timed with a ping;
// the AI provider answers GET /health; the cache is pinged. A second run for the same now
// (a retried invocation) records nothing more.
func (t Tracker) Check(ctx context.Context, now time.Time) error {
	checks := []check{{ServiceAPI, Online, 0}, t.checkDatabase(ctx)}
	if t.AIHealthURL != "" {
		checks = append(checks, t.checkAI(ctx))
	}
	if t.Redis != nil {
		checks = append(checks, t.checkCache(ctx))
	}
	names := make([]string, len(checks))
	statuses := make([]string, len(checks))
	times := make([]int64, len(checks))
	attrs := []any{"checked_at", now}
	for i, c := range checks {
		names[i], statuses[i], times[i] = c.name, c.status, c.ms
		attrs = append(attrs, c.name, c.status)
	}
	// If the database is down the insert fails too: the gap in the data is the record.
	// The advisory lock serialises concurrent retries of one invocation.
	var inserted int64
	err := db.InTxAt(ctx, t.Pool, now, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('service_uptime'))`); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO service_uptime (service_name, status, response_time_ms, checked_at)
			SELECT n, s, ms, $4 FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(n, s, ms)
			WHERE NOT EXISTS (SELECT 1 FROM service_uptime WHERE checked_at = $4)`,
			names, statuses, times, tx.Now)
		inserted = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("uptime: recording checks: %w", err)
	}
	if inserted == 0 {
		t.Logger.InfoContext(ctx, "uptime: already checked at this time, nothing recorded", attrs...)
		return nil
	}
	t.Logger.InfoContext(ctx, "uptime: services checked", attrs...)
	return nil
}

type check struct {
	name, status string
	ms           int64
}

func (t Tracker) checkDatabase(ctx context.Context) check {
	pingCtx, cancel := context.WithTimeout(ctx, databaseTimeout)
	defer cancel()
	start := time.Now()
	err := t.Pool.Ping(pingCtx)
	c := check{ServiceDatabase, Online, time.Since(start).Milliseconds()}
	switch {
	case err != nil:
		c.status = Offline
		t.Logger.WarnContext(ctx, "uptime: database ping failed", "error", err.Error())
	case time.Duration(c.ms)*time.Millisecond > SlowDatabase:
		c.status = Degraded
	}
	return c
}

// checkCache pings the cache. Down is recorded as offline: the page shows it, and
// Optional keeps it out of the overall status and the uptime.
func (t Tracker) checkCache(ctx context.Context) check {
	pingCtx, cancel := context.WithTimeout(ctx, cacheTimeout)
	defer cancel()
	start := time.Now()
	err := t.Redis.Ping(pingCtx).Err()
	c := check{ServiceCache, Online, time.Since(start).Milliseconds()}
	if err != nil {
		c.status = Offline
		t.Logger.WarnContext(ctx, "uptime: cache ping failed", "error", err.Error())
	}
	return c
}

// checkAI asks the provider's health endpoint (spec: "HTTP GET /health", degraded when
// status != "healthy"). No answer at all (refused, timeout) is offline; an answer that is
// not a 2xx with {"status": "healthy"} is degraded: the provider is there but unwell.
func (t Tracker) checkAI(ctx context.Context) check {
	c := check{name: ServiceAI, status: Offline}
	reqCtx, cancel := context.WithTimeout(ctx, aiTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, t.AIHealthURL, nil)
	if err != nil {
		t.Logger.WarnContext(ctx, "uptime: AI health URL", "error", err.Error())
		return c
	}
	req.Header.Set("Accept", "application/json")
	client := t.HTTP
	if client == nil {
		client = &http.Client{}
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		c.ms = time.Since(start).Milliseconds()
		t.Logger.WarnContext(ctx, "uptime: AI provider unreachable", "error", err.Error())
		return c
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
	}
	decErr := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	c.ms = time.Since(start).Milliseconds()
	c.status = Degraded
	if resp.StatusCode/100 == 2 && decErr == nil && body.Status == "healthy" {
		c.status = Online
	} else {
		t.Logger.WarnContext(ctx, "uptime: AI provider not healthy", "http_status", resp.StatusCode, "status", body.Status)
	}
	return c
}

// Periods is the number of 12-hour periods in the 15-day history.
const Periods = 30

// Period is the length of one uptime value.
const Period = 12 * time.Hour

// UptimeStart is the start of the first (oldest) of the 30 periods that end with the
// current one: periods are aligned on 00:00 and 12:00 UTC.
func UptimeStart(now time.Time) time.Time {
	end := now.UTC().Truncate(Period).Add(Period)
	return end.Add(-Periods * Period)
}

// Uptime15Days returns 30 percentages, oldest first: for each 12-hour period of the last
// 15 days, the share of checks (all services together, the optional cache aside) that
// were online or degraded. A period without checks counts as 100 % (a new deployment has
// no history).
func (t Tracker) Uptime15Days(ctx context.Context, now time.Time) ([]float64, error) {
	start := UptimeStart(now)
	end := start.Add(Periods * Period)
	rows, err := t.Pool.Query(ctx, `
		SELECT floor(extract(epoch FROM checked_at - $1::timestamptz) / 43200)::int AS period,
		       avg(CASE WHEN status = 'offline' THEN 0.0 ELSE 100.0 END)::float8
		FROM service_uptime
		WHERE checked_at >= $1 AND checked_at < $2 AND service_name <> $3
		GROUP BY period`, start, end, ServiceCache)
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
	// Optional services (the cache) are shown but never make the whole service degraded.
	Optional bool `json:"optional"`
}

// Page is the public status page's data.
type Page struct {
	Status       string         `json:"status"`
	Services     []ServiceState `json:"services"`
	Uptime15Days []float64      `json:"uptime_15_days"`
	// UptimeStart is when the first value of Uptime15Days begins; value i covers
	// [UptimeStart + i×12h, UptimeStart + (i+1)×12h).
	UptimeStart   time.Time `json:"uptime_start"`
	UptimePercent float64   `json:"uptime_percent"`
	GeneratedAt   time.Time `json:"generated_at"`
}

// Latest returns each service's most recent check (of the last two days).
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
		s.Optional = Optional(s.Name)
		out = append(out, s)
	}
	return out, rows.Err()
}

// HandleStatus serves GET /status (public). It answers even when the database is down:
// the page then says so instead of failing.
func HandleStatus(t Tracker, clk clock.Clock) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := clk.Now()
		page := Page{Status: Online, GeneratedAt: now, UptimeStart: UptimeStart(now)}
		services, err := t.Latest(r.Context(), now)
		if err == nil {
			page.Uptime15Days, err = t.Uptime15Days(r.Context(), now)
		}
		if err != nil {
			t.Logger.WarnContext(r.Context(), "status: database unavailable", "error", err.Error())
			page.Status = Degraded
			page.Services = []ServiceState{{Name: ServiceAPI, Status: Online, CheckedAt: now}, {Name: ServiceDatabase, Status: Offline, CheckedAt: now}}
			page.Uptime15Days = nil
			w.Header().Set("Cache-Control", "no-store")
			httpx.WriteJSON(w, http.StatusOK, page)
			return
		}
		page.Services = services
		page.Status = Overall(services)
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

// Overall is the whole service's status: the worst latest check among the services that
// are not optional (a cache that is down is shown, but the service runs without it).
func Overall(services []ServiceState) string {
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
		if !Optional(s.Name) && rank(s.Status) > rank(out) {
			out = s.Status
		}
	}
	return out
}
