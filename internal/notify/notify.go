// Package notify delivers alert notifications: maintenance windows → grouping → dedup →
// delivery with retries → outcome in notification_history (docs/alerting.md), and the
// notification channels' API.
package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	json "github.com/goccy/go-json"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/clock"
)

// Deps are the pipeline's collaborators and its delivery policy. Zero values get the
// defaults below.
type Deps struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// Mail sends email channels' messages (SMTP or SES); nil or mail.Disabled: email
	// notifications are recorded 'skipped'.
	Mail mail.MessageSender
	// HTTP posts webhooks, Slack and Teams messages; nil: NewHTTPClient(Policy, Timeout).
	HTTP *http.Client
	// Policy says which URLs may be reached (NOTIFY_ALLOW_INSECURE_URLS).
	Policy Policy
	// DashboardURL is the base of the links in messages ("": none).
	DashboardURL string
	// Clock stamps the API's rows; nil: the system clock. (The pipeline's rows are
	// stamped with the run's now; webhook signatures with wall time, which receivers
	// compare with theirs.)
	Clock clock.Clock
	// Timeout bounds one delivery attempt; Tries attempts per channel and run, Backoff
	// before the second, doubling after.
	Timeout time.Duration
	Tries   int
	Backoff time.Duration
	// MaxAttempts: a notification that failed this many attempts (over all runs) is given
	// up. StaleAfter: a claim ('sending') older than this is given up, never resent.
	MaxAttempts int
	StaleAfter  time.Duration
	// MaxEvents bounds the events one run handles (the rest wait for the next run).
	MaxEvents int
}

// Defaults of Deps: three attempts of at most 10 s each with 1 s then 2 s between them,
// 33 s at worst per channel, in parallel across channels — within the one-minute cadence.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultTries       = 3
	DefaultBackoff     = time.Second
	DefaultMaxAttempts = 9 // three runs
	DefaultStaleAfter  = 5 * time.Minute
	DefaultMaxEvents   = 5000
)

func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.Timeout <= 0 {
		d.Timeout = DefaultTimeout
	}
	if d.Tries <= 0 {
		d.Tries = DefaultTries
	}
	if d.Backoff <= 0 {
		d.Backoff = DefaultBackoff
	}
	if d.MaxAttempts <= 0 {
		d.MaxAttempts = DefaultMaxAttempts
	}
	if d.StaleAfter <= 0 {
		d.StaleAfter = DefaultStaleAfter
	}
	if d.MaxEvents <= 0 {
		d.MaxEvents = DefaultMaxEvents
	}
	if d.HTTP == nil {
		d.HTTP = NewHTTPClient(d.Policy, d.Timeout)
	}
	return d
}

// Result counts what a run did: rows of notification_history (one per channel and event)
// sent, muted, failed (to be retried or given up) and skipped (mail disabled); Messages is
// the messages delivered (one per channel, grouping its events).
type Result struct {
	Sent, Muted, Failed, Skipped int
	Messages                     int
	Abandoned                    int // stale claims given up
}

// NotificationType is notification_history.notification_type of alert notifications.
const (
	NotificationType     = "alert"
	TestNotificationType = "alert_test"
)

// pair is one (event, channel) the run considers.
type pair struct {
	event    Event
	clientID string
	client   string
	channel  target
	key      string // dedup_key
	muted    bool
}

