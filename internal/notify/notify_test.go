package notify_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/notify"
	"github.com/optralis/optralis/internal/testenv"
	"github.com/optralis/optralis/internal/testenv/smtptest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// t0 is the tests' instant (the run's now and the signing clock).
var t0 = time.Date(2027, 2, 3, 3, 0, 0, 0, time.UTC)

// receiver is a real local HTTP server that records what it received. Its behaviour is
// chosen per request by respond (nil: 200).
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
	at      []time.Time
	respond func(n int, r *http.Request, body []byte) int
	calls   atomic.Int32
}

func newReceiver(t *testing.T, respond func(n int, r *http.Request, body []byte) int) *receiver {
	rc := &receiver{respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(rc.calls.Add(1))
		body, _ := io.ReadAll(r.Body)
		code := 200
		if rc.respond != nil {
			code = rc.respond(n, r, body)
		}
		if code == 200 || code == 202 {
			rc.mu.Lock()
			rc.bodies = append(rc.bodies, body)
			rc.headers = append(rc.headers, r.Header.Clone())
			rc.at = append(rc.at, time.Now())
			rc.mu.Unlock()
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// delivered are the bodies accepted so far.
func (rc *receiver) delivered() [][]byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([][]byte(nil), rc.bodies...)
}

// webhookEvents decodes the events of every accepted webhook body.
func webhookEvents(t *testing.T, bodies [][]byte) []notify.Event {
	t.Helper()
	var out []notify.Event
	for _, b := range bodies {
		var body struct {
			Version string         `json:"version"`
			Events  []notify.Event `json:"events"`
		}
		if err := json.Unmarshal(b, &body); err != nil || body.Version != "1" {
			t.Fatalf("webhook body %s: %v", b, err)
		}
		out = append(out, body.Events...)
	}
	return out
}

type world struct {
	t       *testing.T
	pool    *pgxpool.Pool
	client  string
	admin   string // the client's administrator's address
	machine string
	smtp    *smtptest.Server
	deps    notify.Deps
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, pool: testenv.NewDB(t, migrate.ModePostgres), smtp: smtptest.Start(t)}
	w.client = testenv.Client(t, w.pool, "Pro")
	w.machine = testenv.Machine(t, w.pool, w.client, "srv-01")
	w.admin = "admin-" + w.client[:8] + "@example.com"
	w.exec(`INSERT INTO users (client_id, email, password_hash, name, role, created_at, updated_at) VALUES ($1, $2, 'x', 'Ada', 'admin', $3, $3)`,
		w.client, w.admin, t0)
	// The client's default email channel (to its admins) is left out unless a test wants it.
	w.exec(`DELETE FROM notification_channels WHERE client_id = $1`, w.client)
	w.deps = notify.Deps{Pool: w.pool, Logger: testenv.Discard(), Clock: clock.Fixed(t0),
		Mail:   mail.SMTP{Host: w.smtp.Host, Port: w.smtp.Port, From: "alerts@optralis.test", Timeout: 5 * time.Second},
		Policy: notify.Policy{AllowInsecure: true}, DashboardURL: "https://dash.example.com",
		Timeout: 2 * time.Second, Backoff: 20 * time.Millisecond}
	return w
}

func (w *world) exec(sql string, args ...any) {
	w.t.Helper()
	if _, err := w.pool.Exec(context.Background(), sql, args...); err != nil {
		w.t.Fatalf("%s: %v", sql, err)
	}
}

func (w *world) scalar(sql string, dst any, args ...any) {
	w.t.Helper()
	if err := w.pool.QueryRow(context.Background(), sql, args...).Scan(dst); err != nil {
		w.t.Fatalf("%s: %v", sql, err)
	}
}

// channel adds a channel of kind to url (or the email recipients) and returns its id.
func (w *world) channel(kind, url, minSeverity string, recipients ...string) string {
	w.t.Helper()
	var u, secret any
	if kind != "email" {
		u = url
	}
	if kind == "webhook" {
		secret = "whsec_test-" + kind
	}
	if recipients == nil {
		recipients = []string{}
	}
	var id string
	w.scalar(`INSERT INTO notification_channels (client_id, name, kind, recipients, url, secret, min_severity, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id`, &id, w.client, kind+" channel", kind, recipients, u, secret, minSeverity, t0)
	return id
}

// firing inserts a firing alert episode (the evaluator's output) and returns its id.
func (w *world) firing(machine, rule, severity string, value float64) string {
	w.t.Helper()
	var id string
	w.scalar(`INSERT INTO alert_rule_history (client_id, machine_id, rule_name, metric_type, severity, value, threshold, state,
			started_at, triggered_at, last_value, last_evaluated_at, details)
		VALUES ($1, $2, $3, 'cpu', $4, $5, 80, 'firing', $6, $6, $5, $6, '{"seen":"test"}') RETURNING id`,
		&id, w.client, machine, rule, severity, value, t0.Add(-5*time.Minute))
	return id
}

func (w *world) resolve(alert string, at time.Time) {
	w.t.Helper()
	w.exec(`UPDATE alert_rule_history SET state = 'resolved', resolved_at = $2 WHERE id = $1`, alert, at)
}

func (w *world) run(now time.Time) notify.Result {
	w.t.Helper()
	res, err := notify.Run(context.Background(), w.deps, now)
	if err != nil {
		w.t.Fatalf("run: %v", err)
	}
	return res
}

// statuses are the notification rows of an alert as "kind:event:status" counts.
func (w *world) statuses(alert string) map[string]int {
	w.t.Helper()
	rows, err := w.pool.Query(context.Background(), `
		SELECT channel || ':' || split_part(dedup_key, ':', 3) || ':' || status FROM notification_history WHERE alert_id = $1`, alert)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		out[s]++
	}
	return out
}

