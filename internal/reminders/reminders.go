// Package reminders mails the expiry reminders of the spec: a client's licence 30, 14, 7
// and 3 days before it expires, to every active admin of the (active) client; a user's
// password 30, 10 and 3 days before its 90-day expiry, to the user. The job runs daily at
// 09:00 UTC (routes.Jobs) and records every reminder in notification_history.
//
// Each (user, kind, milestone, expiry date) is mailed at most once. A run mails, per
// recipient and kind, only the most recent milestone reached ("due"), and only while the
// expiry is still ahead: a run after missed days sends the reminder the recipient would
// have had last, never several at once and never a stale one. Sending claims the reminder
// first (an insert into notification_history under a unique index, status 'sending'),
// then mails, then records 'sent' or 'failed'; concurrent or repeated runs find the claim
// and skip. A failed mail is claimed again by a later run while it is still the due one.
package reminders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/auth/mail"
)

// PasswordMaxAge is the password lifetime (auth.PasswordMaxAge, the spec's 90 days),
// restated so the reminders function does not link the authentication package; a test
// keeps the two equal.
const PasswordMaxAge = 90 * 24 * time.Hour

// Kind is a family of reminders: what expires and the spec's milestones, in days before.
type Kind struct {
	Type       string // notification_history.notification_type
	Milestones []int  // descending
}

// The spec's reminders ("Rappels Expiration Licence", "Politique des Mots de Passe").
var (
	Licence  = Kind{Type: "licence_expiry_reminder", Milestones: []int{30, 14, 7, 3}}
	Password = Kind{Type: "password_expiry_reminder", Milestones: []int{30, 10, 3}}
)

// Due is the milestone a recipient should have been reminded at, daysLeft whole UTC days
// before the expiry: the smallest milestone not below daysLeft (ok false beyond the first
// milestone or once the expiry day has passed).
func (k Kind) Due(daysLeft int) (milestone int, ok bool) {
	if daysLeft < 0 {
		return 0, false
	}
	for _, m := range k.Milestones {
		if m >= daysLeft {
			milestone, ok = m, true
		}
	}
	return milestone, ok
}

// Deps are the job's collaborators.
type Deps struct {
	Pool   *pgxpool.Pool
	Mailer mail.MessageSender // mail.Disabled: reminders are recorded 'skipped'
	// DashboardURL is the base of the links in the mails ("": no link).
	DashboardURL string
	Logger       *slog.Logger
	// MaxMails bounds the mails of one run (0: DefaultMaxMails); the rest wait a day.
	MaxMails int
	// Margin stops the run this long before the context's deadline (the Lambda timeout);
	// 0: DefaultMargin.
	Margin time.Duration
}

// Defaults of Deps.
const (
	DefaultMaxMails = 2000
	DefaultMargin   = 30 * time.Second
	// StopAfterFailures consecutive mail failures end the run (the mail server is down):
	// the reminders not tried are found again by the next run.
	StopAfterFailures = 3
)

// Result is what a run did.
type Result struct {
	Sent, Failed, Skipped int
	// Deferred is true when the run stopped before trying every due reminder (time,
	// MaxMails or a failing mail server).
	Deferred bool
}

// reminder is one due mail.
type reminder struct {
	kind      Kind
	userID    string
	clientID  *string
	email     string
	name      string
	client    string // the client's name (licence reminders)
	expiresAt time.Time
	daysLeft  int
	milestone int
	key       string
}

