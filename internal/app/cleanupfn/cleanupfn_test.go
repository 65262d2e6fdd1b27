package cleanupfn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/cleanupfn"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/rollup"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const day = 24 * time.Hour

// tier is a licence and its retention in days (spec "Rétention par Licence"); Split is a
// tier the test adds whose events are kept less long than its metrics.
var tiers = []struct {
	name           string
	metrics, event int
}{
	{"Trial", 7, 7}, {"Starter", 30, 30}, {"Essentials", 30, 30}, {"Pro", 90, 90},
	{"Business", 90, 90}, {"Enterprise", 365, 365}, {"Split", 30, 7},
}

// ages are the planted rows' ages: on each side of every licence limit and exactly at it
// (kept: only rows older than the limit go), a recent one and one past every limit.
func ages() []time.Duration {
	out := []time.Duration{day, 400 * day}
	for _, l := range []int{7, 30, 90, 365} {
		d := time.Duration(l) * day
		out = append(out, d-time.Hour, d, d+time.Hour)
	}
	return out
}

func olderThan(limitDays int) (n int64) {
	for _, a := range ages() {
		if a > time.Duration(limitDays)*day {
			n++
		}
	}
	return n
}

type planted struct {
	client, machine string
	metrics, events int
}

// plant creates a client per tier with one machine and rows of every age in every
// per-client table, and history rows on each side of the fixed retentions.
func plant(t *testing.T, pool *pgxpool.Pool, now time.Time) []planted {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO license_retention VALUES ('Split', 30, 7)`); err != nil {
		t.Fatal(err)
	}
	var out []planted
	for _, tr := range tiers {
		c := testenv.Client(t, pool, tr.name)
		m := testenv.Machine(t, pool, c, "host-"+strings.ToLower(tr.name))
		out = append(out, planted{c, m, tr.metrics, tr.event})
		for _, a := range ages() {
			at := now.Add(-a)
			for _, sql := range []string{
				`INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent) VALUES ($1, $2, 10, 20)`,
				`INSERT INTO disk_info (machine_id, recorded_at, mount_point, used_percent) VALUES ($1, $2, '/', 10)`,
				`INSERT INTO smart_data (machine_id, recorded_at, device) VALUES ($1, $2, 'sda')`,
				`INSERT INTO event_logs (machine_id, recorded_at, seq, event_time) VALUES ($1, $2, 0, $2)`,
				`INSERT INTO metric_aggregates (machine_id, metric_type, period, period_start, created_at) VALUES ($1, 'cpu_percent', 'hour', $2, $2)`,
			} {
				if _, err := pool.Exec(ctx, sql, m, at); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	c := out[0].client
	for _, sql := range []string{
		`INSERT INTO notification_history (client_id, notification_type, sent_at) VALUES ($1, 'test', $2::timestamptz - INTERVAL '29 days'), ($1, 'test', $2::timestamptz - INTERVAL '31 days')`,
		`INSERT INTO alert_rule_history (client_id, rule_name, metric_type, severity, triggered_at) VALUES
			($1, 'r', 'cpu', 'warning', $2::timestamptz - INTERVAL '89 days'), ($1, 'r', 'cpu', 'warning', $2::timestamptz - INTERVAL '91 days')`,
		// kept: recent and unexpired, 89 days without expiry; deleted: expired, 91 days old
		`INSERT INTO ai_analysis_results (client_id, analysis_type, created_at, expires_at) VALUES
			($1, 'kept', $2::timestamptz - INTERVAL '10 days', $2::timestamptz + INTERVAL '1 day'), ($1, 'kept', $2::timestamptz - INTERVAL '89 days', NULL),
			($1, 'gone', $2::timestamptz - INTERVAL '10 days', $2::timestamptz - INTERVAL '1 second'), ($1, 'gone', $2::timestamptz - INTERVAL '91 days', NULL)`,
		`INSERT INTO ai_trigger_history (client_id, trigger_type, executed_at) VALUES ($1, 't', $2::timestamptz - INTERVAL '89 days'), ($1, 't', $2::timestamptz - INTERVAL '91 days')`,
		`INSERT INTO ai_routine_history (client_id, routine_name, status, executed_at) VALUES ($1, 'r', 'success', $2::timestamptz - INTERVAL '89 days'), ($1, 'r', 'success', $2::timestamptz - INTERVAL '91 days')`,
		`INSERT INTO activity_logs (client_id, action, created_at) VALUES ($1, 'a', $2::timestamptz - INTERVAL '29 days'), ($1, 'a', $2::timestamptz - INTERVAL '31 days')`,
		`INSERT INTO service_uptime (service_name, status, checked_at) SELECT 'api', 'online', $2::timestamptz - INTERVAL '29 days' FROM clients WHERE id = $1
			UNION ALL SELECT 'api', 'online', $2::timestamptz - INTERVAL '31 days' FROM clients WHERE id = $1`,
	} {
		if _, err := pool.Exec(ctx, sql, c, now); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// logLines returns the messages of the JSON log and their attributes.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// runRetention is the done-when in one mode: the cleanup job on planted rows of
// every licence deletes exactly the rows past each limit, logs the spec's lines, and a
// second run deletes nothing.
func runRetention(t *testing.T, pool *pgxpool.Pool, mode string) {
	ctx := context.Background()
	// The real current minute: TimescaleDB's compression policy measures ages from it.
	now := time.Now().UTC().Truncate(time.Minute)
	clients := plant(t, pool, now)
	refresher := rollup.Refresher{Pool: pool, Mode: mode}
	if err := refresher.Refresh(ctx, now.Add(-401*day), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if mode == migrate.ModeTimescale {
		// The deletes run on compressed chunks: compress everything older than 2 days.
		rows, err := pool.Query(ctx, `SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'
			AND hypertable_name IN ('metrics', 'disk_info', 'smart_data', 'event_logs')`)
		if err != nil {
			t.Fatal(err)
		}
		var jobs []int
		for rows.Next() {
			var id int
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, id)
		}
		rows.Close()
		for _, id := range jobs {
			if _, err := pool.Exec(ctx, `CALL run_job($1::int)`, id); err != nil {
				t.Fatal(err)
			}
		}
		// One chunk (day) per planted age past 2 days, around each limit and at 400 days.
		if n := count(t, pool, `SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'metrics' AND is_compressed`); n < 5 {
			t.Fatalf("only %d compressed metrics chunks", n)
		}
		if n := count(t, pool, `SELECT count(*) FROM timescaledb_information.chunks
			WHERE hypertable_name IN ('metrics', 'disk_info', 'smart_data', 'event_logs') AND NOT is_compressed AND range_end <= $1`, now.Add(-3*day)); n != 0 {
			t.Fatalf("%d old chunks left uncompressed", n)
		}
	}
	hourlyBefore := map[string]int64{}
	for _, c := range clients {
		hourlyBefore[c.machine] = count(t, pool, `SELECT count(*) FROM metrics_hourly WHERE machine_id = $1`, c.machine)
		if hourlyBefore[c.machine] != int64(len(ages())) {
			t.Fatalf("%d aggregated hours before the cleanup, want %d", hourlyBefore[c.machine], len(ages()))
		}
	}

	var logs bytes.Buffer
	core := app.Core{Pool: pool, Clock: clock.Fixed(now), Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	if err := cleanupfn.Job(core)(ctx, now); err != nil {
		t.Fatal(err)
	}
	lines := logLines(t, &logs)
	logged := func(msg string, attrs map[string]any) bool {
		for _, l := range lines {
			if l["msg"] != msg {
				continue
			}
			ok := true
			for k, v := range attrs {
				if fmt.Sprint(l[k]) != fmt.Sprint(v) {
					ok = false
				}
			}
			if ok {
				return true
			}
		}
		return false
	}

	perClient := []struct {
		table, column string
		events        bool
	}{
		{"metrics", "recorded_at", false}, {"disk_info", "recorded_at", false}, {"smart_data", "recorded_at", false},
		{"event_logs", "recorded_at", true}, {"metric_aggregates", "period_start", false},
	}
	for _, c := range clients {
		for _, tb := range perClient {
			limit := c.metrics
			if tb.events {
				limit = c.events
			}
			want := int64(len(ages())) - olderThan(limit)
			if n := count(t, pool, `SELECT count(*) FROM `+tb.table+` WHERE machine_id = $1`, c.machine); n != want {
				t.Errorf("%s, %d-day limit: %d rows left in %s, want %d", c.client, limit, n, tb.table, want)
			}
			cutoff := now.Add(-time.Duration(limit) * day)
			if n := count(t, pool, `SELECT count(*) FROM `+tb.table+` WHERE machine_id = $1 AND `+tb.column+` < $2`, c.machine, cutoff); n != 0 {
				t.Errorf("%d rows of %s older than %d days survive", n, tb.table, limit)
			}
			msg := fmt.Sprintf("[Cleanup] Deleted %d rows from %s for client %s", olderThan(limit), tb.table, c.client)
			if !logged(msg, map[string]any{"table": tb.table, "client_id": c.client, "rows": olderThan(limit)}) {
				t.Errorf("no log line %q with its fields", msg)
			}
		}
		// The hourly aggregates follow the metrics retention: no bucket wholly before the
		// cutoff is left, every later bucket is.
		cutoff := now.Add(-time.Duration(c.metrics) * day)
		for _, view := range []string{"metrics_hourly", "disk_hourly", "network_hourly"} {
			if n := count(t, pool, `SELECT count(*) FROM `+view+` WHERE machine_id = $1 AND bucket < $2`, c.machine, cutoff.Truncate(time.Hour)); n != 0 {
				t.Errorf("%s: %d buckets before the %d-day cutoff survive", view, n, c.metrics)
			}
			if n := count(t, pool, `SELECT count(*) FROM `+view+` WHERE machine_id = $1 AND bucket >= $2`, c.machine, cutoff.Truncate(time.Hour).Add(time.Hour)); n != int64(len(ages()))-olderThan(c.metrics)-1 {
				t.Errorf("%s: %d buckets after the %d-day cutoff, want %d", view, n, c.metrics, int64(len(ages()))-olderThan(c.metrics)-1)
			}
		}
	}

	type fixed struct {
		table         string
		kept, deleted int64
	}
	global := []fixed{
		{"notification_history", 1, 1}, {"alert_rule_history", 1, 1}, {"ai_analysis_results", 2, 2},
		{"ai_trigger_history", 1, 1}, {"ai_routine_history", 1, 1},
	}
	// Postgres mode deletes activity_logs and service_uptime; TimescaleDB's native 30-day
	// policies do it in timescale mode (not run here: the job leaves them alone).
	if mode == migrate.ModePostgres {
		global = append(global, fixed{"activity_logs", 1, 1}, fixed{"service_uptime", 1, 1})
	} else {
		for _, tb := range []string{"activity_logs", "service_uptime"} {
			if n := count(t, pool, `SELECT count(*) FROM `+tb); n != 2 {
				t.Errorf("timescale mode: the job deleted from %s (%d rows left), its native policy's job", tb, n)
			}
		}
	}
	for _, g := range global {
		if n := count(t, pool, `SELECT count(*) FROM `+g.table); n != g.kept {
			t.Errorf("%d rows left in %s, want %d", n, g.table, g.kept)
		}
		msg := fmt.Sprintf("[Cleanup] Deleted %d rows from %s (global)", g.deleted, g.table)
		if !logged(msg, map[string]any{"table": g.table, "rows": g.deleted}) {
			t.Errorf("no log line %q", msg)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM ai_analysis_results WHERE analysis_type = 'gone'`); n != 0 {
		t.Errorf("%d expired or 90-day-old analyses left", n)
	}

	// A second run (a retry, the next hour at the same instant) deletes nothing more.
	logs.Reset()
	if err := cleanupfn.Job(core)(ctx, now); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "[Cleanup] Deleted") {
		t.Errorf("second run deleted rows again:\n%s", logs.String())
	}
}

func TestRetentionPostgresMode(t *testing.T) {
	t.Parallel()
	runRetention(t, testenv.NewDB(t, migrate.ModePostgres), migrate.ModePostgres)
}

func TestRetentionTimescaleMode(t *testing.T) {
	runRetention(t, testenv.Timescale(t), migrate.ModeTimescale)
}