func (w *world) notifiedAt(alert string) (firing, resolved *time.Time) {
	w.t.Helper()
	if err := w.pool.QueryRow(context.Background(), `SELECT firing_notified_at, resolved_notified_at FROM alert_rule_history WHERE id = $1`, alert).
		Scan(&firing, &resolved); err != nil {
		w.t.Fatal(err)
	}
	return
}

// verifying is a webhook receiver that checks the signature as a customer would (README).
func verifying(t *testing.T, secret string) (*receiver, *atomic.Int32) {
	var bad atomic.Int32
	rc := newReceiver(t, func(_ int, r *http.Request, body []byte) int {
		if err := notify.Verify(secret, r.Header.Get(notify.HeaderTimestamp), body, r.Header.Get(notify.HeaderSignature), time.Now(), notify.DefaultTolerance); err != nil {
			bad.Add(1)
			return 401
		}
		if r.Header.Get(notify.HeaderDelivery) == "" {
			bad.Add(1)
			return 400
		}
		return 200
	})
	return rc, &bad
}

// Three alerts of a client in one run become one message per channel: a signed webhook
// (verified by the receiver), Slack and Teams (bodies of their shape) and email (one mail
// per recipient, listing the three). A second run sends nothing.
func TestGroupingOneMessagePerChannel(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	hook, bad := verifying(t, "whsec_test-webhook")
	slack := newReceiver(t, func(_ int, _ *http.Request, body []byte) int {
		var b struct {
			Text   string           `json:"text"`
			Blocks []map[string]any `json:"blocks"`
		}
		if json.Unmarshal(body, &b) != nil || b.Text == "" || len(b.Blocks) < 2 || b.Blocks[0]["type"] != "header" {
			return 400
		}
		return 200
	})
	teams := newReceiver(t, func(_ int, _ *http.Request, body []byte) int {
		var b struct {
			Type        string `json:"type"`
			Attachments []struct {
				ContentType string `json:"contentType"`
				Content     struct {
					Type    string           `json:"type"`
					Version string           `json:"version"`
					Body    []map[string]any `json:"body"`
				} `json:"content"`
			} `json:"attachments"`
		}
		if json.Unmarshal(body, &b) != nil || b.Type != "message" || len(b.Attachments) != 1 ||
			b.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" || b.Attachments[0].Content.Type != "AdaptiveCard" ||
			len(b.Attachments[0].Content.Body) < 2 {
			return 400
		}
		return 202
	})
	w.channel("webhook", hook.srv.URL+"/hook", "info")
	w.channel("slack", slack.srv.URL+"/services/T/B/X", "info")
	w.channel("teams", teams.srv.URL+"/workflows/x", "info")
	w.channel("email", "", "info") // no recipients: the client's admins
	m2 := testenv.Machine(t, w.pool, w.client, "srv-02")
	a1, a2, a3 := w.firing(w.machine, "CPU high", "warning", 97), w.firing(m2, "CPU high", "warning", 91), w.firing(w.machine, "Machine offline", "critical", 0)

	res := w.run(t0)
	if res.Messages != 4 || res.Sent != 12 || res.Failed != 0 {
		t.Fatalf("first run: %+v", res)
	}
	if bad.Load() != 0 {
		t.Fatalf("the receiver refused %d signatures", bad.Load())
	}
	for name, rc := range map[string]*receiver{"webhook": hook, "slack": slack, "teams": teams} {
		if n := len(rc.delivered()); n != 1 || rc.calls.Load() != 1 {
			t.Errorf("%s: %d messages accepted, %d requests; want one", name, n, rc.calls.Load())
		}
	}
	ev := webhookEvents(t, hook.delivered())
	ids := map[string]bool{}
	for _, e := range ev {
		ids[e.AlertID] = true
		if e.State != "firing" || e.Machine.Hostname == "" || e.TriggeredAt == nil || e.Value == nil {
			t.Errorf("event %+v", e)
		}
	}
	if len(ev) != 3 || !ids[a1] || !ids[a2] || !ids[a3] {
		t.Fatalf("webhook events %+v", ev)
	}
	if !strings.Contains(string(slack.delivered()[0]), "srv-02") || !strings.Contains(string(teams.delivered()[0]), "Machine offline") {
		t.Errorf("chat bodies lack the events: %s / %s", slack.delivered()[0], teams.delivered()[0])
	}
	mails := w.smtp.Wait(1, 5*time.Second)
	if len(mails) != 1 || mails[0].To[0] != w.admin {
		t.Fatalf("mails: %+v", mails)
	}
	text := mails[0].Text()
	for _, want := range []string{"3 firing", "CPU high on srv-01", "CPU high on srv-02", "Machine offline on srv-01", "https://dash.example.com/alerts"} {
		if !strings.Contains(text+mails[0].Header("Subject"), want) {
			t.Errorf("mail lacks %q:\n%s\n%s", want, mails[0].Header("Subject"), text)
		}
	}
	var messages int
	w.scalar(`SELECT count(DISTINCT message_id) FROM notification_history WHERE client_id = $1 AND status = 'sent'`, &messages, w.client)
	if messages != 4 {
		t.Errorf("%d message ids, want 4 (one per channel)", messages)
	}
	for _, a := range []string{a1, a2, a3} {
		if f, _ := w.notifiedAt(a); f == nil || !f.Equal(t0) {
			t.Errorf("alert %s firing_notified_at %v, want %v", a, f, t0)
		}
	}
	if res := w.run(t0.Add(time.Minute)); res != (notify.Result{}) {
		t.Fatalf("second run did something: %+v", res)
	}
	time.Sleep(100 * time.Millisecond)
	if hook.calls.Load() != 1 || len(w.smtp.Messages()) != 1 {
		t.Fatal("second run delivered again")
	}
}