// Run mails the reminders due at now (normally 09:00 UTC).
func Run(ctx context.Context, d Deps, now time.Time) (Result, error) {
	if d.MaxMails <= 0 {
		d.MaxMails = DefaultMaxMails
	}
	if d.Margin <= 0 {
		d.Margin = DefaultMargin
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	var res Result
	var due []reminder
	for _, q := range []func(context.Context, *pgxpool.Pool, time.Time, int) ([]reminder, error){licenceDue, passwordDue} {
		r, err := q(ctx, d.Pool, now, d.MaxMails+1)
		if err != nil {
			return res, err
		}
		due = append(due, r...)
	}
	if len(due) > d.MaxMails {
		due, res.Deferred = due[:d.MaxMails], true
	}
	_, disabled := d.Mailer.(mail.Disabled)
	failures := 0
	for _, r := range due {
		if dl, ok := ctx.Deadline(); (ok && time.Until(dl) < d.Margin) || ctx.Err() != nil || failures >= StopAfterFailures {
			res.Deferred = true
			break
		}
		claimed, err := claim(ctx, d.Pool, r, now)
		if err != nil {
			return res, err
		}
		if !claimed {
			continue // another run has it, or had it
		}
		status, errText := "sent", ""
		switch {
		case disabled:
			status = "skipped"
		default:
			if err := d.Mailer.SendMessage(ctx, render(r, d.DashboardURL)); err != nil {
				status, errText = "failed", err.Error()
			}
		}
		if err := record(ctx, d.Pool, r, status, errText); err != nil {
			return res, err
		}
		attrs := []any{"type", r.kind.Type, "milestone_days", r.milestone, "days_left", r.daysLeft, "user_id", r.userID, "status", status}
		switch status {
		case "sent":
			res.Sent++
			failures = 0
			d.Logger.InfoContext(ctx, "reminder sent", attrs...)
		case "skipped":
			res.Skipped++
			d.Logger.InfoContext(ctx, "reminder not sent: mail disabled", attrs...)
		default:
			res.Failed++
			failures++
			d.Logger.WarnContext(ctx, "reminder failed; a later run retries it", append(attrs, "error", errText)...)
		}
	}
	d.Logger.InfoContext(ctx, "[Reminders] run", "sent", res.Sent, "failed", res.Failed, "skipped", res.Skipped, "deferred", res.Deferred)
	if res.Failed > 0 && res.Sent == 0 {
		return res, fmt.Errorf("reminders: %d mails failed, none sent", res.Failed)
	}
	return res, nil
}

// The due reminders are computed in SQL: whole UTC days left ($2 is today's date), the due
// milestone (the smallest not below the days left), and the key naming it with the expiry
// date. A reminder already recorded under its key is left out unless it failed.
const dueSQL = `
	WITH t AS (
		SELECT x.*, (x.expires_at AT TIME ZONE 'UTC')::date - $2::date AS days_left
		FROM (%s) x
		WHERE x.expires_at > $1 AND x.expires_at < ($2::date + 31)::timestamp AT TIME ZONE 'UTC'
	), m AS (
		SELECT t.*, (SELECT min(ms) FROM unnest($3::int[]) ms WHERE ms >= t.days_left) AS milestone
		FROM t
	), k AS (
		SELECT m.*, m.milestone || 'd:' || to_char(m.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS dedup_key
		FROM m WHERE m.milestone IS NOT NULL
	)
	SELECT k.user_id, k.client_id, k.email, k.name, k.client_name, k.expires_at, k.days_left, k.milestone, k.dedup_key
	FROM k
	WHERE NOT EXISTS (SELECT 1 FROM notification_history h
	                  WHERE h.user_id = k.user_id AND h.notification_type = $4
	                    AND h.dedup_key = k.dedup_key AND h.status <> 'failed')
	ORDER BY k.expires_at, k.user_id
	LIMIT $5`

// licenceDue: every active admin of an active client whose licence expires within 30 days.
func licenceDue(ctx context.Context, pool *pgxpool.Pool, now time.Time, limit int) ([]reminder, error) {
	return query(ctx, pool, Licence, fmt.Sprintf(dueSQL, `
		SELECT u.id AS user_id, c.id AS client_id, u.email, u.name, c.name AS client_name, c.license_expires_at AS expires_at
		FROM clients c JOIN users u ON u.client_id = c.id
		WHERE c.is_active AND c.license_expires_at IS NOT NULL AND u.role = 'admin' AND u.is_active`), now, limit)
}

// passwordDue: every active user (of an active client, or a platform admin) whose
// password expires within 30 days. Users who must change theirs anyway (first login,
// invitation not yet accepted) are left out, as in auth.UsersWithPasswordExpiringOn.
func passwordDue(ctx context.Context, pool *pgxpool.Pool, now time.Time, limit int) ([]reminder, error) {
	return query(ctx, pool, Password, fmt.Sprintf(dueSQL, fmt.Sprintf(`
		SELECT u.id AS user_id, u.client_id, u.email, u.name, COALESCE(c.name, '') AS client_name,
		       u.password_changed_at + interval '%d seconds' AS expires_at
		FROM users u LEFT JOIN clients c ON c.id = u.client_id
		WHERE u.is_active AND COALESCE(c.is_active, TRUE) AND NOT u.must_change_password`, int64(PasswordMaxAge/time.Second))), now, limit)
}

func query(ctx context.Context, pool *pgxpool.Pool, k Kind, sql string, now time.Time, limit int) ([]reminder, error) {
	rows, err := pool.Query(ctx, sql, now, now.UTC().Format(time.DateOnly), k.Milestones, k.Type, limit)
	if err != nil {
		return nil, fmt.Errorf("reminders: %s: %w", k.Type, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (reminder, error) {
		r := reminder{kind: k}
		err := row.Scan(&r.userID, &r.clientID, &r.email, &r.name, &r.client, &r.expiresAt, &r.daysLeft, &r.milestone, &r.key)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("reminders: %s: %w", k.Type, err)
	}
	return out, nil
}

// claim records the reminder as being sent, unless it is recorded already (sent, skipped
// or being sent by another run); a failed one is claimed again.
func claim(ctx context.Context, pool *pgxpool.Pool, r reminder, now time.Time) (bool, error) {
	var id string
	err := pool.QueryRow(ctx, `
		INSERT INTO notification_history (client_id, user_id, channel, notification_type, recipient, subject, status, dedup_key, sent_at)
		VALUES ($1, $2, 'email', $3, $4, $5, 'sending', $6, $7)
		ON CONFLICT (user_id, notification_type, dedup_key) WHERE dedup_key IS NOT NULL
		DO UPDATE SET status = 'sending', error = NULL, recipient = EXCLUDED.recipient,
		              subject = EXCLUDED.subject, sent_at = EXCLUDED.sent_at
		WHERE notification_history.status = 'failed'
		RETURNING id`, r.clientID, r.userID, r.kind.Type, r.email, subject(r), r.key, now).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reminders: claim: %w", err)
	}
	return true, nil
}

// record sets the outcome of a claimed reminder.
func record(ctx context.Context, pool *pgxpool.Pool, r reminder, status, errText string) error {
	var e *string
	if errText != "" {
		if len(errText) > 1000 {
			errText = errText[:1000]
		}
		e = &errText
	}
	// A cancelled run still records the outcome of the mail it tried.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := pool.Exec(ctx, `
		UPDATE notification_history SET status = $4, error = $5
		WHERE user_id = $1 AND notification_type = $2 AND dedup_key = $3 AND status = 'sending'`,
		r.userID, r.kind.Type, r.key, status, e)
	if err != nil {
		return fmt.Errorf("reminders: record: %w", err)
	}
	return nil
}
