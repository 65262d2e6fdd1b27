package drift_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/aiclient"
	"github.com/optralis/optralis/internal/drift"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/rollup"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// now is the run's instant: the last hour is 11:00-12:00, the baseline the 7 days before.
var now = time.Date(2026, 11, 24, 12, 5, 0, 0, time.UTC)

type fleet struct {
	pool                     *pgxpool.Pool
	mode                     string
	client                   string
	jump, steady, young, del string
}

// history writes one raw sample per hour (hh:30) for hours [from, to) and refreshes the
// hourly aggregates over them, as the cleanup job's rollups do in postgres mode.
func history(t *testing.T, pool *pgxpool.Pool, mode, machine string, from, to time.Time, cpu func(i int) float64) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent, disk_latency_ms)
		SELECT $1, h + INTERVAL '30 min', 0, 50 + (i % 3) - 1, 2 + (i % 2) * 0.5
		FROM generate_series(0, $4 - 1) AS i, LATERAL (SELECT $2::timestamptz + i * INTERVAL '1 hour' AS h) x
		WHERE h < $3`, machine, from, to, int(to.Sub(from)/time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; from.Add(time.Duration(i) * time.Hour).Before(to); i++ {
		at := from.Add(time.Duration(i)*time.Hour + 30*time.Minute)
		if _, err := pool.Exec(context.Background(), `UPDATE metrics SET cpu_percent = $3 WHERE machine_id = $1 AND recorded_at = $2`, machine, at, cpu(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := (rollup.Refresher{Pool: pool, Mode: mode}).Refresh(context.Background(), from, to); err != nil {
		t.Fatal(err)
	}
}

// lastHour writes three samples in [hour, hour+1h) at the given CPU.
func lastHour(t *testing.T, pool *pgxpool.Pool, machine string, hour time.Time, cpu float64) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent, disk_latency_ms)
		SELECT $1, $2::timestamptz + m * INTERVAL '1 min', $3, 50, 2.2 FROM unnest(ARRAY[5, 25, 45]) AS m`, machine, hour, cpu)
	if err != nil {
		t.Fatal(err)
	}
}

func steady(i int) float64 { return 20 + float64(i%5-2)*0.5 } // 19..21

// newFleet: a machine whose CPU jumps from a steady 20 % to 90 %, a steady one, one with
// a day of history only, and a deleted one.
func newFleet(t *testing.T) fleet {
	return newFleetAt(t, testenv.NewDB(t, migrate.ModePostgres), migrate.ModePostgres, now)
}