// Runs started together (a retried job overlapping the first) deliver each event once.
func TestConcurrentRunsDeliverOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	hook := newReceiver(t, nil)
	w.channel("webhook", hook.srv.URL, "info")
	var alerts []string
	for i := range 6 {
		alerts = append(alerts, w.firing(testenv.Machine(t, w.pool, w.client, fmt.Sprintf("m-%d", i)), "CPU high", "warning", 95))
	}
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := notify.Run(context.Background(), w.deps, t0); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for _, e := range webhookEvents(t, hook.delivered()) {
		seen[e.AlertID]++
	}
	for _, a := range alerts {
		if seen[a] != 1 {
			t.Errorf("alert %s delivered %d times", a, seen[a])
		}
	}
	if res := w.run(t0.Add(time.Minute)); res.Sent != 0 {
		t.Fatalf("a later run resent: %+v", res)
	}
}

// A receiver failing twice gets the message at the third attempt of the same run; a
// hanging receiver times out and is retried by later runs until given up, while the
// other channels are delivered at once, without waiting for it.
func TestRetriesTimeoutsAndIsolation(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	flaky := newReceiver(t, func(n int, _ *http.Request, _ []byte) int {
		if n <= 2 {
			return 503
		}
		return 200
	})
	release := make(chan struct{})
	hang := newReceiver(t, func(_ int, r *http.Request, _ []byte) int {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return 200
	})
	t.Cleanup(func() { close(release) })
	fast := newReceiver(t, nil)
	w.channel("webhook", flaky.srv.URL, "info")
	hangID := w.channel("slack", hang.srv.URL, "info")
	w.channel("teams", fast.srv.URL, "info")
	w.deps.Timeout = 400 * time.Millisecond
	alert := w.firing(w.machine, "Disk almost full", "warning", 93)

	start := time.Now()
	res := w.run(t0)
	took := time.Since(start)
	if res.Messages != 2 || res.Failed != 1 {
		t.Fatalf("run: %+v", res)
	}
	if flaky.calls.Load() != 3 || len(flaky.delivered()) != 1 {
		t.Fatalf("flaky receiver: %d calls, %d accepted", flaky.calls.Load(), len(flaky.delivered()))
	}
	if len(fast.delivered()) != 1 || fast.at[0].Sub(start) > 300*time.Millisecond {
		t.Fatalf("the fast channel waited for the hanging one: delivered %v after the start (run took %v)", fast.at[0].Sub(start), took)
	}
	if hang.calls.Load() != 3 || took < 3*w.deps.Timeout || took > 5*time.Second {
		t.Fatalf("hanging channel: %d calls, run took %v", hang.calls.Load(), took)
	}
	var attempts int
	var errText string
	w.scalar(`SELECT attempts FROM notification_history WHERE alert_id = $1 AND channel = 'webhook'`, &attempts, alert)
	if attempts != 3 {
		t.Errorf("flaky attempts %d, want 3", attempts)
	}
	if err := w.pool.QueryRow(context.Background(), `SELECT attempts, error FROM notification_history WHERE alert_id = $1 AND channel_id = $2 AND status = 'failed'`,
		alert, hangID).Scan(&attempts, &errText); err != nil || attempts != 3 || !strings.Contains(errText, "timed out") {
		t.Fatalf("hanging row: %d %q %v", attempts, errText, err)
	}
	if f, _ := w.notifiedAt(alert); f != nil {
		t.Fatal("firing marked notified while a channel is still to be retried")
	}
	// Later runs retry only the failed channel, up to MaxAttempts (9: three runs), then give up.
	w.run(t0.Add(time.Minute))
	w.run(t0.Add(2 * time.Minute))
	if hang.calls.Load() != 9 || flaky.calls.Load() != 3 || fast.calls.Load() != 1 {
		t.Fatalf("retries: hang %d flaky %d fast %d", hang.calls.Load(), flaky.calls.Load(), fast.calls.Load())
	}
	if f, _ := w.notifiedAt(alert); f == nil || !f.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("given up: firing_notified_at %v", f)
	}
	w.run(t0.Add(3 * time.Minute))
	if hang.calls.Load() != 9 {
		t.Fatal("retried after giving up")
	}
}

