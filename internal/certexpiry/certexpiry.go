// Package certexpiry is the daily certificate-expiry digest: each client's active admins get
// one mail a day listing the machines whose active certificate expires within 30 days (the
// agent has not renewed it), and every mail is recorded in notification_history.
package certexpiry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/db"
)

// NotificationType is the digest's notification_history.notification_type.
const NotificationType = "certificate_expiry_digest"

// MaxListed bounds the machines one mail lists; the rest are counted ("and N more").
const MaxListed = 200

// Deps are what the job needs.
type Deps struct {
	Pool   *pgxpool.Pool
	Mailer mail.MessageSender // mail.Disabled: rows are recorded "skipped"
	Logger *slog.Logger
	// DashboardURL is where the mail's link points (the dashboard's machine list).
	DashboardURL string
	// MaxClients bounds the clients handled by one run; 0: 1000.
	MaxClients int
	// Margin is how long before the context's deadline the run stops; 0: 20 s.
	Margin time.Duration
}

// Result counts what a run did.
type Result struct {
	Clients  int // clients with expiring machines that were handled
	Machines int // expiring machines of those clients
	Sent     int
	Failed   int
	Skipped  int // recorded without sending (mail disabled)
}

// ErrIncomplete ends a run that stopped before handling every client (time or MaxClients):
// the run is marked failed so that Lambda's retry handles the rest the same day; clients
// already mailed are not mailed again.
var ErrIncomplete = errors.New("certexpiry: stopped before every client was handled; the retry continues")

// ErrNotSent ends a run in which some digests could not be sent (recorded "failed"): the
// run is marked failed so that Lambda's retry tries them again (and, if the mail server
// stays down, the invocation reaches the jobs' dead-letter queue).
var ErrNotSent = errors.New("certexpiry: some digests could not be sent; the retry tries them again")

// Machine is one line of the digest.
type Machine struct {
	ID        string
	Hostname  string
	ExpiresAt time.Time
}

// Run sends today's digests (the UTC day of now) that have not been sent yet.
func Run(ctx context.Context, d Deps, now time.Time) (Result, error) {
	var res Result
	maxClients := d.MaxClients
	if maxClients <= 0 {
		maxClients = 1000
	}
	margin := d.Margin
	if margin <= 0 {
		margin = 20 * time.Second
	}
	clients, err := expiringClients(ctx, d.Pool, now)
	if err != nil {
		return res, err
	}
	for i, clientID := range clients {
		if deadline, ok := ctx.Deadline(); (ok && time.Until(deadline) < margin) || i >= maxClients {
			d.Logger.WarnContext(ctx, "certexpiry stopped early", "clients_done", i, "clients_left", len(clients)-i)
			logResult(ctx, d.Logger, res)
			return res, ErrIncomplete
		}
		if err := digest(ctx, d, clientID, now, &res); err != nil {
			logResult(ctx, d.Logger, res)
			return res, fmt.Errorf("certexpiry: client %s: %w", clientID, err)
		}
	}
	logResult(ctx, d.Logger, res)
	if res.Failed > 0 {
		return res, ErrNotSent
	}
	return res, nil
}

func logResult(ctx context.Context, logger *slog.Logger, r Result) {
	logger.InfoContext(ctx, "[CertExpiry] digests", "clients", r.Clients, "machines", r.Machines,
		"sent", r.Sent, "failed", r.Failed, "skipped", r.Skipped)
}

