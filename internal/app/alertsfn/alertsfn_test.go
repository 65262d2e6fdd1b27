package alertsfn_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/alertsfn"
	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/notify"
	"github.com/optralis/optralis/internal/testenv"
	"github.com/optralis/optralis/internal/testenv/smtptest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2027, 3, 1, 2, 0, 0, 0, time.UTC)

// received is one webhook message whose signature verified.
type received struct {
	Events []notify.Event `json:"events"`
}

// The "done when", end to end through the job (evaluation, then notification) run
// every minute against a real PostgreSQL, a real local HTTP receiver that verifies the
// signature and a real SMTP server: a machine that stops sending is reported offline to
// the webhook and by email within grace + 1 minute, exactly once, and resolved once when it
// comes back; a machine in a maintenance window is recorded but not notified; a CPU spike
// shorter than the pending duration sends nothing, a sustained one (oscillating around the
// threshold) one message, without flapping.
func TestOfflineAndCPUAlertsReachWebhookAndMail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	smtp := smtptest.Start(t)
	client := testenv.Client(t, pool, "Pro")
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	web, mu, forged := []received{}, sync.Mutex{}, 0
	const secret = "whsec-test-0123456789"
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if notify.Verify(secret, r.Header.Get(notify.HeaderTimestamp), body, r.Header.Get(notify.HeaderSignature), time.Now(), notify.DefaultTolerance) != nil {
			forged++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m received
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
		}
		web = append(web, m)
	}))
	t.Cleanup(rcv.Close)
	exec(`UPDATE notification_channels SET recipients = '{ops@example.com}' WHERE client_id = $1`, client) // the default email channel
	exec(`INSERT INTO notification_channels (client_id, name, kind, url, secret, created_at, updated_at) VALUES ($1, 'hook', 'webhook', $2, $3, $4, $4)`,
		client, rcv.URL, secret, t0)
	exec(`INSERT INTO alert_rules (client_id, name, kind, metric, threshold, recovery_threshold, pending_seconds, created_at, updated_at)
		VALUES ($1, 'CPU high', 'metric', 'cpu', 90, 80, 300, $2, $2)`, client, t0)
	m1 := testenv.Machine(t, pool, client, "srv-01")
	m2 := testenv.Machine(t, pool, client, "srv-maint")
	exec(`INSERT INTO maintenance_windows (client_id, name, scope_machine_id, starts_at, duration_seconds, created_at, updated_at)
		VALUES ($1, 'patching', $2, $3, 7200, $3, $3)`, client, m2, t0)
	beat := func(m string, at time.Time, cpu float64) {
		exec(`UPDATE machines SET last_seen = $2, heartbeat_due_at = $2::timestamptz + interval '60 seconds', last_metrics_at = $2,
			last_cpu_percent = $3, last_ram_percent = 40 WHERE id = $1`, m, at, cpu)
	}

	core := app.Core{Pool: pool, Logger: testenv.Discard(), Clock: clock.Fixed(t0)}
	job := alertsfn.Job(core, alertsfn.Deps{
		Mailer:        mail.SMTP{Host: smtp.Host, Port: smtp.Port, From: "alerts@optralis.test", Timeout: 5 * time.Second},
		AllowInsecure: true, DashboardURL: "https://dash.example.com",
		Notify: notify.Deps{Timeout: 2 * time.Second, Backoff: 20 * time.Millisecond},
	})
	minute := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	events := func() (out []notify.Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range web {
			out = append(out, m.Events...)
		}
		return out
	}
	// Minutes 0–9: both machines answer; a CPU spike at minutes 2–3 (shorter than 5 min).
	// Minute 10: the last heartbeats (due at 11:00). The job runs at 30 s past each minute.
	var firedAt time.Time
	for n := 0; n <= 25; n++ {
		if n <= 10 {
			cpu := 20.0
			if n == 2 || n == 3 {
				cpu = 97
			}
			beat(m1, minute(n), cpu)
			beat(m2, minute(n), 20)
		}
		if n >= 20 { // srv-01 is back
			beat(m1, minute(n), 20)
		}
		now := minute(n).Add(30 * time.Second)
		if err := job(ctx, now); err != nil {
			t.Fatalf("job at minute %d: %v", n, err)
		}
		if firedAt.IsZero() && len(events()) > 0 {
			firedAt = now
		}
		if n == 9 && len(events()) != 0 {
			t.Fatalf("the 2-minute CPU spike was notified: %+v", events())
		}
	}
	// Offline: due 11:00 + grace 300 s → fired by the run at 16:30, within grace + 60 s.
	due := minute(11)
	if d := firedAt.Sub(due); firedAt.IsZero() || d <= 5*time.Minute || d > 6*time.Minute {
		t.Errorf("offline notified %v after the missed heartbeat, want within (grace, grace + 60 s]", d)
	}
	ev := events()
	var states []string
	for _, e := range ev {
		states = append(states, e.Machine.Hostname+" "+e.Rule.Name+" "+e.State)
		if e.Machine.Hostname == "srv-maint" {
			t.Errorf("a machine in a maintenance window was notified: %+v", e)
		}
	}
	if got := strings.Join(states, "; "); got != "srv-01 Machine offline firing; srv-01 Machine offline resolved" || forged != 0 {
		t.Errorf("webhook events: %s (forged %d)", got, forged)
	}
	// The window's machine is recorded firing, its notification muted.
	var state string
	var muted int
	if err := pool.QueryRow(ctx, `SELECT h.state, (SELECT count(*) FROM notification_history n WHERE n.alert_id = h.id AND n.status = 'muted')
		FROM alert_rule_history h JOIN alert_rules r ON r.id = h.rule_id WHERE h.machine_id = $1 AND r.kind = 'offline'`, m2).Scan(&state, &muted); err != nil {
		t.Fatal(err)
	}
	if state != "firing" || muted == 0 {
		t.Errorf("srv-maint: %s, %d muted rows", state, muted)
	}
	mails := smtp.Wait(2, 5*time.Second)
	if len(mails) != 2 || !strings.Contains(mails[0].Text(), "srv-01") {
		t.Fatalf("mails: %d %+v", len(mails), mails)
	}

	// A sustained CPU breach oscillating between the recovery threshold and the threshold:
	// pending from 26:30; at 31:30 (5 minutes) the value (88) is under the threshold, so it
	// fires at the next run over it, 32:30: one message, no resolution.
	before := len(events())
	for n := 26; n <= 40; n++ {
		cpu := []float64{95, 85, 92, 88}[n%4]
		beat(m1, minute(n), cpu)
		if err := job(ctx, minute(n).Add(30*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	ev = events()[before:]
	if len(ev) != 1 || ev[0].Rule.Name != "CPU high" || ev[0].State != "firing" || !ev[0].TriggeredAt.Equal(minute(32).Add(30*time.Second)) {
		t.Errorf("sustained CPU: %+v", ev)
	}
	if got := len(smtp.Messages()); got != 3 {
		t.Errorf("%d mails in all, want 3 (offline firing, resolved, CPU firing)", got)
	}
}