// A maintenance window covering the machine mutes: the alert is recorded, nothing is
// sent, its resolution inside the window is muted too. An alert still firing when its
// window ends is notified then, once.
func TestMaintenanceWindowMutes(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	hook := newReceiver(t, nil)
	w.channel("webhook", hook.srv.URL, "info")
	w.channel("email", "", "info", "oncall@example.com")
	var group string
	w.scalar(`INSERT INTO machine_groups (client_id, name, color) VALUES ($1, 'Servers', '#112233') RETURNING id`, &group, w.client)
	w.exec(`INSERT INTO machine_group_members (client_id, machine_id, group_id, created_at) VALUES ($1, $2, $3, $4)`, w.client, w.machine, group, t0)
	// A group window from t0-1h for 2 hours; a machine window elsewhere does not matter.
	w.exec(`INSERT INTO maintenance_windows (client_id, name, scope_group_id, starts_at, duration_seconds, created_at, updated_at)
		VALUES ($1, 'Patch night', $2, $3, 7200, $3, $3)`, w.client, group, t0.Add(-time.Hour))
	other := testenv.Machine(t, w.pool, w.client, "outside")

	muted := w.firing(w.machine, "Machine offline", "critical", 0)
	still := w.firing(w.machine, "CPU high", "warning", 99)
	outside := w.firing(other, "CPU high", "warning", 99)
	res := w.run(t0)
	if res.Muted != 4 || res.Sent != 2 {
		t.Fatalf("run in the window: %+v", res)
	}
	for _, e := range webhookEvents(t, hook.delivered()) {
		if e.AlertID != outside {
			t.Fatalf("a muted alert was sent: %+v", e)
		}
	}
	if got := w.statuses(muted); got["webhook:firing:muted"] != 1 || got["email:firing:muted"] != 1 {
		t.Fatalf("muted rows: %v", got)
	}
	w.resolve(muted, t0.Add(10*time.Minute))
	w.run(t0.Add(11 * time.Minute))
	if got := w.statuses(muted); got["webhook:resolved:muted"] != 1 {
		t.Fatalf("resolution in the window: %v", got)
	}
	if f, r := w.notifiedAt(muted); f == nil || r == nil {
		t.Fatal("muted alert not finished")
	}
	if n := len(hook.delivered()); n != 1 || len(w.smtp.Wait(1, 2*time.Second)) != 1 {
		t.Fatalf("deliveries in the window: %d webhooks", n)
	}
	// The window ends at t0+1h; the CPU alert still fires: notified once.
	w.run(t0.Add(61 * time.Minute))
	w.run(t0.Add(62 * time.Minute))
	ev := webhookEvents(t, hook.delivered())
	if len(ev) != 2 || ev[1].AlertID != still {
		t.Fatalf("after the window: %+v", ev)
	}
	if got := w.statuses(still); got["webhook:firing:sent"] != 1 || got["email:firing:sent"] != 1 {
		t.Fatalf("after the window: %v", got)
	}
}

