package reminders_test

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/reminders"
	"github.com/optralis/optralis/internal/testenv"
	"github.com/optralis/optralis/internal/testenv/smtptest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestPasswordMaxAgeIsAuths(t *testing.T) {
	if reminders.PasswordMaxAge != auth.PasswordMaxAge {
		t.Fatalf("reminders.PasswordMaxAge %v, auth.PasswordMaxAge %v", reminders.PasswordMaxAge, auth.PasswordMaxAge)
	}
}

func TestDue(t *testing.T) {
	for _, tc := range []struct {
		k    reminders.Kind
		days int
		want int // 0: none
	}{
		{reminders.Licence, 31, 0}, {reminders.Licence, 30, 30}, {reminders.Licence, 15, 30}, {reminders.Licence, 14, 14},
		{reminders.Licence, 12, 14}, {reminders.Licence, 7, 7}, {reminders.Licence, 4, 7}, {reminders.Licence, 3, 3},
		{reminders.Licence, 0, 3}, {reminders.Licence, -1, 0},
		{reminders.Password, 29, 30}, {reminders.Password, 10, 10}, {reminders.Password, 9, 10}, {reminders.Password, 1, 3},
	} {
		m, ok := tc.k.Due(tc.days)
		if ok != (tc.want != 0) || m != tc.want {
			t.Errorf("%s Due(%d) = %d %v, want %d", tc.k.Type, tc.days, m, ok, tc.want)
		}
	}
}

type world struct {
	pool *pgxpool.Pool
	d0   time.Time // day 0, 09:00 UTC
}

func (w world) day(n int) time.Time { return w.d0.AddDate(0, 0, n) }

func (w world) client(t *testing.T, name string, active bool, expires time.Time) string {
	t.Helper()
	var id string
	err := w.pool.QueryRow(context.Background(), `
		INSERT INTO clients (name, license_tier, license_expires_at, is_active, created_at, updated_at)
		VALUES ($1, 'Pro', $2, $3, $4, $4) RETURNING id`, name, expires, active, w.d0).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// user inserts a user whose password expires at pwExpires.
func (w world) user(t *testing.T, clientID, email, role string, active, mustChange bool, pwExpires time.Time) string {
	t.Helper()
	var cid any = clientID
	if clientID == "" {
		cid = nil
	}
	var id string
	err := w.pool.QueryRow(context.Background(), `
		INSERT INTO users (client_id, email, password_hash, name, role, is_active, must_change_password, password_changed_at, created_at, updated_at)
		VALUES ($1, $2, 'x', $3, $4, $5, $6, $7, $8, $8) RETURNING id`,
		cid, email, strings.Split(email, "@")[0], role, active, mustChange, pwExpires.Add(-auth.PasswordMaxAge), w.d0).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// got is a received reminder as "recipient|subject".
func got(msgs []smtptest.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, strings.Join(m.To, ",")+"|"+m.Header("Subject"))
	}
	sort.Strings(out)
	return out
}

const (
	licA = "Optralis: the licence of Acme expires "
	licC = "Optralis: the licence of <Cogs & Co> expires "
	pw   = "Optralis: your password expires "
)

// deadSMTP is a mail server that refuses connections: a port that was listening and is
// closed.
func deadSMTP(t *testing.T) mail.SMTP {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return mail.SMTP{Host: "127.0.0.1", Port: port, From: "noreply@optralis.test", Timeout: 2 * time.Second}
}

