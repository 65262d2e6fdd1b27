package notify

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/principal"
)

// Channel is a notification channel as the API shows it: the URL masked to scheme and
// host, the secret never (has_secret says whether there is one).
type Channel struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	Recipients  []string  `json:"recipients"`
	URLMasked   *string   `json:"url_masked"`
	HasSecret   bool      `json:"has_secret"`
	MinSeverity string    `json:"min_severity"`
	Enabled     bool      `json:"enabled"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Secret is the webhook signing secret, only in the answers that create or rotate it.
	Secret string `json:"secret,omitempty"`
}

// ErrNotFound answers a channel that is not the caller's client's (or does not exist).
var ErrNotFound = apperr.New(apperr.NotFound, "notification channel not found")

// Actor is who makes a change, for the audit log.
type Actor = principal.Actor

const channelColumns = `id::text, name, kind, recipients, url, secret IS NOT NULL, min_severity, enabled, created_at, updated_at`

func scanChannel(row pgx.Row) (Channel, error) {
	var c Channel
	var url *string
	err := row.Scan(&c.ID, &c.Name, &c.Kind, &c.Recipients, &url, &c.HasSecret, &c.MinSeverity, &c.Enabled, &c.CreatedAt, &c.UpdatedAt)
	if url != nil {
		m := MaskURL(*url)
		c.URLMasked = &m
	}
	if c.Recipients == nil {
		c.Recipients = []string{}
	}
	return c, err
}

// ListChannels returns the client's channels, oldest first.
func ListChannels(ctx context.Context, q db.Querier, clientID string) ([]Channel, error) {
	rows, err := q.Query(ctx, `SELECT `+channelColumns+` FROM notification_channels WHERE client_id = $1 ORDER BY created_at, id`, clientID)
	if err != nil {
		return nil, db.Error(err, "notify: list channels")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Channel, error) { return scanChannel(r) })
	if err != nil {
		return nil, db.Error(err, "notify: list channels")
	}
	return out, nil
}

// GetChannel returns one of the client's channels.
func GetChannel(ctx context.Context, q db.Querier, clientID, id string) (Channel, error) {
	c, err := scanChannel(q.QueryRow(ctx, `SELECT `+channelColumns+` FROM notification_channels WHERE id = $1 AND client_id = $2`, id, clientID))
	return c, db.Error(err, "notify: get channel", db.On(db.NoRows, ErrNotFound))
}

// ChannelInput is a validated create or update: nil fields are left as they are.
type ChannelInput struct {
	Name        *string
	Kind        string // create only
	Recipients  []string
	URL         *string
	MinSeverity *string
	Enabled     *bool
	// RotateSecret makes a new webhook secret (create: always for a webhook).
	RotateSecret bool
}

// CreateChannel adds a channel; a webhook gets a new secret, returned once in the answer.
func CreateChannel(ctx context.Context, pool *pgxpool.Pool, a Actor, in ChannelInput, now time.Time) (Channel, error) {
	var c Channel
	var secret *string
	if in.Kind == "webhook" {
		s := NewSecret()
		secret = &s
	}
	recipients := in.Recipients
	if recipients == nil {
		recipients = []string{}
	}
	minSev, enabled := "warning", true
	if in.MinSeverity != nil {
		minSev = *in.MinSeverity
	}
	if in.Enabled != nil {
		enabled = *in.Enabled
	}
	err := db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		var err error
		c, err = scanChannel(tx.QueryRow(ctx, `
			INSERT INTO notification_channels (client_id, name, kind, recipients, url, secret, min_severity, enabled, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULLIF($9, '')::uuid, $10, $10)
			RETURNING `+channelColumns, a.ClientID, *in.Name, in.Kind, recipients, in.URL, secret, minSev, enabled, a.UserID, tx.Now))
		if err != nil {
			return db.Error(err, "notify: create channel")
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP,
			Action: "notification_channel_created", Details: map[string]any{"channel_id": c.ID, "name": c.Name, "kind": c.Kind,
				"recipients": len(recipients), "min_severity": minSev, "enabled": enabled}})
	})
	if err == nil && secret != nil {
		c.Secret = *secret
	}
	return c, err
}

// UpdateChannel changes the fields given; RotateSecret replaces a webhook's secret (the
// answer carries the new one).
func UpdateChannel(ctx context.Context, pool *pgxpool.Pool, a Actor, id string, in ChannelInput, now time.Time) (Channel, error) {
	var c Channel
	var secret *string
	err := db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		old, err := scanChannel(tx.QueryRow(ctx, `SELECT `+channelColumns+` FROM notification_channels WHERE id = $1 AND client_id = $2 FOR UPDATE`, id, a.ClientID))
		if err != nil {
			return db.Error(err, "notify: lock channel", db.On(db.NoRows, ErrNotFound))
		}
		bad := map[string]string{}
		if old.Kind == "email" && in.URL != nil {
			bad["url"] = "an email channel has no url"
		}
		if old.Kind != "email" && in.Recipients != nil {
			bad["recipients"] = "only an email channel has recipients"
		}
		if old.Kind != "webhook" && in.RotateSecret {
			bad["rotate_secret"] = "only a webhook channel has a secret"
		}
		if len(bad) > 0 {
			return apperr.InvalidFields(bad)
		}
		if in.RotateSecret {
			s := NewSecret()
			secret = &s
		}
		c, err = scanChannel(tx.QueryRow(ctx, `
			UPDATE notification_channels SET name = COALESCE($3, name), recipients = COALESCE($4, recipients),
				url = COALESCE($5, url), secret = COALESCE($6, secret), min_severity = COALESCE($7, min_severity),
				enabled = COALESCE($8, enabled), updated_at = $9
			WHERE id = $1 AND client_id = $2 RETURNING `+channelColumns,
			id, a.ClientID, in.Name, in.Recipients, in.URL, secret, in.MinSeverity, in.Enabled, tx.Now))
		if err != nil {
			return db.Error(err, "notify: update channel")
		}
		details := map[string]any{"channel_id": id, "name": c.Name}
		if in.Name != nil && *in.Name != old.Name {
			details["previous_name"] = old.Name
		}
		if in.Recipients != nil {
			details["recipients"] = len(in.Recipients)
		}
		if in.URL != nil {
			details["url_changed"] = true // never the URL: a Slack/Teams URL is a credential
		}
		if in.RotateSecret {
			details["secret_rotated"] = true
		}
		if in.MinSeverity != nil && *in.MinSeverity != old.MinSeverity {
			details["min_severity"], details["previous_min_severity"] = *in.MinSeverity, old.MinSeverity
		}
		if in.Enabled != nil && *in.Enabled != old.Enabled {
			details["enabled"] = *in.Enabled
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP,
			Action: "notification_channel_updated", Details: details})
	})
	if err == nil && secret != nil {
		c.Secret = *secret
	}
	return c, err
}

// DeleteChannel removes a channel; its notification history stays (channel_id NULL).
func DeleteChannel(ctx context.Context, pool *pgxpool.Pool, a Actor, id string, now time.Time) error {
	return db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		var name, kind string
		if err := tx.QueryRow(ctx, `DELETE FROM notification_channels WHERE id = $1 AND client_id = $2 RETURNING name, kind`, id, a.ClientID).
			Scan(&name, &kind); err != nil {
			return db.Error(err, "notify: delete channel", db.On(db.NoRows, ErrNotFound))
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP,
			Action: "notification_channel_deleted", Details: map[string]any{"channel_id": id, "name": name, "kind": kind}})
	})
}

// TestResult is the answer of a test notification.
type TestResult struct {
	Status    string `json:"status"` // delivered | failed | skipped
	Error     string `json:"error,omitempty"`
	Attempts  int    `json:"attempts"`
	MessageID string `json:"message_id"`
}

// SendTest sends a test message to the channel now (one attempt, d.Timeout) and records
// the outcome in notification_history and the audit log.
func SendTest(ctx context.Context, d Deps, a Actor, id string, now time.Time) (TestResult, error) {
	d = d.withDefaults()
	var t target
	var client string
	err := d.Pool.QueryRow(ctx, `
		SELECT c.id::text, c.client_id::text, c.name, c.kind, c.recipients, COALESCE(c.url, ''), COALESCE(c.secret, ''), cl.name
		FROM notification_channels c JOIN clients cl ON cl.id = c.client_id WHERE c.id = $1 AND c.client_id = $2`, id, a.ClientID).
		Scan(&t.ID, &t.ClientID, &t.Name, &t.Kind, &t.Recipients, &t.URL, &t.Secret, &client)
	if err != nil {
		return TestResult{}, db.Error(err, "notify: test channel", db.On(db.NoRows, ErrNotFound))
	}
	if t.Kind == "email" && len(t.Recipients) == 0 {
		if t.Recipients, err = admins(ctx, d.Pool, t.ClientID); err != nil {
			return TestResult{}, err
		}
	}
	msgID := newID()
	d.Tries = 1
	o := deliver(ctx, d, t, Message{ID: msgID, ClientID: t.ClientID, ClientName: client, DashboardURL: d.DashboardURL, Test: true})
	res := TestResult{Status: "delivered", Attempts: o.attempts, MessageID: msgID}
	status := "sent"
	switch {
	case o.err == errSkipped:
		res.Status, status, res.Error = "skipped", "skipped", o.err.Error()
	case o.err != nil:
		res.Status, status, res.Error = "failed", "failed", truncate(o.err.Error(), maxErrorLen)
	}
	var errText *string
	if res.Error != "" {
		errText = &res.Error
	}
	ctx = context.WithoutCancel(ctx)
	err = db.InTxAt(ctx, d.Pool, now, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO notification_history (client_id, user_id, channel, notification_type, recipient, subject, status, error,
				sent_at, channel_id, message_id, attempts)
			VALUES ($1, NULLIF($2, '')::uuid, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			t.ClientID, a.UserID, t.Kind, TestNotificationType, recipientOf(t), truncate(Message{ClientName: client, Test: true}.Subject(), 500),
			status, errText, tx.Now, t.ID, msgID, o.attempts); err != nil {
			return db.Error(err, "notify: record test")
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP,
			Action: "notification_channel_tested", Details: map[string]any{"channel_id": id, "status": res.Status}})
	})
	return res, err
}