// Run notifies every alert event (firing or resolved) not yet handed to its channels.
//
// A firing episode is notified unless acknowledged; a resolved one always (also after an
// acknowledgement). An episode that resolved before its firing was notified is notified
// once, as resolved (the event carries triggered_at): its firing is superseded. Inside a
// maintenance window covering the machine at now, the event is recorded 'muted' and
// nothing is sent; a firing alert still firing when the window ends is then notified,
// and the resolution of an alert whose firing was muted for a channel is muted too.
//
// Each (channel, event) is claimed once ('sending', under the unique (channel_id,
// dedup_key)) before delivery: a concurrent or retried run finds the claim and sends
// nothing. 'failed' rows are claimed again by later runs until MaxAttempts; a claim left
// 'sending' by a crashed run is given up after StaleAfter (at most once, never a storm).
func Run(ctx context.Context, d Deps, now time.Time) (Result, error) {
	d = d.withDefaults()
	var res Result
	n, err := abandonStale(ctx, d, now)
	if err != nil {
		return res, err
	}
	res.Abandoned = n
	pairs, eventIDs, err := candidates(ctx, d, now)
	if err != nil {
		return res, err
	}
	// Muted: recorded, nothing sent.
	var mutedPairs, toClaim []pair
	for _, p := range pairs {
		if p.muted {
			mutedPairs = append(mutedPairs, p)
		} else {
			toClaim = append(toClaim, p)
		}
	}
	if res.Muted, err = recordMuted(ctx, d, mutedPairs, now); err != nil {
		return res, err
	}
	// Group by channel: one message per (client, channel) for this run.
	byChannel := map[string][]pair{}
	var order []string
	for _, p := range toClaim {
		if _, ok := byChannel[p.channel.ID]; !ok {
			order = append(order, p.channel.ID)
		}
		byChannel[p.channel.ID] = append(byChannel[p.channel.ID], p)
	}
	type job struct {
		msg Message
		t   target
	}
	var jobs []job
	for _, chID := range order {
		ps := byChannel[chID]
		msgID := uuid.NewString()
		claimed, err := claim(ctx, d, ps, msgID, now)
		if err != nil {
			return res, err
		}
		if len(claimed) == 0 {
			continue
		}
		m := Message{ID: msgID, ClientID: ps[0].clientID, ClientName: ps[0].client, DashboardURL: d.DashboardURL}
		for _, p := range claimed {
			m.Events = append(m.Events, p.event)
		}
		t := ps[0].channel
		if t.Kind == "email" && len(t.Recipients) == 0 {
			if t.Recipients, err = admins(ctx, d.Pool, t.ClientID); err != nil {
				return res, err
			}
		}
		jobs = append(jobs, job{msg: m, t: t})
	}
	// Deliver: channels in parallel, each with its own timeout and retries, so a dead or
	// hanging channel delays no other.
	outcomes := make([]outcome, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcomes[i] = deliver(ctx, d, j.t, j.msg)
		}()
	}
	wg.Wait()
	var firstErr error
	for i, j := range jobs {
		o := outcomes[i]
		status := "sent"
		switch {
		case o.err == errSkipped:
			status = "skipped"
		case o.err != nil:
			status = "failed"
		}
		if err := record(ctx, d, j.msg.ID, status, o, now); err != nil && firstErr == nil {
			firstErr = err
		}
		n := len(j.msg.Events)
		switch status {
		case "sent":
			res.Sent += n
			res.Messages++
			d.Logger.InfoContext(ctx, "notification sent", "channel_id", j.t.ID, "kind", j.t.Kind, "events", n, "message_id", j.msg.ID, "attempts", o.attempts)
		case "skipped":
			res.Skipped += n
			d.Logger.InfoContext(ctx, "notification not sent: mail disabled", "channel_id", j.t.ID, "events", n)
		default:
			res.Failed += n
			d.Logger.WarnContext(ctx, "notification failed", "channel_id", j.t.ID, "kind", j.t.Kind, "events", n,
				"message_id", j.msg.ID, "attempts", o.attempts, "given_up", o.permanent, "error", o.err.Error())
		}
	}
	if firstErr != nil {
		return res, firstErr
	}
	if err := finalize(ctx, d, eventIDs, now); err != nil {
		return res, err
	}
	if res.Sent+res.Muted+res.Failed+res.Skipped+res.Abandoned > 0 {
		d.Logger.InfoContext(ctx, "[Notify] run", "sent", res.Sent, "messages", res.Messages, "muted", res.Muted,
			"failed", res.Failed, "skipped", res.Skipped, "abandoned", res.Abandoned)
	}
	return res, nil
}