// An acknowledged alert is not notified; its resolution is, once. A resolved alert is
// notified once; an alert that resolved before its firing was notified is notified once,
// as resolved.
func TestAcknowledgedAndResolved(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	hook := newReceiver(t, nil)
	w.channel("webhook", hook.srv.URL, "info")
	acked := w.firing(w.machine, "Disk almost full", "warning", 95)
	w.exec(`UPDATE alert_rule_history SET acknowledged_at = $2, ack_comment = 'on it' WHERE id = $1`, acked, t0)
	normal := w.firing(w.machine, "CPU high", "warning", 95)
	w.run(t0)
	ev := webhookEvents(t, hook.delivered())
	if len(ev) != 1 || ev[0].AlertID != normal {
		t.Fatalf("first run: %+v", ev)
	}
	w.resolve(acked, t0.Add(5*time.Minute))
	w.resolve(normal, t0.Add(5*time.Minute))
	quick := w.firing(w.machine, "SMART", "critical", 1)
	w.resolve(quick, t0.Add(5*time.Minute))
	w.run(t0.Add(5 * time.Minute))
	w.run(t0.Add(6 * time.Minute))
	ev = webhookEvents(t, hook.delivered())
	if len(hook.delivered()) != 2 || len(ev) != 4 {
		t.Fatalf("events %+v", ev)
	}
	got := map[string]string{}
	for _, e := range ev[1:] {
		got[e.AlertID] = e.State
		if e.ResolvedAt == nil {
			t.Errorf("resolved event without resolved_at: %+v", e)
		}
	}
	if got[acked] != "resolved" || got[normal] != "resolved" || got[quick] != "resolved" {
		t.Fatalf("second message %+v", ev[1:])
	}
	for _, a := range []string{acked, normal, quick} {
		if f, r := w.notifiedAt(a); f == nil || r == nil {
			t.Errorf("alert %s not finished", a)
		}
	}
}