// expiringClients are the enabled clients with at least one live machine whose active
// certificate expires in (now, now+30 days] and an active admin not yet sent today's digest,
// in id order: the clients a run has left to do.
func expiringClients(ctx context.Context, q db.Querier, now time.Time) ([]string, error) {
	day := startOfDay(now)
	rows, err := q.Query(ctx, `
		SELECT DISTINCT c.client_id::text
		FROM client_certificates c
		JOIN machines m ON m.id = c.machine_id AND m.client_id = c.client_id AND m.deleted_at IS NULL
		JOIN clients cl ON cl.id = c.client_id AND cl.is_active
		WHERE c.revoked_at IS NULL AND c.expires_at > $4 AND c.expires_at <= $5
		  AND EXISTS (SELECT 1 FROM users u
		              WHERE u.client_id = c.client_id AND u.role = 'admin' AND u.is_active
		                AND NOT EXISTS (`+alreadySent+`))
		ORDER BY 1`, NotificationType, day, day.Add(24*time.Hour), now, now.Add(certs.ExpiringWithin))
	if err != nil {
		return nil, db.Error(err, "certexpiry: clients")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return ids, db.Error(err, "certexpiry: clients")
}

// alreadySent finds user u's digest ($1: the type) of the day [$2, $3), sent or recorded as
// skipped (a failed one is tried again).
const alreadySent = `SELECT 1 FROM notification_history n
	WHERE n.client_id = u.client_id AND n.notification_type = $1 AND n.user_id = u.id
	  AND n.status IN ('sent', 'skipped') AND n.sent_at >= $2 AND n.sent_at < $3`

func startOfDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

type recipient struct{ userID, email string }

// digest mails one client's admins who have no digest today, in one transaction under a
// per-client advisory lock: a concurrent run waits, then finds the rows and sends nothing.
// A mail sent whose row then fails to commit is sent again by the retry (at least once).
func digest(ctx context.Context, d Deps, clientID string, now time.Time, res *Result) error {
	day := startOfDay(now)
	_, disabled := d.Mailer.(mail.Disabled)
	return db.InTxAt(ctx, d.Pool, now, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('certexpiry:' || $1::text, 0))`, clientID); err != nil {
			return db.Error(err, "certexpiry: lock")
		}
		rows, err := tx.Query(ctx, `
			SELECT u.id::text, u.email FROM users u
			WHERE u.client_id = $4 AND u.role = 'admin' AND u.is_active
			  AND NOT EXISTS (`+alreadySent+`)
			ORDER BY u.email`, NotificationType, day, day.Add(24*time.Hour), clientID)
		if err != nil {
			return db.Error(err, "certexpiry: recipients")
		}
		to, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (recipient, error) {
			var x recipient
			return x, r.Scan(&x.userID, &x.email)
		})
		if err != nil {
			return db.Error(err, "certexpiry: recipients")
		}
		if len(to) == 0 {
			return nil // done today already, or no active admin
		}
		machines, total, err := expiringMachines(ctx, tx, clientID, now)
		if err != nil || total == 0 {
			return err
		}
		res.Clients++
		res.Machines += total
		subject, body := Compose(machines, total, now, d.DashboardURL)
		for _, r := range to {
			status, errText := "sent", ""
			switch {
			case disabled:
				status = "skipped"
				res.Skipped++
			default:
				if err := d.Mailer.SendMessage(ctx, mail.Message{To: r.email, Subject: subject, Text: body}); err != nil {
					status, errText = "failed", err.Error()
					res.Failed++
					d.Logger.WarnContext(ctx, "certexpiry: digest not sent", "client_id", clientID, "user_id", r.userID, "error", errText)
				} else {
					res.Sent++
				}
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO notification_history (client_id, user_id, channel, notification_type, recipient, subject, status, error, sent_at)
				VALUES ($1, $2, 'email', $3, $4, $5, $6, NULLIF($7, ''), $8)`,
				clientID, r.userID, NotificationType, r.email, subject, status, errText, tx.Now); err != nil {
				return db.Error(err, "certexpiry: record")
			}
		}
		return nil
	})
}

// expiringMachines lists up to MaxListed of the client's expiring machines, soonest first,
// and counts them all.
func expiringMachines(ctx context.Context, q db.Querier, clientID string, now time.Time) ([]Machine, int, error) {
	rows, err := q.Query(ctx, `
		SELECT m.id::text, m.hostname, c.expires_at, count(*) OVER ()
		FROM client_certificates c
		JOIN machines m ON m.id = c.machine_id AND m.client_id = c.client_id AND m.deleted_at IS NULL
		WHERE c.client_id = $1 AND c.revoked_at IS NULL AND c.expires_at > $2 AND c.expires_at <= $3
		ORDER BY c.expires_at, m.hostname, m.id
		LIMIT $4`, clientID, now, now.Add(certs.ExpiringWithin), MaxListed)
	if err != nil {
		return nil, 0, db.Error(err, "certexpiry: machines")
	}
	var out []Machine
	total := 0
	for rows.Next() {
		var m Machine
		if err := rows.Scan(&m.ID, &m.Hostname, &m.ExpiresAt, &total); err != nil {
			rows.Close()
			return nil, 0, db.Error(err, "certexpiry: machines")
		}
		out = append(out, m)
	}
	return out, total, db.Error(rows.Err(), "certexpiry: machines")
}

// Compose is the digest's subject and plain-text body.
func Compose(machines []Machine, total int, now time.Time, dashboardURL string) (subject, body string) {
	subject = fmt.Sprintf("Optralis: %d machine certificate(s) expire within 30 days", total)
	var b strings.Builder
	b.WriteString("Hello,\n\nThe agent certificates of these machines expire within 30 days and have not been renewed.\n")
	b.WriteString("An agent renews its certificate by itself while it runs and reaches Optralis; a machine\n")
	b.WriteString("listed here is probably offline or runs an agent too old to renew. After expiry the\n")
	b.WriteString("machine can no longer report until the agent is installed again.\n\n")
	for _, m := range machines {
		days := int(m.ExpiresAt.Sub(now).Hours() / 24)
		fmt.Fprintf(&b, "  - %s: expires %s (in %d day(s))\n", m.Hostname, m.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"), days)
	}
	if more := total - len(machines); more > 0 {
		fmt.Fprintf(&b, "  ... and %d more\n", more)
	}
	if dashboardURL != "" {
		fmt.Fprintf(&b, "\nSee them in the dashboard: %s/machines?cert_status=expiring\n", strings.TrimSuffix(dashboardURL, "/"))
	}
	b.WriteString("\nYou receive this digest at most once a day as an administrator of your organisation.\n\nOptralis\n")
	return subject, b.String()
}