// abandonStale gives up the claims a crashed run left 'sending': whether that run
// delivered is unknown, and resending could repeat a message, so they are not retried.
func abandonStale(ctx context.Context, d Deps, now time.Time) (int, error) {
	tag, err := d.Pool.Exec(ctx, `
		UPDATE notification_history SET status = 'failed', attempts = GREATEST(attempts, $3),
			error = 'abandoned: the run that claimed it recorded no outcome (not resent: at most once)'
		WHERE notification_type = $4 AND status = 'sending' AND channel_id IS NOT NULL AND sent_at < $1::timestamptz - $2::interval`,
		now, fmt.Sprintf("%d seconds", int(d.StaleAfter/time.Second)), d.MaxAttempts, NotificationType)
	if err != nil {
		return 0, fmt.Errorf("notify: abandon stale claims: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// severityRank orders severities for min_severity.
const severityRank = `CASE %s WHEN 'info' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END`

// candidatesSQL: the events to notify ($1 now, $2 limit, $3 max attempts), each with every
// enabled channel of its client at or below its severity, whether a maintenance window
// covers the machine at now, and the channel's notification row when one exists. Pairs
// already final (sent, skipped, muted resolution, given up) or in flight are left out.
var candidatesSQL = fmt.Sprintf(`
	WITH ev AS (
		SELECT h.id, h.client_id::text AS client_id, h.state, h.rule_id::text AS rule_id, h.rule_name, h.metric_type, h.severity,
			h.machine_id::text AS machine_id, COALESCE(m.hostname, '') AS hostname, COALESCE(h.last_value, h.value) AS value, h.threshold,
			h.started_at, h.triggered_at, h.resolved_at, h.details,
			EXISTS (SELECT 1 FROM maintenance_windows w
				WHERE w.client_id = h.client_id
				  AND optralis_window_covers(w.starts_at, w.duration_seconds, w.recurrence, w.recurrence_until, $1)
				  AND ((w.scope_group_id IS NULL AND w.scope_machine_id IS NULL)
				       OR w.scope_machine_id = h.machine_id
				       OR EXISTS (SELECT 1 FROM machine_group_members gm
				                  WHERE gm.group_id = w.scope_group_id AND gm.machine_id = h.machine_id))) AS in_window
		FROM alert_rule_history h LEFT JOIN machines m ON m.id = h.machine_id
		WHERE (h.state = 'firing' AND h.firing_notified_at IS NULL AND h.acknowledged_at IS NULL)
		   OR (h.state = 'resolved' AND h.resolved_notified_at IS NULL)
		ORDER BY h.client_id, h.id
		LIMIT $2
	)
	SELECT ev.id::text, ev.client_id, ev.state, ev.rule_id, ev.rule_name, ev.metric_type, ev.severity, ev.machine_id,
		ev.hostname, ev.value, ev.threshold, ev.started_at, ev.triggered_at, ev.resolved_at, ev.details, ev.in_window,
		cl.name, c.id::text, c.name, c.kind, c.recipients, COALESCE(c.url, ''), COALESCE(c.secret, ''),
		nh.status, COALESCE(nh.attempts, 0), fh.status
	FROM ev
	JOIN clients cl ON cl.id = ev.client_id::uuid
	JOIN notification_channels c ON c.client_id = ev.client_id::uuid AND c.enabled
		AND %s <= %s
	LEFT JOIN notification_history nh ON nh.channel_id = c.id
		AND nh.dedup_key = 'alert:' || ev.id || ':' || ev.state
	LEFT JOIN notification_history fh ON ev.state = 'resolved' AND fh.channel_id = c.id
		AND fh.dedup_key = 'alert:' || ev.id || ':firing'
	WHERE nh.status IS NULL OR (nh.status = 'failed' AND nh.attempts < $3)
		OR (nh.status = 'muted' AND ev.state = 'firing')
	ORDER BY ev.client_id, c.id, ev.id`,
	fmt.Sprintf(severityRank, "c.min_severity"), fmt.Sprintf(severityRank, "ev.severity"))

func candidates(ctx context.Context, d Deps, now time.Time) ([]pair, []string, error) {
	// The events selected (with or without channels) are the ones finalize looks at.
	rows, err := d.Pool.Query(ctx, `
		SELECT h.id::text FROM alert_rule_history h
		WHERE (h.state = 'firing' AND h.firing_notified_at IS NULL AND h.acknowledged_at IS NULL)
		   OR (h.state = 'resolved' AND h.resolved_notified_at IS NULL)
		ORDER BY h.client_id, h.id LIMIT $1`, d.MaxEvents)
	if err != nil {
		return nil, nil, fmt.Errorf("notify: events: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, nil, fmt.Errorf("notify: events: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil, nil
	}
	rows, err = d.Pool.Query(ctx, candidatesSQL, now, d.MaxEvents, d.MaxAttempts)
	if err != nil {
		return nil, nil, fmt.Errorf("notify: candidates: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pair, error) {
		var p pair
		var e Event
		var details []byte
		var inWindow bool
		var status, firingStatus *string
		var attempts int
		err := r.Scan(&e.AlertID, &p.clientID, &e.State, &e.Rule.ID, &e.Rule.Name, &e.Rule.Metric, &e.Severity,
			&e.Machine.ID, &e.Machine.Hostname, &e.Value, &e.Threshold, &e.StartedAt, &e.TriggeredAt, &e.ResolvedAt, &details,
			&inWindow, &p.client, &p.channel.ID, &p.channel.Name, &p.channel.Kind, &p.channel.Recipients, &p.channel.URL,
			&p.channel.Secret, &status, &attempts, &firingStatus)
		if err != nil {
			return p, err
		}
		if len(details) == 0 {
			details = []byte("{}")
		}
		e.Details = json.RawMessage(details)
		p.event, p.channel.ClientID = e, p.clientID
		p.key = "alert:" + e.AlertID + ":" + e.State
		p.muted = inWindow || (e.State == "resolved" && firingStatus != nil && *firingStatus == "muted")
		return p, nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("notify: candidates: %w", err)
	}
	return out, ids, nil
}

func newID() string { return uuid.NewString() }