func newFleetAt(t *testing.T, pool *pgxpool.Pool, mode string, now time.Time) fleet {
	f := fleet{pool: pool, mode: mode, client: testenv.Client(t, pool, "Pro")}
	f.jump = testenv.Machine(t, pool, f.client, "jump")
	f.steady = testenv.Machine(t, pool, f.client, "steady")
	f.young = testenv.Machine(t, pool, f.client, "young")
	f.del = testenv.Machine(t, pool, f.client, "deleted")
	last := now.Truncate(time.Hour).Add(-time.Hour)
	for _, m := range []string{f.jump, f.steady, f.del} {
		history(t, pool, mode, m, last.Add(-drift.Window), last, steady)
	}
	history(t, pool, mode, f.young, last.Add(-24*time.Hour), last, steady)
	lastHour(t, pool, f.jump, last, 90)
	lastHour(t, pool, f.steady, last, 20)
	lastHour(t, pool, f.young, last, 90)
	lastHour(t, pool, f.del, last, 90)
	if _, err := pool.Exec(context.Background(), `UPDATE machines SET deleted_at = $2 WHERE id = $1`, f.del, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	return f
}

type baseline struct {
	mean, sd, cur, z  *float64
	warning, critical float64
	detected          bool
	severity, explain *string
	updated           time.Time
}

func get(t *testing.T, pool *pgxpool.Pool, machine, metric string) (baseline, bool) {
	t.Helper()
	var b baseline
	err := pool.QueryRow(context.Background(), `
		SELECT baseline_mean::float8, baseline_stddev::float8, current_value::float8, z_score::float8,
		       warning_threshold::float8, critical_threshold::float8, drift_detected, drift_severity, drift_explanation, last_updated
		FROM metric_baselines WHERE machine_id = $1 AND metric_type = $2`, machine, metric).
		Scan(&b.mean, &b.sd, &b.cur, &b.z, &b.warning, &b.critical, &b.detected, &b.severity, &b.explain, &b.updated)
	if err != nil {
		if strings.Contains(err.Error(), "no rows") {
			return b, false
		}
		t.Fatal(err)
	}
	return b, true
}

func count(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// provider is a local stand-in for the Messages API that records what it received.
type provider struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []map[string]any
	hdrs   []http.Header
	status int
}

func newProvider(t *testing.T, status int) *provider {
	p := &provider{status: status}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		p.mu.Lock()
		p.reqs = append(p.reqs, req)
		p.hdrs = append(p.hdrs, r.Header.Clone())
		p.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if p.status != http.StatusOK {
			http.Error(w, `{"type":"error"}`, p.status)
			return
		}
		w.Header().Set("content-type", "application/json")
		_, _ = io.WriteString(w, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-test-1",
			"content":[{"type":"text","text":"CPU use jumped far above its usual level: look for a runaway process."}],
			"stop_reason":"end_turn"}`)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.reqs)
}

func (p *provider) deps(pool *pgxpool.Pool, maxCalls int) drift.Deps {
	return drift.Deps{Pool: pool, Logger: testenv.Discard(), MaxAICalls: maxCalls,
		AI: drift.Provider{Client: aiclient.Client{URL: p.srv.URL + "/v1/messages", Key: "sk-test-key", Model: "claude-test"}}}
}

func TestCriticalDriftExplainedByTheProvider(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFleet(t)
	p := newProvider(t, http.StatusOK)
	res, err := drift.Run(ctx, p.deps(f.pool, 20), now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Machines != 3 || res.Triggers != 1 || res.AICalls != 1 || res.AIFailures != 0 || !res.Complete {
		t.Fatalf("result %+v", res)
	}
	b, ok := get(t, f.pool, f.jump, "cpu_percent")
	if !ok || !b.detected || b.severity == nil || *b.severity != "critical" || b.explain == nil ||
		*b.explain != "CPU use jumped far above its usual level: look for a runaway process." {
		t.Fatalf("jump: %+v", b)
	}
	if *b.cur != 90 || *b.mean < 19.9 || *b.mean > 20.1 || *b.z < 60 || b.warning != 2 || b.critical != 3 || !b.updated.Equal(now) {
		t.Fatalf("jump figures: mean %v sd %v cur %v z %v updated %v", *b.mean, *b.sd, *b.cur, *b.z, b.updated)
	}
	for _, metric := range []string{"ram_percent", "disk_latency_ms"} {
		if b, ok := get(t, f.pool, f.jump, metric); !ok || b.detected || b.z == nil || b.explain != nil {
			t.Fatalf("jump %s: %+v", metric, b)
		}
	}
	for _, metric := range []string{"cpu_percent", "ram_percent", "disk_latency_ms"} {
		if b, ok := get(t, f.pool, f.steady, metric); !ok || b.detected || b.severity != nil || b.explain != nil || b.z == nil {
			t.Fatalf("steady %s: %+v", metric, b)
		}
		// A day of history is not enough for a verdict, even at 90 %.
		if b, ok := get(t, f.pool, f.young, metric); !ok || b.detected || b.z != nil || b.explain != nil || b.mean == nil {
			t.Fatalf("young %s: %+v", metric, b)
		}
		if _, ok := get(t, f.pool, f.del, metric); ok {
			t.Fatalf("deleted machine has a %s baseline", metric)
		}
	}
	// The request the provider received.
	h, req := p.hdrs[0], p.reqs[0]
	if h.Get("x-api-key") != "sk-test-key" || h.Get("anthropic-version") != aiclient.Version || !strings.HasPrefix(h.Get("content-type"), "application/json") {
		t.Fatalf("headers %v", h)
	}
	msgs, _ := req["messages"].([]any)
	if req["model"] != "claude-test" || req["max_tokens"] == nil || len(msgs) != 1 {
		t.Fatalf("request %v", req)
	}
	content, _ := msgs[0].(map[string]any)["content"].(string)
	if !strings.Contains(content, "Last hour average: 90.00 %") || !strings.Contains(content, "critical") || strings.Contains(content, "jump") {
		t.Fatalf("prompt %q", content)
	}
	// What was recorded.
	if n := count(t, f.pool, `SELECT count(*) FROM ai_analysis_results WHERE machine_id = $1 AND analysis_type = 'drift'
		AND model = 'claude-test-1' AND created_at = $2 AND expires_at = $3 AND result->>'metric_type' = 'cpu_percent'`,
		f.jump, now, now.Add(drift.ExplanationTTL)); n != 1 {
		t.Fatalf("%d analyses", n)
	}
	if n := count(t, f.pool, `SELECT count(*) FROM ai_trigger_history WHERE machine_id = $1 AND trigger_type = 'drift'
		AND details->>'outcome' = 'ai' AND details->>'trigger' = 'new' AND executed_at = $2`, f.jump, now); n != 1 {
		t.Fatalf("%d triggers", n)
	}
	if n := count(t, f.pool, `SELECT count(*) FROM ai_routine_history WHERE routine_name = 'drift' AND status = 'success'
		AND machines_analyzed = 3 AND executed_at = $1`, now); n != 1 {
		t.Fatalf("%d routine rows", n)
	}

	// A second run in the same hour does nothing again.
	res, err = drift.Run(ctx, p.deps(f.pool, 20), now.Add(20*time.Minute))
	if err != nil || res.Machines != 0 || res.AICalls != 0 || p.calls() != 1 {
		t.Fatalf("second run: %+v %v, %d calls", res, err, p.calls())
	}
	if b2, _ := get(t, f.pool, f.jump, "cpu_percent"); !b2.updated.Equal(now) {
		t.Fatalf("rewritten in the same hour: %v", b2.updated)
	}

	// Next hour, the same drift goes on: recomputed, no new call, explanation kept.
	next := now.Add(time.Hour)
	lastHour(t, f.pool, f.jump, now.Truncate(time.Hour), 90)
	lastHour(t, f.pool, f.steady, now.Truncate(time.Hour), 20)
	if err := (rollup.Refresher{Pool: f.pool, Mode: migrate.ModePostgres}).Job(ctx, next); err != nil {
		t.Fatal(err)
	}
	res, err = drift.Run(ctx, p.deps(f.pool, 20), next)
	if err != nil || res.Machines != 3 || res.Triggers != 0 || p.calls() != 1 {
		t.Fatalf("next hour: %+v %v, %d calls", res, err, p.calls())
	}
	if b3, _ := get(t, f.pool, f.jump, "cpu_percent"); !b3.detected || *b3.severity != "critical" || *b3.explain != *b.explain || !b3.updated.Equal(next) {
		t.Fatalf("next hour jump: %+v", b3)
	}
	if n := count(t, f.pool, `SELECT count(*) FROM ai_trigger_history`); n != 1 {
		t.Fatalf("%d triggers after three runs", n)
	}
}

func TestCriticalDriftExplainedByTheTemplate(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	res, err := drift.Run(context.Background(), drift.Deps{Pool: f.pool, Logger: testenv.Discard()}, now)
	if err != nil || res.Triggers != 1 || res.AICalls != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	b, _ := get(t, f.pool, f.jump, "cpu_percent")
	if !b.detected || *b.severity != "critical" || b.explain == nil {
		t.Fatalf("jump: %+v", b)
	}
	// history: 168 hourly averages cycling 19, 19.5, 20, 20.5, 21 (σ ≈ 0.71, floored to 1).
	want := "CPU averaged 90.0 % over the last hour against a 7-day mean of 20.0 % (σ 1.0, p95 21.0 %, 168 hourly averages): 70.0 standard deviations above normal."
	if *b.explain != want {
		t.Fatalf("explanation\n got %q\nwant %q", *b.explain, want)
	}
	if n := count(t, f.pool, `SELECT count(*) FROM ai_trigger_history WHERE details->>'outcome' = 'template'`); n != 1 {
		t.Fatalf("%d template triggers", n)
	}
	if n := count(t, f.pool, `SELECT count(*) FROM ai_analysis_results`); n != 0 {
		t.Fatalf("%d analyses without a provider", n)
	}
	if n := count(t, f.pool, `SELECT count(*) FROM ai_routine_history WHERE status = 'success' AND details->>'provider' = 'false'`); n != 1 {
		t.Fatalf("%d routine rows", n)
	}
}

func TestProviderFailureFallsBackToTheTemplate(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	p := newProvider(t, http.StatusInternalServerError)
	res, err := drift.Run(context.Background(), p.deps(f.pool, 20), now)
	if err != nil || res.AICalls != 1 || res.AIFailures != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	b, _ := get(t, f.pool, f.jump, "cpu_percent")
	if !b.detected || b.explain == nil || !strings.HasPrefix(*b.explain, "CPU averaged 90.0 %") {
		t.Fatalf("jump: %+v", b)
	}
	if n := count(t, f.pool, `SELECT count(*) FROM ai_trigger_history WHERE details->>'outcome' = 'ai_failed'
		AND details->>'error' LIKE '%500%' AND details::text NOT LIKE '%sk-test-key%'`); n != 1 {
		t.Fatalf("%d failed triggers", n)
	}
	if n := count(t, f.pool, `SELECT count(*) FROM ai_routine_history WHERE status = 'failed'`); n != 1 {
		t.Fatalf("%d failed routine rows", n)
	}
}

func TestCallLimitThresholdsAndResumption(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFleet(t)
	// A second jumping machine, and an admin's thresholds on the first one's CPU row.
	other := testenv.Machine(t, f.pool, f.client, "jump-2")
	last := now.Truncate(time.Hour).Add(-time.Hour)
	history(t, f.pool, f.mode, other, last.Add(-drift.Window), last, steady)
	lastHour(t, f.pool, other, last, 90)
	if _, err := f.pool.Exec(ctx, `INSERT INTO metric_baselines (machine_id, metric_type, warning_threshold, critical_threshold, last_updated)
		VALUES ($1, 'cpu_percent', 50, 100, $2)`, f.jump, now.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, http.StatusOK)
	d := p.deps(f.pool, 1)
	d.BatchSize, d.Budget = 1, time.Nanosecond // one machine per run
	var total drift.Result
	for runs := 1; ; runs++ {
		res, err := drift.Run(ctx, d, now)
		if err != nil {
			t.Fatal(err)
		}
		total.Machines += res.Machines
		total.Triggers += res.Triggers
		if res.Complete {
			if runs != 5 || total.Machines != 4 { // 4 live machines, one per run, then nothing left
				t.Fatalf("%d runs, %d machines", runs, total.Machines)
			}
			break
		}
		if res.Machines != 1 || runs > 5 {
			t.Fatalf("run %d: %+v", runs, res)
		}
	}
	// The admin's thresholds stay and make the 70σ jump a warning only.
	b, _ := get(t, f.pool, f.jump, "cpu_percent")
	if b.warning != 50 || b.critical != 100 || !b.detected || *b.severity != "warning" {
		t.Fatalf("thresholds: %+v", b)
	}
	// The budget was spent before any provider call could start: both drifts have the
	// template, recorded as cut by the budget.
	if p.calls() != 0 || total.Triggers != 2 {
		t.Fatalf("%d calls, %d triggers", p.calls(), total.Triggers)
	}
	if n := count(t, f.pool, `SELECT count(*) FROM ai_trigger_history WHERE details->>'outcome' = 'budget'`); n != 2 {
		t.Fatalf("%d triggers cut by the budget", n)
	}

	// The call limit: with 1 call per run and both machines drifting anew in one run, the
	// second gets the template and the run is partial.
	f2 := newFleet(t)
	other2 := testenv.Machine(t, f2.pool, f2.client, "jump-2")
	history(t, f2.pool, f2.mode, other2, last.Add(-drift.Window), last, steady)
	lastHour(t, f2.pool, other2, last, 90)
	p2 := newProvider(t, http.StatusOK)
	res, err := drift.Run(ctx, p2.deps(f2.pool, 1), now)
	if err != nil || res.Triggers != 2 || res.AICalls != 1 || p2.calls() != 1 {
		t.Fatalf("limit: %+v %v", res, err)
	}
	if n := count(t, f2.pool, `SELECT count(*) FROM ai_trigger_history WHERE details->>'outcome' = 'limit'`); n != 1 {
		t.Fatalf("%d limited triggers", n)
	}
	if n := count(t, f2.pool, `SELECT count(*) FROM ai_routine_history WHERE status = 'partial'`); n != 1 {
		t.Fatalf("%d partial routine rows", n)
	}
}

func TestDecide(t *testing.T) {
	m := drift.Metrics()[0]
	f := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		name     string
		s        drift.Stats
		severity string
		z        float64
	}{
		{"too little history", drift.Stats{Points: drift.MinPoints - 1, Mean: f(20), Stddev: f(2), Current: f(90)}, "", 0},
		{"no last hour", drift.Stats{Points: 100, Mean: f(20), Stddev: f(2)}, "", 0},
		{"normal", drift.Stats{Points: 100, Mean: f(20), Stddev: f(2), Current: f(23)}, "", 1.5},
		{"warning", drift.Stats{Points: 100, Mean: f(20), Stddev: f(2), Current: f(24)}, "warning", 2},
		{"critical", drift.Stats{Points: 100, Mean: f(20), Stddev: f(2), Current: f(26)}, "critical", 3},
		{"below", drift.Stats{Points: 100, Mean: f(60), Stddev: f(2), Current: f(50)}, "critical", -5},
		{"flat history", drift.Stats{Points: 100, Mean: f(20), Stddev: f(0), Current: f(22.5)}, "warning", 2.5},
	} {
		v := drift.Decide(c.s, m, 2, 3)
		if v.Severity != c.severity || v.Detected != (c.severity != "") {
			t.Errorf("%s: %+v", c.name, v)
		}
		if c.name != "too little history" && c.name != "no last hour" && (v.Z == nil || *v.Z != c.z) {
			t.Errorf("%s: z %v, want %v", c.name, v.Z, c.z)
		}
	}
	v := drift.Decide(drift.Stats{Points: 100, Mean: f(60), Stddev: f(2), Current: f(50)}, m, 2, 3)
	if got := drift.Template(m, drift.Stats{Points: 100, Mean: f(60), Stddev: f(2), Current: f(50)}, v); !strings.HasSuffix(got, "5.0 standard deviations below normal.") {
		t.Errorf("template %q", got)
	}
}

// The same verdicts in timescale mode, where the cpu and ram baselines come from the
// metrics_hourly continuous aggregate (materialised by refresh_continuous_aggregate) and
// the raw rows are in a compressible hypertable. TimescaleDB's policies measure ages from
// the real clock, so the run's instant is the real current hour.
func TestTimescaleMode(t *testing.T) {
	t.Parallel()
	at := time.Now().UTC().Truncate(time.Hour).Add(5 * time.Minute)
	f := newFleetAt(t, testenv.Timescale(t), migrate.ModeTimescale, at)
	res, err := drift.Run(context.Background(), drift.Deps{Pool: f.pool, Logger: testenv.Discard()}, at)
	if err != nil || res.Machines != 3 || res.Triggers != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	b, _ := get(t, f.pool, f.jump, "cpu_percent")
	want := "CPU averaged 90.0 % over the last hour against a 7-day mean of 20.0 % (σ 1.0, p95 21.0 %, 168 hourly averages): 70.0 standard deviations above normal."
	if !b.detected || *b.severity != "critical" || b.explain == nil || *b.explain != want {
		t.Fatalf("jump: %+v %v", b, b.explain)
	}
	for _, metric := range []string{"cpu_percent", "ram_percent", "disk_latency_ms"} {
		if b, ok := get(t, f.pool, f.steady, metric); !ok || b.detected || b.z == nil {
			t.Fatalf("steady %s: %+v", metric, b)
		}
	}
}