// The done-when: the clock driven across 35 days, one run per day at 09:00 (some
// days twice, one day two runs at once, some days skipped, one day with the mail server
// down), and exactly the expected mails arrive at a real SMTP server, once each.
func TestThirtyFiveDays(t *testing.T) {
	ctx := context.Background()
	w := world{pool: testenv.NewDB(t, migrate.ModePostgres), d0: time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)}
	noon := func(n int) time.Time { return w.day(n).Add(3 * time.Hour) }
	far := w.day(200)

	// Acme: licence expires on day 32 at noon. Two active admins get it; an inactive admin
	// and a plain user do not.
	acme := w.client(t, "Acme", true, noon(32))
	w.user(t, acme, "a1@acme.test", "admin", true, false, far)
	w.user(t, acme, "a2@acme.test", "admin", true, true, far) // invited, not yet signed in: still an admin
	w.user(t, acme, "a3@acme.test", "admin", false, false, far)
	// p1's password expires on day 25 at 15:00; an inactive user's and a first-login
	// user's do not cause mails.
	w.user(t, acme, "p1@acme.test", "user", true, false, w.day(25).Add(6*time.Hour))
	w.user(t, acme, "p2@acme.test", "user", false, false, w.day(20))
	w.user(t, acme, "p3@acme.test", "user", true, true, w.day(20))
	// Cogs (a name to escape in HTML): licence expires on day 12 at 06:00, inside the
	// 14-day window from day 0: only the 14-day reminder is sent then, not the 30-day one.
	cogs := w.client(t, "<Cogs & Co>", true, w.day(12).Add(-3*time.Hour))
	w.user(t, cogs, "c1@cogs.test", "admin", true, false, far)
	// A disabled client: neither its licence nor its users' passwords cause mails.
	off := w.client(t, "Disabled MSP", false, w.day(20))
	w.user(t, off, "b1@off.test", "admin", true, false, w.day(20))
	// A platform admin's password expires on day 8.
	w.user(t, "", "root@optralis.test", "platform_admin", true, false, w.day(8))
	// A client without licence expiry.
	w.user(t, w.client(t, "Forever", true, time.Time{}), "f1@forever.test", "admin", true, false, far)
	if _, err := w.pool.Exec(ctx, `UPDATE clients SET license_expires_at = NULL WHERE name = 'Forever'`); err != nil {
		t.Fatal(err)
	}

	srv := smtptest.Start(t)
	up := mail.SMTP{Host: srv.Host, Port: srv.Port, From: "noreply@optralis.test", Timeout: 5 * time.Second}
	deps := reminders.Deps{Pool: w.pool, Mailer: up, DashboardURL: "https://app.optralis.test/", Logger: testenv.Discard()}

	expected := map[int][]string{
		// Cogs is 12 days from expiry: its 14-day reminder, not the 30-day one. root is 8 days
		// from expiry: the 10-day one.
		0: {"c1@cogs.test|" + licC + "in 12 days", "p1@acme.test|" + pw + "in 25 days", "root@optralis.test|" + pw + "in 8 days"},
		2: {"a1@acme.test|" + licA + "in 30 days", "a2@acme.test|" + licA + "in 30 days"},
		// day 5: the mail server is down; c1's 7-day and root's 3-day reminders fail, and are
		// sent the next day.
		6:  {"c1@cogs.test|" + licC + "in 6 days", "root@optralis.test|" + pw + "in 2 days"},
		9:  {"c1@cogs.test|" + licC + "in 3 days"},
		16: {"p1@acme.test|" + pw + "in 9 days"},                                           // day 15 (10 days) was missed
		19: {"a1@acme.test|" + licA + "in 13 days", "a2@acme.test|" + licA + "in 13 days"}, // day 18 (14 days) was missed
		22: {"p1@acme.test|" + pw + "in 3 days"},
		// days 24-29 missed: the 7-day reminder is superseded by the 3-day one, sent once
		30: {"a1@acme.test|" + licA + "in 2 days", "a2@acme.test|" + licA + "in 2 days"},
	}
	skipped := map[int]bool{15: true, 18: true, 24: true, 25: true, 26: true, 27: true, 28: true, 29: true}
	twice := map[int]bool{0: true, 9: true, 16: true, 30: true}
	concurrent := 2

	seen := 0
	for day := 0; day < 35; day++ {
		if skipped[day] {
			continue
		}
		now := w.day(day)
		switch {
		case day == 5:
			d := deps
			d.Mailer = deadSMTP(t)
			if _, err := reminders.Run(ctx, d, now); err == nil {
				t.Errorf("day 5: no error with the mail server down")
			}
		case day == concurrent:
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := reminders.Run(ctx, deps, now); err != nil {
						t.Errorf("day %d: %v", day, err)
					}
				}()
			}
			wg.Wait()
		default:
			runs := 1
			if twice[day] {
				runs = 2
			}
			for i := range runs {
				if _, err := reminders.Run(ctx, deps, now.Add(time.Duration(i)*time.Minute)); err != nil {
					t.Fatalf("day %d: %v", day, err)
				}
			}
		}
		msgs := srv.Messages()
		fresh := got(msgs[seen:])
		seen = len(msgs)
		want := append([]string(nil), expected[day]...)
		sort.Strings(want)
		if strings.Join(fresh, "\n") != strings.Join(want, "\n") {
			t.Errorf("day %d (%s): received\n  %s\nwant\n  %s", day, now.Format(time.DateOnly),
				strings.Join(fresh, "\n  "), strings.Join(want, "\n  "))
		}
	}

	if n := len(srv.Messages()); n != 14 {
		t.Errorf("%d mails in 35 days, want 14", n)
	}

	// The history: one row per reminder sent, none left 'sending'; the failed one of day 5
	// became 'sent' when retried.
	var sent, other int
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status <> 'sent')
		FROM notification_history`).Scan(&sent, &other); err != nil {
		t.Fatal(err)
	}
	if sent != len(srv.Messages()) || other != 0 {
		t.Errorf("notification_history: %d sent, %d other; %d mails received", sent, other, len(srv.Messages()))
	}
	var keys []string
	rows, _ := w.pool.Query(ctx, `SELECT recipient || ' ' || notification_type || ' ' || dedup_key FROM notification_history
		WHERE recipient IN ('a1@acme.test', 'c1@cogs.test') ORDER BY recipient, sent_at`)
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		keys = append(keys, k)
	}
	want := []string{
		"a1@acme.test licence_expiry_reminder 30d:2027-04-02", "a1@acme.test licence_expiry_reminder 14d:2027-04-02",
		"a1@acme.test licence_expiry_reminder 3d:2027-04-02",
		"c1@cogs.test licence_expiry_reminder 14d:2027-03-13", "c1@cogs.test licence_expiry_reminder 7d:2027-03-13",
		"c1@cogs.test licence_expiry_reminder 3d:2027-03-13",
	}
	if strings.Join(keys, "\n") != strings.Join(want, "\n") {
		t.Errorf("history keys:\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}

	// The bodies: plain text and HTML, with the dashboard link; the client's name escaped in
	// the HTML part.
	for _, m := range srv.Messages() {
		if m.To[0] != "c1@cogs.test" {
			continue
		}
		text, html := m.Part("text/plain"), m.Part("text/html")
		if !strings.Contains(text, "The Optralis licence of <Cogs & Co> expires in 12 days, on Saturday 13 March 2027, 06:00 UTC.") ||
			!strings.Contains(text, "https://app.optralis.test"+reminders.LicencePath) {
			t.Errorf("text part:\n%s", text)
		}
		if !strings.Contains(html, "&lt;Cogs &amp; Co&gt;") || strings.Contains(html, "<Cogs") ||
			!strings.Contains(html, `<a href="https://app.optralis.test/settings/licence">`) {
			t.Errorf("html part:\n%s", html)
		}
		break
	}
	for _, m := range srv.Messages() {
		if m.To[0] == "p1@acme.test" && !strings.Contains(m.Part("text/plain"), "Change it now: https://app.optralis.test"+reminders.PasswordPath) {
			t.Errorf("password text part:\n%s", m.Part("text/plain"))
		}
	}
}

// Without SMTP the reminders are recorded 'skipped' (and not sent later); MaxMails bounds
// a run and the rest wait for the next one.
func TestDisabledMailAndBound(t *testing.T) {
	ctx := context.Background()
	w := world{pool: testenv.NewDB(t, migrate.ModePostgres), d0: time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)}
	c := w.client(t, "Acme", true, w.day(10))
	for i := range 3 {
		w.user(t, c, fmt.Sprintf("a%d@acme.test", i), "admin", true, false, w.day(100))
	}
	deps := reminders.Deps{Pool: w.pool, Mailer: mail.Disabled{Logger: testenv.Discard()}, MaxMails: 2}
	res, err := reminders.Run(ctx, deps, w.day(0))
	if err != nil || res.Skipped != 2 || !res.Deferred {
		t.Fatalf("first run: %+v %v", res, err)
	}
	res, err = reminders.Run(ctx, deps, w.day(0))
	if err != nil || res.Skipped != 1 || res.Deferred {
		t.Fatalf("second run: %+v %v", res, err)
	}
	srv := smtptest.Start(t)
	deps.Mailer = mail.SMTP{Host: srv.Host, Port: srv.Port, From: "noreply@optralis.test"}
	if res, err = reminders.Run(ctx, deps, w.day(1)); err != nil || res != (reminders.Result{}) {
		t.Fatalf("skipped reminders sent later: %+v %v", res, err)
	}
	var n int
	_ = w.pool.QueryRow(ctx, `SELECT count(*) FROM notification_history WHERE status = 'skipped'`).Scan(&n)
	if n != 3 {
		t.Fatalf("%d skipped rows", n)
	}
}

// A run whose context is about to end stops before mailing.
func TestStopsBeforeDeadline(t *testing.T) {
	w := world{pool: testenv.NewDB(t, migrate.ModePostgres), d0: time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)}
	c := w.client(t, "Acme", true, w.day(10))
	w.user(t, c, "a@acme.test", "admin", true, false, w.day(100))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := smtptest.Start(t)
	deps := reminders.Deps{Pool: w.pool, Mailer: mail.SMTP{Host: srv.Host, Port: srv.Port, From: "noreply@optralis.test"}}
	res, err := reminders.Run(ctx, deps, w.day(0)) // 20 s left, the default margin is 30 s
	if err != nil || !res.Deferred || res.Sent != 0 || len(srv.Messages()) != 0 {
		t.Fatalf("%+v %v, %d mails", res, err, len(srv.Messages()))
	}
	deps.Margin = time.Second
	if res, err = reminders.Run(ctx, deps, w.day(0)); err != nil || res.Sent != 1 {
		t.Fatalf("%+v %v", res, err)
	}
}
