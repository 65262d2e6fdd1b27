package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/app/alertsfn"
	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/notify"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
	"github.com/optralis/optralis/internal/testenv/smtptest"
)

// simAgent is an enrolled machine whose agent heartbeats at the interval the server
// answers, while on.
type simAgent struct {
	id, hostname string
	cert         *x509.Certificate
	on           bool
	cpu          float64
	next         time.Time
}

// webhookLog is a real local HTTP receiver of the stack's webhooks that verifies each
// signature and records the events with the (simulated) time they arrived.
type webhookLog struct {
	mu       sync.Mutex
	secret   string
	messages [][]notify.Event
	at       []time.Time
	bad      int
}

func (l *webhookLog) count() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.messages) }

// The issue's "done when", through the real handlers (heartbeats through the agent
// routes, channels through the API) and the alerts function's job run on its one-minute
// cadence by a controllable clock, with a real SMTP server and a real HTTP receiver:
//   - a CPU spike shorter than the pending duration sends nothing; a sustained one on two
//     machines sends one grouped message; oscillation around the threshold does not flap;
//     recovery sends one "resolved" message;
//   - a machine whose agent stops is reported offline to the webhook and by email within
//     grace + 1 minute of the missed heartbeat, exactly once, and "resolved" once when it
//     comes back;
//   - inside a maintenance window nothing is sent, but the alert is recorded.
func TestAlertingEndToEnd(t *testing.T) {
	t.Parallel()
	s := newEnrolStack(t)
	s.d.Config.NotifyAllowInsecureURLs = true
	ctx := context.Background()
	api, agents := contract(t, s.d.PublicHandler()), s.d.AgentHandler()
	smtp := smtptest.Start(t)
	client := testenv.Client(t, s.d.Pool, "Pro")
	adminID, adminTok := s.bearer(principal.RoleAdmin, client)
	var adminEmail string
	if err := s.d.Pool.QueryRow(ctx, `SELECT email FROM users WHERE id = $1`, adminID).Scan(&adminEmail); err != nil {
		t.Fatal(err)
	}
	// A CPU rule beside the client's defaults (offline after 5 minutes, ...): ≥ 90 % for
	// 5 minutes, recovering below 80 %, firing at least 5 minutes.
	if _, err := s.d.Pool.Exec(ctx, `
		INSERT INTO alert_rules (client_id, name, kind, metric, threshold, recovery_threshold, pending_seconds, min_firing_seconds, severity, created_at, updated_at)
		VALUES ($1, 'CPU saturated', 'metric', 'cpu', 90, 80, 300, 300, 'warning', $2, $2)`, client, s.clock.Now()); err != nil {
		t.Fatal(err)
	}

	// The webhook channel, created through the API; the default email channel mails the admin.
	hooks := &webhookLog{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hooks.mu.Lock()
		defer hooks.mu.Unlock()
		if notify.Verify(hooks.secret, r.Header.Get(notify.HeaderTimestamp), body, r.Header.Get(notify.HeaderSignature), time.Now(), notify.DefaultTolerance) != nil {
			hooks.bad++
			w.WriteHeader(401)
			return
		}
		var msg struct{ Events []notify.Event }
		if err := json.Unmarshal(body, &msg); err != nil {
			w.WriteHeader(400)
			return
		}
		hooks.messages = append(hooks.messages, msg.Events)
		hooks.at = append(hooks.at, s.clock.Now())
		w.WriteHeader(204)
	}))
	t.Cleanup(receiver.Close)
	code, body := call(api, "POST", "/api/notification-channels", adminTok,
		`{"name":"NOC webhook","kind":"webhook","url":"`+receiver.URL+`/optralis","min_severity":"info"}`)
	var ch struct{ Secret string }
	if err := json.Unmarshal([]byte(body), &ch); code != 201 || err != nil || ch.Secret == "" {
		t.Fatalf("webhook channel: %d %s", code, body)
	}
	hooks.mu.Lock()
	hooks.secret = ch.Secret
	hooks.mu.Unlock()

	job := alertsfn.Job(s.d.core(), alertsfn.Deps{
		Mailer:        mail.SMTP{Host: smtp.Host, Port: smtp.Port, From: "alerts@optralis.test", Timeout: 5 * time.Second},
		AllowInsecure: true, DashboardURL: "https://dash.example.com",
		Notify: notify.Deps{Timeout: 2 * time.Second, Backoff: 10 * time.Millisecond},
	})

	// Two enrolled machines.
	newAgent := func(hostname string) *simAgent {
		id := testenv.Machine(t, s.d.Pool, client, hostname)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		issued, err := certs.Issue(ctx, s.d.Pool, s.d.CA, certs.IssueRequest{ClientID: client, MachineID: id, PublicKey: &key.PublicKey}, s.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return &simAgent{id: id, hostname: hostname, cert: issued.Cert, on: true, cpu: 20}
	}
	a, b := newAgent("web-01"), newAgent("db-01")
	machines := []*simAgent{a, b}
	heartbeat := func(m *simAgent) {
		t.Helper()
		now := s.clock.Now()
		hb, _ := json.Marshal(map[string]any{"recorded_at": now.Format(time.RFC3339Nano), "agent_version": "1.0.0",
			"metrics": map[string]any{"cpu_percent": m.cpu, "ram_percent": 40}})
		r := httptest.NewRequest("POST", "/agent/heartbeat", strings.NewReader(string(hb)))
		r.Header.Set("Content-Type", "application/json")
		r = r.WithContext(identity.WithClientCert(r.Context(), m.cert))
		w := httptest.NewRecorder()
		agents.ServeHTTP(w, r)
		var ans struct {
			Next int `json:"next_interval_seconds"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &ans); w.Code != 200 || err != nil || ans.Next <= 0 {
			t.Fatalf("heartbeat %s: %d %s", m.hostname, w.Code, w.Body.String())
		}
		m.next = now.Add(time.Duration(ans.Next) * time.Second)
	}
	// tick advances the clock 10 s: agents that are on send their due heartbeats, and on
	// each whole minute the alerts job runs, as EventBridge's rate(1 minute) would.
	tick := func() {
		t.Helper()
		s.clock.Advance(10 * time.Second)
		now := s.clock.Now()
		for _, m := range machines {
			if m.on && !now.Before(m.next) {
				heartbeat(m)
			}
		}
		if now.Second() == 0 {
			if err := job(ctx, now); err != nil {
				t.Fatalf("alerts job at %s: %v", now, err)
			}
		}
	}
	minutes := func(n int) {
		t.Helper()
		for range n * 6 {
			tick()
		}
	}
	mails := func() int { return len(smtp.Messages()) }
	expect := func(phase string, wantHooks, wantMails int) {
		t.Helper()
		time.Sleep(50 * time.Millisecond) // the SMTP server has acknowledged every mail already; this is slack only
		if hooks.count() != wantHooks || mails() != wantMails || hooks.bad != 0 {
			t.Fatalf("%s: %d webhook messages (want %d), %d mails (want %d), %d bad signatures", phase, hooks.count(), wantHooks, mails(), wantMails, hooks.bad)
		}
	}

	// Steady state: nothing.
	minutes(3)
	expect("steady", 0, 0)

	// 1. A CPU spike of 2 minutes on both machines (pending duration 5): nothing.
	a.cpu, b.cpu = 97, 97
	minutes(2)
	a.cpu, b.cpu = 20, 20
	minutes(3)
	expect("short spike", 0, 0)
	var episodes int
	if err := s.d.Pool.QueryRow(ctx, `SELECT count(*) FROM alert_rule_history WHERE client_id = $1`, client).Scan(&episodes); err != nil || episodes != 0 {
		t.Fatalf("a short spike left %d episodes: %v", episodes, err)
	}

	// 2. Sustained: one grouped message (both machines) per channel.
	a.cpu, b.cpu = 97, 97
	minutes(7)
	expect("sustained", 1, 1)
	if ev := hooks.messages[0]; len(ev) != 2 || ev[0].State != "firing" || ev[0].Rule.Name != "CPU saturated" || ev[1].Rule.Name != "CPU saturated" {
		t.Fatalf("grouped message: %+v", ev)
	}
	if m := smtp.Messages()[0]; m.To[0] != adminEmail || !strings.Contains(m.Text(), "CPU saturated on web-01") || !strings.Contains(m.Text(), "CPU saturated on db-01") {
		t.Fatalf("mail: %v\n%s", m.To, m.Text())
	}

	// 3. Oscillation around the threshold (85 ↔ 97, above the recovery threshold): no flap.
	for i := range 8 {
		if i%2 == 0 {
			a.cpu, b.cpu = 85, 85
		} else {
			a.cpu, b.cpu = 97, 97
		}
		minutes(1)
	}
	expect("oscillation", 1, 1)
	// Recovery: one "resolved" message for both.
	a.cpu, b.cpu = 20, 20
	minutes(3)
	expect("recovered", 2, 2)
	if ev := hooks.messages[1]; len(ev) != 2 || ev[0].State != "resolved" || ev[1].State != "resolved" {
		t.Fatalf("resolved message: %+v", ev)
	}

	// 4. web-01's agent stops: offline within grace (300 s) + 1 minute of the heartbeat
	// that was due, exactly once, to the webhook and by email.
	a.on = false
	due := a.next
	for range 10 * 6 {
		tick()
		if hooks.count() > 2 {
			break
		}
	}
	minutes(5) // and nothing more
	expect("offline", 3, 3)
	off := hooks.messages[2]
	if len(off) != 1 || off[0].State != "firing" || off[0].Rule.Name != "Machine offline" || off[0].Machine.Hostname != "web-01" || off[0].Severity != "critical" {
		t.Fatalf("offline message: %+v", off)
	}
	if late := hooks.at[2].Sub(due); late <= 5*time.Minute || late > 6*time.Minute {
		t.Fatalf("offline reported %v after the missed heartbeat, want within grace (5m) + 1m", late)
	}
	t.Logf("offline reported %v after the heartbeat that was due (grace 5m)", hooks.at[2].Sub(due))
	if m := smtp.Messages()[2]; !strings.Contains(m.Header("Subject"), "Machine offline on web-01") {
		t.Fatalf("offline mail: %s", m.Header("Subject"))
	}

	// 5. It comes back: "resolved", once.
	a.on, a.next = true, s.clock.Now()
	minutes(4)
	expect("back", 4, 4)
	if ev := hooks.messages[3]; len(ev) != 1 || ev[0].State != "resolved" || ev[0].Machine.Hostname != "web-01" {
		t.Fatalf("back online: %+v", ev)
	}

	// 6. db-01 in a maintenance window: it goes offline and comes back; nothing is sent,
	// the alert is recorded (and its notifications recorded as muted).
	if _, err := s.d.Pool.Exec(ctx, `
		INSERT INTO maintenance_windows (client_id, name, scope_machine_id, starts_at, duration_seconds, created_at, updated_at)
		VALUES ($1, 'db-01 upgrade', $2, $3, 3600, $3, $3)`, client, b.id, s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	b.on = false
	minutes(10)
	b.on, b.next = true, s.clock.Now()
	minutes(3)
	expect("maintenance", 4, 4)
	var state string
	var muted int
	if err := s.d.Pool.QueryRow(ctx, `
		SELECT h.state, (SELECT count(*) FROM notification_history n WHERE n.alert_id = h.id AND n.status = 'muted')
		FROM alert_rule_history h WHERE h.machine_id = $1 AND h.rule_name = 'Machine offline'`, b.id).Scan(&state, &muted); err != nil || state != "resolved" || muted != 4 {
		t.Fatalf("db-01's offline alert: %q, %d muted rows (want firing and resolved × 2 channels): %v", state, muted, err)
	}
}
