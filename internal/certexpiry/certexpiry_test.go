package certexpiry_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certexpiry"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv"
	"github.com/optralis/optralis/internal/testenv/smtptest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var now = time.Date(2027, 3, 10, 6, 0, 0, 0, time.UTC)

type fixture struct {
	t    *testing.T
	pool *pgxpool.Pool
	ca   *ca.CA
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	authority, err := ca.LoadOrCreateLocal(t.TempDir(), now.AddDate(-3, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, pool: testenv.NewDB(t, migrate.ModePostgres), ca: authority}
}

// machine enrols a machine whose certificate was issued at each of issuedAt in turn (the
// last one active).
func (f *fixture) machine(client, hostname string, issuedAt ...time.Time) string {
	f.t.Helper()
	id := testenv.Machine(f.t, f.pool, client, hostname)
	for _, at := range issuedAt {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if _, err := certs.Issue(context.Background(), f.pool, f.ca, certs.IssueRequest{ClientID: client, MachineID: id, PublicKey: &key.PublicKey}, at); err != nil {
			f.t.Fatal(err)
		}
	}
	return id
}

func (f *fixture) user(client, email, role string, active bool) {
	f.t.Helper()
	if _, err := f.pool.Exec(context.Background(), `INSERT INTO users (client_id, email, password_hash, role, is_active) VALUES ($1, $2, 'x', $3, $4)`,
		client, email, role, active); err != nil {
		f.t.Fatal(err)
	}
}

// expiringIn is the issuance instant of a one-year certificate that expires d after now.
func expiringIn(d time.Duration) time.Time { return now.Add(d).AddDate(-1, 0, 0) }

const day = 24 * time.Hour

func sender(s *smtptest.Server) mail.MessageSender {
	return mail.SMTP{Host: s.Host, Port: s.Port, From: "noreply@optralis.example"}
}

func recipients(msgs []smtptest.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.To...)
	}
	sort.Strings(out)
	return out
}

