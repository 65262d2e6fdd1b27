package retention_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/retention"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestStopAt(t *testing.T) {
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	if got := retention.StopAt(context.Background(), start); !got.Equal(start.Add(retention.DefaultBudget)) {
		t.Errorf("without a deadline: %v", got)
	}
	deadline := start.Add(5 * time.Minute) // the cleanup Lambda's timeout
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if got := retention.StopAt(ctx, start); !got.Equal(deadline.Add(-retention.Margin)) || !got.After(start) {
		t.Errorf("with a deadline: %v", got)
	}
}

// A backlog is deleted in slices (here an hour each) under a budget: a run out of time
// stops before its first statement and deletes nothing, the next one deletes exactly the
// rows past the limit; history tables go in batches.
func TestSlicesBatchesAndBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	client := testenv.Client(t, pool, "Trial")
	other := testenv.Client(t, pool, "Trial")
	m := testenv.Machine(t, pool, client, "a")
	o := testenv.Machine(t, pool, other, "b")
	now := time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC)
	// 10 days of one row every 20 minutes for each machine: 3 days (216 rows) past 7 days.
	for _, id := range []string{m, o} {
		if _, err := pool.Exec(ctx, `INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent)
			SELECT $1, g, 1, 1 FROM generate_series($2::timestamptz - INTERVAL '10 days', $2::timestamptz - INTERVAL '20 minutes', INTERVAL '20 minutes') g`, id, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO notification_history (client_id, notification_type, sent_at)
		SELECT $1, 'test', $2::timestamptz - INTERVAL '40 days' FROM generate_series(1, 7)`, client, now); err != nil {
		t.Fatal(err)
	}
	c := retention.Cleaner{Pool: pool, Mode: migrate.ModePostgres, Logger: testenv.Discard(), Slice: time.Hour, Batch: 3,
		StopAt: time.Now().Add(-time.Second)}
	if del, err := c.CleanupOldData(ctx, now); !errors.Is(err, retention.ErrOutOfTime) || len(del) != 0 {
		t.Fatalf("out of time: %v, %v", del, err)
	}
	if _, err := c.CleanupSecondaryTables(ctx, now); !errors.Is(err, retention.ErrOutOfTime) {
		t.Fatalf("out of time: %v", err)
	}
	c.StopAt = time.Time{}
	del, err := c.CleanupOldData(ctx, now)
	if err != nil || del["metrics"] != 2*216 {
		t.Fatalf("deleted %v, %v; want 432 metrics", del, err)
	}
	for _, id := range []string{m, o} {
		var left, old int
		if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE recorded_at < $2) FROM metrics WHERE machine_id = $1`,
			id, now.Add(-7*24*time.Hour)).Scan(&left, &old); err != nil || left != 7*72 || old != 0 {
			t.Fatalf("%d rows left, %d old (%v)", left, old, err)
		}
	}
	del, err = c.CleanupSecondaryTables(ctx, now)
	if err != nil || del["notification_history"] != 7 {
		t.Fatalf("history: %v, %v", del, err)
	}
}

// A slice the statement timeout cuts is halved down to a minute; a client whose rows stay
// locked fails the run without holding the other clients back.
func TestStatementTimeoutHalvesTheSliceAndSparesOtherClients(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	now := time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC)
	var machines, clients []string
	for _, name := range []string{"a", "b"} {
		cl := testenv.Client(t, pool, "Trial")
		m := testenv.Machine(t, pool, cl, name)
		machines, clients = append(machines, m), append(clients, cl)
		if _, err := pool.Exec(ctx, `INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent)
			VALUES ($1, $2::timestamptz - INTERVAL '8 days', 1, 1)`, m, now); err != nil {
			t.Fatal(err)
		}
	}
	// Clients are cleaned in id order: lock the first one's old row for the whole run.
	if clients[1] < clients[0] {
		machines[0], machines[1] = machines[1], machines[0]
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM metrics WHERE machine_id = $1 FOR UPDATE`, machines[0]); err != nil {
		t.Fatal(err)
	}
	cfg := pool.Config().Copy()
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = "100"
	short, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	c := retention.Cleaner{Pool: short, Mode: migrate.ModePostgres, Logger: testenv.Discard()}
	del, err := c.CleanupOldData(ctx, now)
	if err == nil || db.Code(err) != db.QueryCanceled {
		t.Fatalf("run error %v, want the statement timeout", err)
	}
	if del["metrics"] != 1 {
		t.Fatalf("deleted %v: the other client's row should be gone", del)
	}
	var left int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM metrics WHERE machine_id = $1`, machines[1]).Scan(&left); err != nil || left != 0 {
		t.Fatalf("free client: %d rows left (%v)", left, err)
	}
}

// Alert episodes go 90 days after they resolved; open ones (firing, pending) stay however
// old they are, and rows the evaluation never opened go by triggered_at.
func TestAlertHistoryKeepsOpenEpisodes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	client := testenv.Client(t, pool, "Pro")
	m := testenv.Machine(t, pool, client, "a")
	now := time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC)
	day := 24 * time.Hour
	var rules []string
	rows, err := pool.Query(ctx, `SELECT id FROM alert_rules WHERE client_id = $1 ORDER BY name`, client)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		rules = append(rules, id)
	}
	if rows.Err() != nil || len(rules) < 4 {
		t.Fatalf("default rules: %v %v", rules, rows.Err())
	}
	ins := func(name string, rule any, state string, started, triggered, resolved *time.Time) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO alert_rule_history (client_id, machine_id, rule_id, rule_name, metric_type, severity,
			state, started_at, triggered_at, resolved_at) VALUES ($1, $2, $3, $4, 'offline', 'warning', $5, $6, $7, $8)`,
			client, m, rule, name, state, started, triggered, resolved); err != nil {
			t.Fatal(err)
		}
	}
	ago := func(d int) *time.Time { v := now.Add(-time.Duration(d) * day); return &v }
	ins("firing for 200 days", rules[0], "firing", ago(200), ago(200), nil)
	ins("pending for 200 days", rules[1], "pending", ago(200), nil, nil)
	ins("resolved 100 days ago", rules[2], "resolved", ago(200), ago(200), ago(100))
	ins("resolved 10 days ago", rules[2], "resolved", ago(200), ago(200), ago(10))
	ins("legacy, 100 days", nil, "firing", nil, ago(100), nil)
	ins("legacy, 10 days", nil, "firing", nil, ago(10), nil)
	c := retention.Cleaner{Pool: pool, Mode: migrate.ModePostgres, Logger: testenv.Discard(), Batch: 2}
	del, err := c.CleanupSecondaryTables(ctx, now)
	if err != nil || del["alert_rule_history"] != 2 {
		t.Fatalf("deleted %v, %v; want 2 alert episodes", del, err)
	}
	var left []string
	rows, err = pool.Query(ctx, `SELECT rule_name FROM alert_rule_history ORDER BY rule_name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		left = append(left, n)
	}
	if got := strings.Join(left, "; "); got != "firing for 200 days; legacy, 10 days; pending for 200 days; resolved 10 days ago" {
		t.Errorf("left: %s", got)
	}
}