// min_severity filters; a disabled channel gets nothing.
func TestMinSeverityAndDisabled(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	critical, all, off := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	w.channel("webhook", critical.srv.URL, "critical")
	w.channel("slack", all.srv.URL, "info")
	offID := w.channel("teams", off.srv.URL, "info")
	w.exec(`UPDATE notification_channels SET enabled = FALSE WHERE id = $1`, offID)
	w.firing(w.machine, "CPU high", "warning", 95)
	crit := w.firing(w.machine, "Machine offline", "critical", 0)
	w.firing(w.machine, "Info", "info", 1)
	w.run(t0)
	ev := webhookEvents(t, critical.delivered())
	if len(ev) != 1 || ev[0].AlertID != crit {
		t.Fatalf("critical-only channel got %+v", ev)
	}
	if b := all.delivered(); len(b) != 1 || !strings.Contains(string(b[0]), "3 firing") {
		t.Fatalf("info channel: %q", b)
	}
	if off.calls.Load() != 0 {
		t.Fatal("a disabled channel was called")
	}
}

// A claim left 'sending' by a crashed run is given up after StaleAfter, never resent.
func TestStaleClaimIsNotResent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	hook := newReceiver(t, nil)
	ch := w.channel("webhook", hook.srv.URL, "info")
	alert := w.firing(w.machine, "CPU high", "warning", 95)
	w.exec(`INSERT INTO notification_history (client_id, channel, notification_type, status, dedup_key, sent_at, channel_id, alert_id, message_id)
		VALUES ($1, 'webhook', 'alert', 'sending', $2, $3, $4, $5, gen_random_uuid())`, w.client, "alert:"+alert+":firing", t0, ch, alert)
	if res := w.run(t0.Add(time.Minute)); res.Sent != 0 || res.Abandoned != 0 {
		t.Fatalf("a fresh claim was touched: %+v", res)
	}
	if res := w.run(t0.Add(6 * time.Minute)); res.Abandoned != 1 || res.Sent != 0 {
		t.Fatalf("stale claim: %+v", res)
	}
	if hook.calls.Load() != 0 {
		t.Fatal("a stale claim was resent")
	}
	if f, _ := w.notifiedAt(alert); f == nil {
		t.Fatal("abandoned event not finished")
	}
}

// Email without a mail server configured: recorded 'skipped', final.
func TestMailDisabledSkips(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.deps.Mail = mail.Disabled{Logger: testenv.Discard()}
	w.channel("email", "", "info", "ops@example.com")
	alert := w.firing(w.machine, "CPU high", "warning", 95)
	if res := w.run(t0); res.Skipped != 1 {
		t.Fatalf("run: %+v", res)
	}
	if got := w.statuses(alert); got["email:firing:skipped"] != 1 {
		t.Fatalf("rows %v", got)
	}
	if f, _ := w.notifiedAt(alert); f == nil {
		t.Fatal("skipped event not finished")
	}
}
