package alerteval_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/alerteval"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// fleet is one client with its default rules disabled, so each test states its rules.
type fleet struct {
	t      *testing.T
	pool   *pgxpool.Pool
	client string
}

func newFleet(t *testing.T, pool *pgxpool.Pool) *fleet {
	t.Helper()
	f := &fleet{t: t, pool: pool, client: testenv.Client(t, pool, "Pro")}
	f.exec(`UPDATE alert_rules SET enabled = FALSE WHERE client_id = $1`, f.client)
	return f
}

func (f *fleet) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.pool.Exec(context.Background(), sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

// rule inserts a rule of the client; cols are extra column = value pairs.
func (f *fleet) rule(kind string, cols map[string]any) string {
	f.t.Helper()
	names, vals, args := "client_id, name, kind, created_at, updated_at", "$1, $2, $3, $4, $4", []any{f.client, kind + " rule", kind, t0}
	for k, v := range cols {
		args = append(args, v)
		names += ", " + k
		vals += fmt.Sprintf(", $%d", len(args))
	}
	var id string
	if err := f.pool.QueryRow(context.Background(), `INSERT INTO alert_rules (`+names+`) VALUES (`+vals+`) RETURNING id`, args...).Scan(&id); err != nil {
		f.t.Fatalf("rule %s: %v", kind, err)
	}
	return id
}

func (f *fleet) machine(name string) string { return testenv.Machine(f.t, f.pool, f.client, name) }

// beat records a heartbeat at `at` as the heartbeat does: due one interval later, with the
// CPU/RAM of that heartbeat and its metrics row.
func (f *fleet) beat(m string, at time.Time, cpu, ram float64) {
	f.t.Helper()
	f.exec(`UPDATE machines SET last_seen = $2, heartbeat_due_at = $2::timestamptz + interval '60 seconds', last_metrics_at = $2,
		last_cpu_percent = $3, last_ram_percent = $4 WHERE id = $1`, m, at, cpu, ram)
	f.exec(`INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent, cpu_temp, packet_loss, latency_ms)
		VALUES ($1, $2, $3, $4, 50, 0, 20) ON CONFLICT DO NOTHING`, m, at, cpu, ram)
}

func run(t *testing.T, pool *pgxpool.Pool, now time.Time) alerteval.Result {
	t.Helper()
	res, err := alerteval.Run(context.Background(), alerteval.Deps{Pool: pool, Logger: testenv.Discard()}, now)
	if err != nil {
		t.Fatalf("run at %s: %v", now.Format(time.TimeOnly), err)
	}
	return res
}

type episode struct {
	State                        string
	Started, Triggered, Resolved *time.Time
	LastValue                    *float64
	Details                      map[string]any
	Message                      string
}

func episodes(t *testing.T, pool *pgxpool.Pool, rule, machine string) []episode {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT state, started_at, triggered_at, resolved_at, last_value, details, message
		FROM alert_rule_history WHERE rule_id = $1 AND machine_id = $2 ORDER BY started_at, id`, rule, machine)
	if err != nil {
		t.Fatal(err)
	}
	eps, err := pgx.CollectRows(rows, pgx.RowToStructByPos[episode])
	if err != nil {
		t.Fatal(err)
	}
	return eps
}

// states summarises episodes as "pending", "firing", "resolved" in order.
func states(eps []episode) string {
	s := ""
	for i, e := range eps {
		if i > 0 {
			s += ","
		}
		s += e.State
	}
	return s
}

func want(t *testing.T, what string, got []episode, w string) {
	t.Helper()
	if states(got) != w {
		t.Fatalf("%s: episodes %q, want %q (%+v)", what, states(got), w, got)
	}
}

// Offline: precise to the interval the server answered. The machine's heartbeat was due at
// t0+60 s; with 300 s of grace it is offline strictly after t0+360 s; it resolves at the
// first run after it is back. A machine never seen raises nothing; a deleted one neither.
func TestOfflineFiresAfterGraceAndResolvesOnce(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	f := newFleet(t, pool)
	r := f.rule("offline", map[string]any{"grace_seconds": 300, "severity": "critical"})
	m := f.machine("srv")
	never := f.machine("never-seen")
	f.beat(m, t0, 10, 10)

	if res := run(t, pool, t0.Add(360*time.Second)); res.Fired != 0 || res.Evaluated != 2 {
		t.Fatalf("at due+grace: %+v", res)
	}
	want(t, "at due+grace", episodes(t, pool, r, m), "")
	res := run(t, pool, t0.Add(361*time.Second))
	if res.Fired != 1 {
		t.Fatalf("just after due+grace: %+v", res)
	}
	eps := episodes(t, pool, r, m)
	want(t, "offline", eps, "firing")
	if !eps[0].Triggered.Equal(t0.Add(361*time.Second)) || *eps[0].LastValue != 301 || eps[0].Details["due_at"] == nil {
		t.Errorf("episode: %+v", eps[0])
	}
	run(t, pool, t0.Add(10*time.Minute))
	want(t, "still offline", episodes(t, pool, r, m), "firing")
	want(t, "never seen", episodes(t, pool, r, never), "")

	f.beat(m, t0.Add(11*time.Minute), 10, 10)
	if res := run(t, pool, t0.Add(11*time.Minute+5*time.Second)); res.Resolved != 1 {
		t.Fatalf("back: %+v", res)
	}
	eps = episodes(t, pool, r, m)
	want(t, "back", eps, "resolved")
	if !eps[0].Resolved.Equal(t0.Add(11*time.Minute + 5*time.Second)) {
		t.Errorf("resolved at %v", eps[0].Resolved)
	}
	run(t, pool, t0.Add(12*time.Minute))
	want(t, "back, next run", episodes(t, pool, r, m), "resolved")

	// A deleted machine is never offline; its open episode is closed.
	d := f.machine("to-delete")
	f.beat(d, t0, 1, 1)
	run(t, pool, t0.Add(20*time.Minute))
	want(t, "before delete", episodes(t, pool, r, d), "firing")
	f.exec(`UPDATE machines SET deleted_at = $2 WHERE id = $1`, d, t0.Add(21*time.Minute))
	if res := run(t, pool, t0.Add(22*time.Minute)); res.Closed != 1 {
		t.Errorf("deleted machine: %+v", res)
	}
	eps = episodes(t, pool, r, d)
	want(t, "deleted", eps, "resolved")
	if eps[0].Details["closed"] == nil {
		t.Errorf("closed episode details: %v", eps[0].Details)
	}
	run(t, pool, t0.Add(30*time.Minute))
	want(t, "deleted, later", episodes(t, pool, r, d), "resolved")
}

// A CPU spike shorter than the pending duration leaves nothing; a sustained one fires once.
func TestPendingDuration(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	f := newFleet(t, pool)
	r := f.rule("metric", map[string]any{"metric": "cpu", "threshold": 90, "pending_seconds": 300})
	m := f.machine("web")
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

	f.beat(m, at(0), 95, 40)
	if res := run(t, pool, at(0).Add(time.Second)); res.Pending != 1 || res.Fired != 0 {
		t.Fatalf("spike start: %+v", res)
	}
	f.beat(m, at(2), 97, 40)
	run(t, pool, at(2).Add(time.Second))
	want(t, "spike held 2 min", episodes(t, pool, r, m), "pending")
	f.beat(m, at(3), 20, 40)
	if res := run(t, pool, at(3).Add(time.Second)); res.Cleared != 1 {
		t.Fatalf("spike over: %+v", res)
	}
	want(t, "spike shorter than pending", episodes(t, pool, r, m), "")

	// Sustained from minute 10: pending until 10+5 min, firing from then on, once.
	fired := 0
	for min := 10; min <= 20; min++ {
		f.beat(m, at(min), 96, 40)
		res := run(t, pool, at(min).Add(time.Second))
		fired += res.Fired
		eps := episodes(t, pool, r, m)
		w := "pending"
		if min >= 15 {
			w = "firing"
		}
		want(t, fmt.Sprintf("sustained, minute %d", min), eps, w)
		if min >= 15 && !eps[0].Triggered.Equal(at(15).Add(time.Second)) {
			t.Fatalf("triggered at %v", eps[0].Triggered)
		}
	}
	if fired != 1 {
		t.Errorf("fired %d times", fired)
	}
}

// Hysteresis: fire at ≥ 90, resolve below 80; values between keep the state, so an
// oscillation around the threshold does not flap. min_firing_seconds holds a firing alert.
func TestHysteresisAndMinFiring(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	f := newFleet(t, pool)
	r := f.rule("metric", map[string]any{"metric": "ram", "threshold": 90, "recovery_threshold": 80, "min_firing_seconds": 600})
	m := f.machine("db")
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

	// Between the thresholds with nothing open: nothing opens.
	f.beat(m, at(0), 10, 85)
	run(t, pool, at(0).Add(time.Second))
	want(t, "between, nothing open", episodes(t, pool, r, m), "")

	var fired, resolved int
	for i, v := range []float64{91, 89, 92, 85, 90, 88, 91, 82} { // oscillating around 90, never below 80
		f.beat(m, at(1+i), 10, v)
		res := run(t, pool, at(1+i).Add(time.Second))
		fired, resolved = fired+res.Fired, resolved+res.Resolved
	}
	want(t, "oscillation", episodes(t, pool, r, m), "firing")
	if fired != 1 || resolved != 0 {
		t.Errorf("oscillation: fired %d resolved %d", fired, resolved)
	}
	// Below recovery 9 minutes after firing (min_firing 10 min): still firing.
	f.beat(m, at(9).Add(time.Second), 10, 50)
	run(t, pool, at(10))
	want(t, "below recovery before min firing", episodes(t, pool, r, m), "firing")
	// 10 minutes after it fired: resolved.
	f.beat(m, at(11), 10, 50)
	if res := run(t, pool, at(11).Add(time.Second)); res.Resolved != 1 {
		t.Fatalf("after min firing: %+v", res)
	}
	want(t, "resolved", episodes(t, pool, r, m), "resolved")
	// A new breach opens a new episode.
	f.beat(m, at(12), 10, 95)
	run(t, pool, at(12).Add(time.Second))
	want(t, "again", episodes(t, pool, r, m), "resolved,firing")
}

// A metric of a machine that stopped answering neither opens nor resolves: the firing CPU
// alert of an offline machine keeps firing until fresh data says otherwise.
func TestStaleMetricsKeepTheirState(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	f := newFleet(t, pool)
	cpu := f.rule("metric", map[string]any{"metric": "cpu", "threshold": 90})
	m := f.machine("a")
	f.beat(m, t0, 99, 10)
	run(t, pool, t0.Add(time.Second))
	want(t, "fired", episodes(t, pool, cpu, m), "firing")
	// Offline (online until due + 60 s = t0+120 s): a lower CPU written by hand is ignored.
	f.exec(`UPDATE machines SET last_cpu_percent = 5 WHERE id = $1`, m)
	run(t, pool, t0.Add(5*time.Minute))
	want(t, "offline", episodes(t, pool, cpu, m), "firing")
	f.beat(m, t0.Add(6*time.Minute), 5, 10)
	run(t, pool, t0.Add(6*time.Minute+time.Second))
	want(t, "back, low", episodes(t, pool, cpu, m), "resolved")
	// A machine that never sent metrics: nothing.
	n := f.machine("b")
	f.exec(`UPDATE machines SET last_seen = $2, heartbeat_due_at = $2::timestamptz + interval '60 seconds' WHERE id = $1`, n, t0.Add(7*time.Minute))
	run(t, pool, t0.Add(7*time.Minute+time.Second))
	want(t, "no metrics", episodes(t, pool, cpu, n), "")
}

// Every other kind fires on its data and resolves when the data clears.
func TestEveryKindFiresAndResolves(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	f := newFleet(t, pool)
	m := f.machine("host")
	now := t0
	step := func() {
		now = now.Add(time.Minute)
		f.beat(m, now, 10, 10)
		run(t, pool, now.Add(time.Second))
	}

	disk := f.rule("metric", map[string]any{"metric": "disk", "threshold": 90, "recovery_threshold": 85})
	temp := f.rule("metric", map[string]any{"metric": "cpu_temp", "threshold": 80})
	loss := f.rule("metric", map[string]any{"metric": "packet_loss", "threshold": 5})
	lat := f.rule("metric", map[string]any{"metric": "latency", "threshold": 200})
	smart := f.rule("smart", nil)
	svc := f.rule("service", map[string]any{"service_pattern": "sql*"})
	cert := f.rule("certificate", map[string]any{"days": 14})
	upd := f.rule("updates", map[string]any{"days": 1})
	reboot := f.rule("reboot", map[string]any{"days": 0})
	drift := f.rule("drift", nil)

	step() // the machine answers; nothing is known yet for most kinds
	for _, r := range []string{disk, temp, loss, lat, smart, svc, cert, upd, reboot, drift} {
		want(t, "no data", episodes(t, pool, r, m), "")
	}
	// Bad data for each kind.
	now = now.Add(time.Minute)
	f.beat(m, now, 10, 10)
	f.exec(`UPDATE metrics SET cpu_temp = 85, packet_loss = 7.5, latency_ms = 250 WHERE machine_id = $1 AND recorded_at = $2`, m, now)
	f.exec(`INSERT INTO disk_info (machine_id, recorded_at, mount_point, used_percent) VALUES ($1, $2, '/', 50), ($1, $2, '/data', 93.5)`, m, now)
	f.exec(`INSERT INTO smart_data (machine_id, recorded_at, device, health_status) VALUES ($1, $2, 'sda', 'passed'), ($1, $2, 'sdb', 'failed')`, m, now)
	f.exec(`INSERT INTO machine_inventory (machine_id, failed_services, security_updates, reboot_required, updated_at)
		VALUES ($1, '[{"name": "SQLServer", "status": "failed"}, {"name": "Spooler", "status": "failed"}]', 3, TRUE, $2)`, m, now)
	f.exec(`INSERT INTO client_certificates (client_id, machine_id, serial, issued_at, expires_at) VALUES ($1, $2, 'aa01', $3, $4)`,
		f.client, m, now.Add(-350*24*time.Hour), now.Add(10*24*time.Hour))
	f.exec(`INSERT INTO metric_baselines (machine_id, metric_type, z_score, drift_detected, drift_severity, last_updated)
		VALUES ($1, 'cpu_percent', 4.2, TRUE, 'critical', $2), ($1, 'ram_percent', 2.1, TRUE, 'warning', $2)`, m, now)
	run(t, pool, now.Add(time.Second))
	for name, r := range map[string]string{"disk": disk, "temp": temp, "loss": loss, "latency": lat, "smart": smart,
		"service": svc, "certificate": cert, "reboot": reboot, "drift": drift} {
		want(t, name+" bad", episodes(t, pool, r, m), "firing")
	}
	want(t, "updates for less than a day", episodes(t, pool, upd, m), "pending")
	if e := episodes(t, pool, disk, m)[0]; *e.LastValue != 93.5 || e.Details["mount_point"] != "/data" {
		t.Errorf("disk episode: %+v", e)
	}
	if e := episodes(t, pool, svc, m)[0]; fmt.Sprint(e.Details["services"]) != "[SQLServer]" {
		t.Errorf("service episode: %+v", e)
	}
	if e := episodes(t, pool, smart, m)[0]; fmt.Sprint(e.Details["devices"]) != "[sdb]" {
		t.Errorf("smart episode: %+v", e)
	}
	if e := episodes(t, pool, cert, m)[0]; e.Details["status"] != "expiring" || *e.LastValue != 10 {
		t.Errorf("certificate episode: %+v", e)
	}
	// Updates pending for a whole day: firing.
	now = now.Add(24 * time.Hour)
	f.beat(m, now, 10, 10)
	run(t, pool, now.Add(time.Second))
	want(t, "updates for a day", episodes(t, pool, upd, m), "firing")

	// Everything clears.
	now = now.Add(time.Minute)
	f.beat(m, now, 10, 10)
	f.exec(`INSERT INTO disk_info (machine_id, recorded_at, mount_point, used_percent) VALUES ($1, $2, '/', 50), ($1, $2, '/data', 84)`, m, now)
	f.exec(`INSERT INTO smart_data (machine_id, recorded_at, device, health_status) VALUES ($1, $2, 'sdb', 'passed')`, m, now)
	f.exec(`UPDATE machine_inventory SET failed_services = '[{"name": "Spooler", "status": "failed"}]', security_updates = 0, reboot_required = FALSE WHERE machine_id = $1`, m)
	f.exec(`UPDATE client_certificates SET revoked_at = $2, revocation_reason = 'superseded' WHERE machine_id = $1`, m, now)
	f.exec(`INSERT INTO client_certificates (client_id, machine_id, serial, issued_at, expires_at) VALUES ($1, $2, 'aa02', $3, $4)`,
		f.client, m, now, now.Add(365*24*time.Hour))
	f.exec(`UPDATE metric_baselines SET drift_detected = FALSE, drift_severity = NULL WHERE machine_id = $1`, m)
	run(t, pool, now.Add(time.Second))
	for name, r := range map[string]string{"disk": disk, "temp": temp, "loss": loss, "latency": lat, "smart": smart,
		"service": svc, "certificate": cert, "updates": upd, "reboot": reboot, "drift": drift} {
		want(t, name+" cleared", episodes(t, pool, r, m), "resolved")
	}

	// Revoked without a successor, and expired: the certificate rule fires again.
	f.exec(`UPDATE client_certificates SET revoked_at = $2, revocation_reason = 'compromised' WHERE machine_id = $1 AND revoked_at IS NULL`, m, now)
	step()
	eps := episodes(t, pool, cert, m)
	want(t, "revoked", eps, "resolved,firing")
	if eps[1].Details["status"] != "revoked" {
		t.Errorf("revoked: %+v", eps[1])
	}
}

// Scope: all machines, one group, one machine; a disabled rule and a disabled client
// evaluate nothing, and another client's machines are never in a rule's scope.
func TestScopes(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	f := newFleet(t, pool)
	other := newFleet(t, pool)
	a, b, c := f.machine("a"), f.machine("b"), f.machine("c")
	x := other.machine("x")
	var group string
	if err := pool.QueryRow(context.Background(), `INSERT INTO machine_groups (client_id, name, created_at, updated_at) VALUES ($1, 'prod', $2, $2) RETURNING id`,
		f.client, t0).Scan(&group); err != nil {
		t.Fatal(err)
	}
	f.exec(`INSERT INTO machine_group_members (client_id, machine_id, group_id, created_at) VALUES ($1, $2, $3, $4)`, f.client, b, group, t0)
	all := f.rule("metric", map[string]any{"metric": "cpu", "threshold": 50})
	grp := f.rule("metric", map[string]any{"metric": "cpu", "threshold": 50, "scope_group_id": group})
	one := f.rule("metric", map[string]any{"metric": "cpu", "threshold": 50, "scope_machine_id": c})
	off := f.rule("metric", map[string]any{"metric": "cpu", "threshold": 50, "enabled": false})
	for _, m := range []string{a, b, c, x} {
		f.beat(m, t0, 99, 10)
	}
	run(t, pool, t0.Add(time.Second))
	for _, c := range []struct {
		rule, machine, want string
	}{
		{all, a, "firing"}, {all, b, "firing"}, {all, c, "firing"}, {all, x, ""},
		{grp, a, ""}, {grp, b, "firing"}, {grp, c, ""},
		{one, a, ""}, {one, b, ""}, {one, c, "firing"},
		{off, a, ""}, {off, b, ""},
	} {
		want(t, "scope", episodes(t, pool, c.rule, c.machine), c.want)
	}
	// b leaves the group: its group episode closes. Disabling a rule closes its episodes.
	f.exec(`DELETE FROM machine_group_members WHERE machine_id = $1`, b)
	f.exec(`UPDATE alert_rules SET enabled = FALSE WHERE id = $1`, one)
	for _, m := range []string{a, b, c} {
		f.beat(m, t0.Add(time.Minute), 99, 10)
	}
	if res := run(t, pool, t0.Add(time.Minute+time.Second)); res.Closed != 2 {
		t.Errorf("closed %+v", res)
	}
	want(t, "left group", episodes(t, pool, grp, b), "resolved")
	want(t, "rule disabled", episodes(t, pool, one, c), "resolved")
	want(t, "all, unchanged", episodes(t, pool, all, a), "firing")
	// A disabled client is not evaluated: its episodes close.
	f.exec(`UPDATE clients SET is_active = FALSE WHERE id = $1`, f.client)
	run(t, pool, t0.Add(2*time.Minute))
	want(t, "client disabled", episodes(t, pool, all, a), "resolved")
}

// Runs at once open one episode: the run row serialises them, the runs at an instant
// already evaluated are skipped, and the unique open-episode index would refuse a second.
func TestConcurrentRunsOpenOneEpisode(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	f := newFleet(t, pool)
	r := f.rule("metric", map[string]any{"metric": "cpu", "threshold": 50})
	var ms []string
	for i := range 20 {
		m := f.machine(fmt.Sprintf("m%d", i))
		f.beat(m, t0, 99, 10)
		ms = append(ms, m)
	}
	big := testenv.Pool(t, pool.Config().ConnString(), db.Profile{MaxConns: 8, MaxConnLifetime: time.Hour, MaxConnIdleTime: time.Minute})
	var wg sync.WaitGroup
	var fired, skipped atomic.Int64
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := alerteval.Run(context.Background(), alerteval.Deps{Pool: big}, t0.Add(time.Duration(1+i%2)*time.Second))
			if err != nil {
				t.Error(err)
			}
			fired.Add(int64(res.Fired))
			if res.Skipped {
				skipped.Add(1)
			}
		}()
	}
	wg.Wait()
	if fired.Load() != 20 || skipped.Load() < 4 {
		t.Errorf("fired %d in all, want 20; %d runs skipped, want at least 4 of 6 (two instants)", fired.Load(), skipped.Load())
	}
	for _, m := range ms {
		want(t, "concurrent", episodes(t, pool, r, m), "firing")
	}
}

// counter counts the statements a pool sends (BEGIN and COMMIT included).
type counter struct{ n atomic.Int64 }

func (c *counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *counter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// The number of statements of a run does not depend on the fleet: the same for 10 and
// 1,000 machines, with episodes opening, firing, resolving and clearing.
func TestStatementCountIsConstant(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	count := func(machines int, start time.Time) []int64 {
		f := newFleet(t, pool)
		f.exec(`UPDATE alert_rules SET enabled = TRUE WHERE client_id = $1`, f.client) // the 4 defaults
		f.rule("metric", map[string]any{"metric": "cpu", "threshold": 90, "pending_seconds": 120})
		f.exec(`INSERT INTO machines (client_id, hostname, last_seen, heartbeat_due_at, last_metrics_at, last_cpu_percent, last_ram_percent)
			SELECT $1, 'h' || g, $2, $2::timestamptz + interval '60 seconds', $2, (g % 100), 50 FROM generate_series(1, $3) g`, f.client, start, machines)
		f.exec(`INSERT INTO disk_info (machine_id, recorded_at, mount_point, used_percent)
			SELECT id, $2, '/', (random() * 100)::numeric(5, 2) FROM machines WHERE client_id = $1`, f.client, start)
		cfg, err := db.Config(pool.Config().ConnString(), db.ToolProfile())
		if err != nil {
			t.Fatal(err)
		}
		c := &counter{}
		cfg.ConnConfig.Tracer = c
		traced, err := db.Open(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer traced.Close()
		// Isolate the client: the other fleet's rules are disabled while this one runs.
		var per []int64
		for i, now := range []time.Time{start.Add(time.Second), start.Add(3 * time.Minute), start.Add(4 * time.Minute)} {
			if i == 1 { // the fleet goes offline halfway, CPU episodes keep their state
				f.exec(`UPDATE machines SET last_cpu_percent = 10 WHERE client_id = $1`, f.client)
			}
			before := c.n.Load()
			res, err := alerteval.Run(context.Background(), alerteval.Deps{Pool: traced}, now)
			if err != nil {
				t.Fatal(err)
			}
			if res.Evaluated < 5*machines {
				t.Fatalf("evaluated %d for %d machines", res.Evaluated, machines)
			}
			per = append(per, c.n.Load()-before)
		}
		f.exec(`UPDATE alert_rules SET enabled = FALSE WHERE client_id = $1`, f.client)
		return per
	}
	small, large := count(10, t0), count(1000, t0.Add(time.Hour))
	for i := range small {
		if small[i] != large[i] || small[i] != alerteval.Statements+2 {
			t.Errorf("run %d: %d statements for 10 machines, %d for 1,000, want %d", i, small[i], large[i], alerteval.Statements+2)
		}
	}
}

// A service pattern is a glob: * and ? are wildcards, every other character (% and _
// included) is itself, and case does not matter.
func TestServicePatternIsAGlob(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	f := newFleet(t, pool)
	m := f.machine("svc")
	f.beat(m, t0, 10, 10)
	now := t0
	f.exec(`INSERT INTO machine_inventory (machine_id, failed_services, updated_at)
		VALUES ($1, '[{"name": "myXsvc"}, {"name": "my_svc2"}, {"name": "100%svc"}, {"name": "W32Time", "display_name": "Windows Time"}]', $2)`, m, t0)
	for pattern, w := range map[string]string{
		"my_svc": "", "my_svc?": "[my_svc2]", "MY_SVC*": "[my_svc2]", "100%*": "[100%svc]", "1_0*": "",
		"windows time": "[W32Time]", "*svc*": "[100%svc myXsvc my_svc2]", "nothing*": "",
	} {
		r := f.rule("service", map[string]any{"service_pattern": pattern})
		now = now.Add(time.Second)
		run(t, pool, now)
		eps := episodes(t, pool, r, m)
		got := ""
		if len(eps) > 0 {
			var names []string
			for _, n := range eps[0].Details["services"].([]any) {
				names = append(names, n.(string))
			}
			slices.Sort(names) // the database's collation orders them its way
			got = fmt.Sprint(names)
		}
		if got != w {
			t.Errorf("pattern %q matched %q, want %q", pattern, got, w)
		}
		f.exec(`UPDATE alert_rules SET enabled = FALSE WHERE id = $1`, r)
	}
}

// In timescale mode (hypertables, compression) the evaluation reads the series the same.
func TestTimescaleModeEvaluatesTheSeries(t *testing.T) {
	t.Parallel()
	pool := testenv.Timescale(t)
	f := newFleet(t, pool)
	m := f.machine("ts")
	disk := f.rule("metric", map[string]any{"metric": "disk", "threshold": 90})
	temp := f.rule("metric", map[string]any{"metric": "cpu_temp", "threshold": 45})
	smart := f.rule("smart", nil)
	f.beat(m, t0, 10, 10) // cpu_temp 50
	f.exec(`INSERT INTO disk_info (machine_id, recorded_at, mount_point, used_percent) VALUES ($1, $2, '/', 95), ($1, $3, '/', 50)`,
		m, t0.Add(-10*time.Minute), t0.Add(-2*time.Hour))
	f.exec(`INSERT INTO smart_data (machine_id, recorded_at, device, health_status) VALUES ($1, $2, 'sda', 'failed')`, m, t0.Add(-time.Hour))
	run(t, pool, t0.Add(time.Second))
	for name, r := range map[string]string{"disk": disk, "cpu_temp": temp, "smart": smart} {
		want(t, name, episodes(t, pool, r, m), "firing")
	}
}

// A run at an instant not after the latest run's (an EventBridge retry carries its original
// time) evaluates nothing: a stale instant would resolve the offline alert a later run
// fired, and the next run would fire it again.
func TestStaleRunIsSkipped(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	f := newFleet(t, pool)
	r := f.rule("offline", map[string]any{"grace_seconds": 300})
	m := f.machine("srv")
	f.beat(m, t0, 10, 10)
	if res := run(t, pool, t0.Add(7*time.Minute)); res.Fired != 1 || res.Skipped {
		t.Fatalf("offline: %+v", res)
	}
	for _, at := range []time.Time{t0.Add(2 * time.Minute), t0.Add(7 * time.Minute)} {
		if res := run(t, pool, at); !res.Skipped || res.Evaluated != 0 {
			t.Errorf("run at %s after the run at +7 min: %+v, want skipped", at.Format(time.TimeOnly), res)
		}
	}
	want(t, "after stale runs", episodes(t, pool, r, m), "firing")
	if res := run(t, pool, t0.Add(8*time.Minute)); res.Skipped || res.Evaluated != 1 {
		t.Errorf("next run: %+v", res)
	}
}