// One digest a day to each active admin of each enabled client that has machines whose
// active certificate expires within 30 days; recorded; a second run the same day sends
// nothing; the next day sends again.
func TestDigestOncePerDayToEachAdmin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	smtp := smtptest.Start(t)

	acme := testenv.Client(t, f.pool, "Pro")
	f.user(acme, "ada@acme.example", "admin", true)
	f.user(acme, "bob@acme.example", "admin", true)
	f.user(acme, "old@acme.example", "admin", false) // inactive
	f.user(acme, "usr@acme.example", "user", true)   // not an admin
	f.machine(acme, "web-20d", expiringIn(20*day))
	f.machine(acme, "db-5d", expiringIn(5*day))
	f.machine(acme, "fine-100d", expiringIn(100*day))
	f.machine(acme, "renewed", expiringIn(10*day), now.Add(-time.Hour)) // the agent renewed
	f.machine(acme, "dead", expiringIn(-2*day))                         // already expired: not "expiring"
	gone := f.machine(acme, "deleted-7d", expiringIn(7*day))
	if _, err := f.pool.Exec(ctx, `UPDATE machines SET deleted_at = $2 WHERE id = $1`, gone, now.Add(-day)); err != nil {
		t.Fatal(err)
	}
	disabled := testenv.Client(t, f.pool, "Pro")
	f.user(disabled, "eve@off.example", "admin", true)
	f.machine(disabled, "off-3d", expiringIn(3*day))
	lonely := testenv.Client(t, f.pool, "Pro") // no admin: nobody to tell
	f.machine(lonely, "lonely-3d", expiringIn(3*day))
	if _, err := f.pool.Exec(ctx, `UPDATE clients SET is_active = false WHERE id = $1`, disabled); err != nil {
		t.Fatal(err)
	}

	d := certexpiry.Deps{Pool: f.pool, Mailer: sender(smtp), Logger: testenv.Discard(), DashboardURL: "https://dash.example.com/"}
	res, err := certexpiry.Run(ctx, d, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Clients != 1 || res.Machines != 2 || res.Sent != 2 || res.Failed != 0 {
		t.Errorf("result %+v", res)
	}
	msgs := smtp.Wait(2, 5*time.Second)
	if got := recipients(msgs); strings.Join(got, ",") != "ada@acme.example,bob@acme.example" {
		t.Fatalf("recipients %v", got)
	}
	for _, m := range msgs {
		body := m.Text()
		if subj := m.Header("Subject"); !strings.Contains(subj, "2 machine certificate(s) expire within 30 days") {
			t.Errorf("subject %q", subj)
		}
		db5, web20 := strings.Index(body, "db-5d: expires 2027-03-15 06:00 UTC (in 5 day(s))"), strings.Index(body, "web-20d: expires 2027-03-30")
		if db5 < 0 || web20 < 0 || db5 > web20 {
			t.Errorf("body lists the machines soonest first with their expiry:\n%s", body)
		}
		for _, not := range []string{"fine-100d", "renewed", "dead", "deleted-7d", "off-3d", "lonely-3d"} {
			if strings.Contains(body, "- "+not+":") {
				t.Errorf("body lists %s:\n%s", not, body)
			}
		}
		if !strings.Contains(body, "https://dash.example.com/machines?cert_status=expiring") {
			t.Errorf("no dashboard link:\n%s", body)
		}
	}
	var sent int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM notification_history WHERE client_id = $1 AND notification_type = $2
		AND status = 'sent' AND sent_at = $3 AND user_id IS NOT NULL AND channel = 'email'`, acme, certexpiry.NotificationType, now).Scan(&sent); err != nil || sent != 2 {
		t.Fatalf("recorded: %d %v", sent, err)
	}

	// Later the same day (a retry, a second schedule): nothing.
	res, err = certexpiry.Run(ctx, d, now.Add(17*time.Hour))
	if err != nil || res.Sent != 0 || res.Clients != 0 {
		t.Fatalf("second run the same day: %+v %v", res, err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(smtp.Messages()); n != 2 {
		t.Fatalf("%d messages after the second run, want 2", n)
	}
	// The next day: still not renewed, so again (the 5-day machine now in 4 days).
	res, err = certexpiry.Run(ctx, d, now.Add(day))
	if err != nil || res.Sent != 2 {
		t.Fatalf("next day: %+v %v", res, err)
	}
	if msgs := smtp.Wait(4, 5*time.Second); len(msgs) != 4 || !strings.Contains(msgs[3].Text(), "db-5d: expires 2027-03-15 06:00 UTC (in 4 day(s))") {
		t.Fatalf("next day's messages: %d", len(msgs))
	}
}

// A mail server that refuses the connection: recorded "failed", and a run later that day
// sends it; disabled mail is recorded "skipped" and not retried; a run cut short by
// MaxClients reports ErrIncomplete and the next run finishes without repeating itself.
func TestDigestFailuresAndBounds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	smtp := smtptest.Start(t)
	a := testenv.Client(t, f.pool, "Pro")
	b := testenv.Client(t, f.pool, "Pro")
	f.user(a, "admin@a.example", "admin", true)
	f.user(b, "admin@b.example", "admin", true)
	f.machine(a, "a-1", expiringIn(9*day))
	f.machine(b, "b-1", expiringIn(9*day))

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	d := certexpiry.Deps{Pool: f.pool, Mailer: mail.SMTP{Host: "127.0.0.1", Port: closed, From: "noreply@optralis.example", Timeout: 2 * time.Second},
		Logger: testenv.Discard()}
	res, err := certexpiry.Run(ctx, d, now)
	if !errors.Is(err, certexpiry.ErrNotSent) || res.Failed != 2 || res.Sent != 0 {
		t.Fatalf("mail server down: %+v %v", res, err)
	}
	var failed int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM notification_history WHERE status = 'failed' AND error <> ''`).Scan(&failed); err != nil || failed != 2 {
		t.Fatalf("failed rows: %d %v", failed, err)
	}

	// Back up, but the run stops after one client: ErrIncomplete; the retry does the other.
	d.Mailer, d.MaxClients = sender(smtp), 1
	res, err = certexpiry.Run(ctx, d, now.Add(time.Hour))
	if !errors.Is(err, certexpiry.ErrIncomplete) || res.Sent != 1 {
		t.Fatalf("bounded run: %+v %v", res, err)
	}
	res, err = certexpiry.Run(ctx, d, now.Add(time.Hour+time.Minute))
	if err != nil || res.Sent != 1 {
		t.Fatalf("the retry: %+v %v", res, err)
	}
	if got := recipients(smtp.Wait(2, 5*time.Second)); strings.Join(got, ",") != "admin@a.example,admin@b.example" {
		t.Fatalf("recipients %v", got)
	}

	// Mail disabled the next day: recorded "skipped" once.
	d.Mailer, d.MaxClients = mail.Disabled{Logger: testenv.Discard()}, 0
	for i := 0; i < 2; i++ {
		res, err = certexpiry.Run(ctx, d, now.Add(day+time.Duration(i)*time.Hour))
		if want := 2 * (1 - i); err != nil || res.Skipped != want {
			t.Fatalf("disabled mail, run %d: %+v %v, want %d skipped", i, res, err, want)
		}
	}
	if n := len(smtp.Messages()); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
}

// Two runs at once (EventBridge delivers at least once): each admin gets one digest.
func TestConcurrentRunsSendOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	smtp := smtptest.Start(t)
	for i := 0; i < 3; i++ {
		c := testenv.Client(t, f.pool, "Pro")
		f.user(c, fmt.Sprintf("admin%d@c.example", i), "admin", true)
		f.machine(c, fmt.Sprintf("c%d", i), expiringIn(9*day))
	}
	d := certexpiry.Deps{Pool: f.pool, Mailer: sender(smtp), Logger: testenv.Discard()}
	var wg sync.WaitGroup
	sent := make([]int, 4)
	for i := range sent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := certexpiry.Run(context.Background(), d, now.Add(time.Duration(i)*time.Second))
			if err != nil {
				t.Error(err)
			}
			sent[i] = res.Sent
		}()
	}
	wg.Wait()
	time.Sleep(100 * time.Millisecond)
	if total := sent[0] + sent[1] + sent[2] + sent[3]; total != 3 || len(smtp.Messages()) != 3 {
		t.Fatalf("sent %v, %d messages, want 3", sent, len(smtp.Messages()))
	}
}

func TestCompose(t *testing.T) {
	machines := []certexpiry.Machine{{Hostname: "a", ExpiresAt: now.Add(3 * day)}}
	subject, body := certexpiry.Compose(machines, 201, now, "")
	if !strings.Contains(subject, "201 machine") || !strings.Contains(body, "... and 200 more") || strings.Contains(body, "dashboard:") {
		t.Errorf("%q\n%s", subject, body)
	}
}
