package notify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// maxErrorLen bounds the error text kept in notification_history.
const maxErrorLen = 1000

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8Valid(s) {
		s = s[:len(s)-1]
	}
	return s
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }

// recipientOf is what notification_history.recipient shows of a channel: its addresses
// or its masked URL, never a secret.
func recipientOf(t target) string {
	if t.Kind == "email" {
		if len(t.Recipients) == 0 {
			return "client administrators"
		}
		return truncate(strings.Join(t.Recipients, ", "), 255)
	}
	return truncate(MaskURL(t.URL), 255)
}

// recordMuted writes a 'muted' row for each pair (once: an existing row stays as it is).
func recordMuted(ctx context.Context, d Deps, ps []pair, now time.Time) (int, error) {
	if len(ps) == 0 {
		return 0, nil
	}
	var clients, channels, kinds, alerts, machines, recips, subjects, keys []string
	for _, p := range ps {
		clients = append(clients, p.clientID)
		channels = append(channels, p.channel.ID)
		kinds = append(kinds, p.channel.Kind)
		alerts = append(alerts, p.event.AlertID)
		m := ""
		if p.event.Machine.ID != nil {
			m = *p.event.Machine.ID
		}
		machines = append(machines, m)
		recips = append(recips, recipientOf(p.channel))
		subjects = append(subjects, Message{ClientName: p.client, Events: []Event{p.event}}.Subject())
		keys = append(keys, p.key)
	}
	tag, err := d.Pool.Exec(ctx, `
		INSERT INTO notification_history (client_id, machine_id, channel, notification_type, recipient, subject,
			status, dedup_key, sent_at, channel_id, alert_id, attempts)
		SELECT c::uuid, NULLIF(m, '')::uuid, k, $9, r, s, 'muted', key, $10, ch::uuid, a::uuid, 0
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
			AS x(c, ch, k, a, m, r, s, key)
		ON CONFLICT (channel_id, dedup_key) WHERE channel_id IS NOT NULL AND dedup_key IS NOT NULL DO NOTHING`,
		clients, channels, kinds, alerts, machines, recips, subjects, keys, NotificationType, now)
	if err != nil {
		return 0, fmt.Errorf("notify: record muted: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// claim takes the channel's pairs for message msgID: a new row, or a failed one not yet
// given up, or a muted firing whose window has ended, becomes 'sending'. It returns the
// pairs it claimed; the others belong to another run (or are final).
func claim(ctx context.Context, d Deps, ps []pair, msgID string, now time.Time) ([]pair, error) {
	var clients, channels, kinds, alerts, machines, recips, subjects, keys []string
	for _, p := range ps {
		clients = append(clients, p.clientID)
		channels = append(channels, p.channel.ID)
		kinds = append(kinds, p.channel.Kind)
		alerts = append(alerts, p.event.AlertID)
		m := ""
		if p.event.Machine.ID != nil {
			m = *p.event.Machine.ID
		}
		machines = append(machines, m)
		recips = append(recips, recipientOf(p.channel))
		subjects = append(subjects, Message{ClientName: p.client, Events: []Event{p.event}}.Subject())
		keys = append(keys, p.key)
	}
	rows, err := d.Pool.Query(ctx, `
		INSERT INTO notification_history AS nh (client_id, machine_id, channel, notification_type, recipient, subject,
			status, dedup_key, sent_at, channel_id, alert_id, message_id, attempts)
		SELECT c::uuid, NULLIF(m, '')::uuid, k, $9, r, s, 'sending', key, $10, ch::uuid, a::uuid, $11, 0
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
			AS x(c, ch, k, a, m, r, s, key)
		ON CONFLICT (channel_id, dedup_key) WHERE channel_id IS NOT NULL AND dedup_key IS NOT NULL
		DO UPDATE SET status = 'sending', error = NULL, message_id = EXCLUDED.message_id, sent_at = EXCLUDED.sent_at,
			recipient = EXCLUDED.recipient
		WHERE (nh.status = 'failed' AND nh.attempts < $12) OR (nh.status = 'muted' AND nh.dedup_key LIKE '%:firing')
		RETURNING nh.dedup_key`,
		clients, channels, kinds, alerts, machines, recips, subjects, keys, NotificationType, now, msgID, d.MaxAttempts)
	if err != nil {
		return nil, fmt.Errorf("notify: claim: %w", err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("notify: claim: %w", err)
	}
	won := make(map[string]bool, len(got))
	for _, k := range got {
		won[k] = true
	}
	var out []pair
	for _, p := range ps {
		if won[p.key] {
			out = append(out, p)
		}
	}
	return out, nil
}

// record sets the outcome of message msgID's rows. A failure a retry cannot cure is given
// up at once (attempts = MaxAttempts).
func record(ctx context.Context, d Deps, msgID, status string, o outcome, now time.Time) error {
	var errText *string
	if o.err != nil {
		s := truncate(o.err.Error(), maxErrorLen)
		errText = &s
	}
	giveUp := status == "failed" && o.permanent
	// A cancelled run still records what it tried.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := d.Pool.Exec(ctx, `
		UPDATE notification_history SET status = $2, error = $3, sent_at = $4,
			attempts = CASE WHEN $5 THEN GREATEST(attempts + $6, $7) ELSE attempts + $6 END
		WHERE message_id = $1 AND status = 'sending'`, msgID, status, errText, now, giveUp, o.attempts, d.MaxAttempts)
	if err != nil {
		return fmt.Errorf("notify: record: %w", err)
	}
	return nil
}

// finalSQL is true when channel c's row for event h's dedup key (given as an expression)
// is final: sent, skipped, given up, or muted (a muted firing is final only once the
// alert resolved).
const finalSQL = `EXISTS (SELECT 1 FROM notification_history nh WHERE nh.channel_id = c.id AND nh.dedup_key = %s
	AND (nh.status IN ('sent', 'skipped') OR (nh.status = 'failed' AND nh.attempts >= $3) OR (nh.status = 'muted' AND %s)))`

// finalize marks the events whose every matching enabled channel has a final row as
// notified. A resolved event's firing is superseded (firing_notified_at set if unset).
func finalize(ctx context.Context, d Deps, ids []string, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	rank := func(col string) string { return fmt.Sprintf(severityRank, col) }
	_, err := d.Pool.Exec(ctx, fmt.Sprintf(`
		UPDATE alert_rule_history h SET firing_notified_at = $2
		WHERE h.id = ANY($1::uuid[]) AND h.state = 'firing' AND h.firing_notified_at IS NULL
		  AND NOT EXISTS (SELECT 1 FROM notification_channels c
		      WHERE c.client_id = h.client_id AND c.enabled AND %s <= %s
		        AND NOT `+finalSQL+`)`, rank("c.min_severity"), rank("h.severity"), `'alert:' || h.id || ':firing'`, "FALSE"),
		ids, now, d.MaxAttempts)
	if err != nil {
		return fmt.Errorf("notify: finalize firing: %w", err)
	}
	_, err = d.Pool.Exec(ctx, fmt.Sprintf(`
		UPDATE alert_rule_history h SET resolved_notified_at = $2, firing_notified_at = COALESCE(h.firing_notified_at, $2)
		WHERE h.id = ANY($1::uuid[]) AND h.state = 'resolved' AND h.resolved_notified_at IS NULL
		  AND NOT EXISTS (SELECT 1 FROM notification_channels c
		      WHERE c.client_id = h.client_id AND c.enabled AND %s <= %s
		        AND NOT `+finalSQL+`)`, rank("c.min_severity"), rank("h.severity"), `'alert:' || h.id || ':resolved'`, "TRUE"),
		ids, now, d.MaxAttempts)
	if err != nil {
		return fmt.Errorf("notify: finalize resolved: %w", err)
	}
	return nil
}

// admins are the addresses of the client's active administrators (an email channel
// without recipients).
func admins(ctx context.Context, pool *pgxpool.Pool, clientID string) ([]string, error) {
	rows, err := pool.Query(ctx, `SELECT email FROM users WHERE client_id = $1 AND role = 'admin' AND is_active ORDER BY email`, clientID)
	if err != nil {
		return nil, fmt.Errorf("notify: admins: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("notify: admins: %w", err)
	}
	return out, nil
}
