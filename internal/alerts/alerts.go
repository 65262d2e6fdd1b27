// Package alerts serves a client's alerts (alert_rule_history episodes: pending, firing,
// resolved) to its users, and their acknowledgement.
package alerts

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/validate"
)

// Paging bounds.
const (
	DefaultLimit = 50
	MaxLimit     = 200
	// MaxComment is the longest acknowledgement comment, in characters.
	MaxComment = 1000
)

// Alert is one episode of a (rule, machine).
type Alert struct {
	ID           string          `json:"id"`
	Rule         Rule            `json:"rule"`
	Machine      *Machine        `json:"machine"` // null if the episode names no machine
	State        string          `json:"state"`
	Severity     string          `json:"severity"`
	StartedAt    time.Time       `json:"started_at"`
	TriggeredAt  *time.Time      `json:"triggered_at"` // null while pending
	ResolvedAt   *time.Time      `json:"resolved_at"`
	LastValue    *float64        `json:"last_value"`
	Threshold    *float64        `json:"threshold"`
	Message      string          `json:"message"`
	Details      json.RawMessage `json:"details"`
	Acknowledged *Ack            `json:"acknowledged"` // null until acknowledged
}

// Rule is the rule an alert belongs to. ID, Kind and Metric are null once the rule was
// deleted; Name is then the name it had.
type Rule struct {
	ID     *string `json:"id"`
	Name   string  `json:"name"`
	Kind   *string `json:"kind"`
	Metric *string `json:"metric"`
}

// Machine names the alert's machine.
type Machine struct {
	ID          string  `json:"id"`
	Hostname    string  `json:"hostname"`
	DisplayName *string `json:"display_name"`
}

// Ack is who acknowledged an alert, when, and why.
type Ack struct {
	At      time.Time `json:"at"`
	By      *User     `json:"by"` // null once the account is gone
	Comment *string   `json:"comment"`
}

// User is an acknowledging user.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// Page is one page of alerts.
type Page struct {
	Alerts     []Alert `json:"alerts"`
	NextCursor *string `json:"next_cursor"` // null on the last page
}

// States a query may ask for: one state, "open" (pending and firing) or "all".
var States = []string{"pending", "firing", "resolved", "open", "all"}

// Query is a validated GET /api/alerts query.
type Query struct {
	State        string // default "firing": what needs attention now
	Severity     string
	MachineID    string
	RuleID       string
	Acknowledged *bool
	From, To     *time.Time // on started_at: from inclusive, to exclusive
	Limit        int
	After        *cursor
}

// cursor is the last alert of a page. Pages follow the index (client_id, started_at DESC,
// id): newest first, ties by id.
type cursor = httpx.TimeCursor

// ParseQuery validates the query string, naming each bad parameter.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{State: "firing", Limit: DefaultLimit}
	bad := map[string]string{}
	at := func(name, s string) *time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !validate.Date(t) {
			bad[name] = "must be an RFC 3339 date-time such as 2026-12-01T00:00:00Z"
			return nil
		}
		return &t
	}
	for name, vs := range v {
		if len(vs) > 1 {
			bad[name] = "given more than once"
			continue
		}
		s := vs[0]
		switch name {
		case "state":
			if !slices.Contains(States, s) {
				bad[name] = "must be one of " + strings.Join(States, ", ")
			}
			q.State = s
		case "severity":
			if !slices.Contains([]string{"info", "warning", "critical"}, s) {
				bad[name] = "must be one of info, warning, critical"
			}
			q.Severity = s
		case "machine_id", "rule_id":
			id, ok := httpx.ParseID(s)
			if !ok {
				bad[name] = "must be an id (uuid)"
			}
			if name == "machine_id" {
				q.MachineID = id
			} else {
				q.RuleID = id
			}
		case "acknowledged":
			b, err := strconv.ParseBool(s)
			if err != nil || (s != "true" && s != "false") {
				bad[name] = "must be true or false"
			}
			q.Acknowledged = &b
		case "from":
			q.From = at(name, s)
		case "to":
			q.To = at(name, s)
		case "limit":
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > MaxLimit {
				bad[name] = fmt.Sprintf("must be a whole number from 1 to %d", MaxLimit)
			}
			q.Limit = n
		case "cursor":
			c, ok := httpx.ParseTimeCursor(s)
			if !ok {
				bad[name] = "not a cursor of this list: start again without a cursor"
				continue
			}
			q.After = &c
		default:
			bad[name] = "unknown parameter"
		}
	}
	if q.From != nil && q.To != nil && !q.To.After(*q.From) {
		bad["to"] = "must be after from"
	}
	if len(bad) > 0 {
		return Query{}, apperr.InvalidFields(bad)
	}
	return q, nil
}

// ErrNotFound answers an alert that is not the caller's client's (or does not exist).
var ErrNotFound = apperr.New(apperr.NotFound, "alert not found")

// selectSQL reads Alerts from alert_rule_history h; everything it joins is held to h's
// client, so no join can show another client's rule, machine or user.
const selectSQL = `
	SELECT h.id::text, h.rule_id::text, COALESCE(r.name, h.rule_name), r.kind, r.metric,
	       m.id::text, m.hostname, m.display_name,
	       h.state, h.severity, h.started_at, h.triggered_at, h.resolved_at, h.last_value, h.threshold, h.message,
	       h.details, h.acknowledged_at, h.acknowledged_by::text, u.email, h.ack_comment
	FROM alert_rule_history h
	LEFT JOIN alert_rules r ON r.id = h.rule_id AND r.client_id = h.client_id
	LEFT JOIN machines m ON m.id = h.machine_id AND m.client_id = h.client_id
	LEFT JOIN users u ON u.id = h.acknowledged_by AND u.client_id = h.client_id`

func scan(row pgx.Row) (Alert, error) {
	var a Alert
	var machineID, hostname, ackBy, ackEmail *string
	var displayName *string
	var ackAt *time.Time
	var comment *string
	var startedAt *time.Time
	err := row.Scan(&a.ID, &a.Rule.ID, &a.Rule.Name, &a.Rule.Kind, &a.Rule.Metric, &machineID, &hostname, &displayName,
		&a.State, &a.Severity, &startedAt, &a.TriggeredAt, &a.ResolvedAt, &a.LastValue, &a.Threshold, &a.Message,
		&a.Details, &ackAt, &ackBy, &ackEmail, &comment)
	if err != nil {
		return a, err
	}
	if startedAt != nil {
		a.StartedAt = *startedAt
	}
	if machineID != nil {
		a.Machine = &Machine{ID: *machineID, Hostname: *hostname, DisplayName: displayName}
	}
	if ackAt != nil {
		a.Acknowledged = &Ack{At: *ackAt, Comment: comment}
		if ackBy != nil {
			a.Acknowledged.By = &User{ID: *ackBy}
			if ackEmail != nil {
				a.Acknowledged.By.Email = *ackEmail
			}
		}
	}
	return a, nil
}

// List returns a page of the client's alerts, newest first. Episodes without started_at
// (none: migration 00013 filled the old rows, the evaluator sets it) are not listed.
func List(ctx context.Context, pool *pgxpool.Pool, clientID string, q Query) (Page, error) {
	a := []any{clientID}
	add := func(v any) string { a = append(a, v); return "$" + strconv.Itoa(len(a)) }
	where := []string{"h.client_id = $1", "h.started_at IS NOT NULL"}
	switch q.State {
	case "open":
		where = append(where, "h.resolved_at IS NULL")
	case "all":
	default:
		where = append(where, "h.state = "+add(q.State))
	}
	if q.Severity != "" {
		where = append(where, "h.severity = "+add(q.Severity))
	}
	if q.MachineID != "" {
		where = append(where, "h.machine_id = "+add(q.MachineID))
	}
	if q.RuleID != "" {
		where = append(where, "h.rule_id = "+add(q.RuleID))
	}
	if q.Acknowledged != nil {
		if *q.Acknowledged {
			where = append(where, "h.acknowledged_at IS NOT NULL")
		} else {
			where = append(where, "h.acknowledged_at IS NULL")
		}
	}
	if q.From != nil {
		where = append(where, "h.started_at >= "+add(*q.From))
	}
	if q.To != nil {
		where = append(where, "h.started_at < "+add(*q.To))
	}
	if q.After != nil {
		t, id := add(q.After.At), add(q.After.ID)
		where = append(where, fmt.Sprintf("(h.started_at < %[1]s OR (h.started_at = %[1]s AND h.id > %[2]s::uuid))", t, id))
	}
	rows, err := pool.Query(ctx, selectSQL+` WHERE `+strings.Join(where, " AND ")+`
		ORDER BY h.started_at DESC, h.id LIMIT `+add(q.Limit+1), a...)
	if err != nil {
		return Page{}, db.Error(err, "alerts: list")
	}
	defer rows.Close()
	page := Page{Alerts: make([]Alert, 0, q.Limit)}
	for rows.Next() {
		if len(page.Alerts) == q.Limit {
			last := page.Alerts[q.Limit-1]
			c := cursor{At: last.StartedAt, ID: last.ID}.Encode()
			page.NextCursor = &c
			break
		}
		x, err := scan(rows)
		if err != nil {
			return Page{}, db.Error(err, "alerts: list")
		}
		page.Alerts = append(page.Alerts, x)
	}
	return page, db.Error(rows.Err(), "alerts: list")
}

// Get returns one alert of the client.
func Get(ctx context.Context, q db.Querier, clientID, id string) (Alert, error) {
	a, err := scan(q.QueryRow(ctx, selectSQL+` WHERE h.id = $1 AND h.client_id = $2`, id, clientID))
	return a, db.Error(err, "alerts: get", db.On(db.NoRows, ErrNotFound))
}

// ErrResolved refuses to acknowledge an alert that is over.
var ErrResolved = apperr.New(apperr.Conflict, "the alert is resolved: there is nothing left to acknowledge")

// Comment checks an acknowledgement comment: at most MaxComment characters of text, line
// breaks and tabs allowed; surrounding white space is trimmed.
func Comment(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxComment ||
		strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' }) >= 0 {
		return s, fmt.Errorf("must be at most %d characters of text", MaxComment)
	}
	return s, nil
}

// Actor is who acknowledges.
type Actor = principal.Actor

// Acknowledge records that a.UserID saw an open (pending or firing) alert, with an
// optional comment ("" stores NULL). Acknowledging again replaces the acknowledgement
// (who, when, comment): the latest one is shown. An acknowledged alert is not notified
// again until it resolves; its resolution is. A resolved alert answers ErrResolved.
func Acknowledge(ctx context.Context, pool *pgxpool.Pool, a Actor, id, comment string, now time.Time) (Alert, error) {
	var out Alert
	err := db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		var state string
		var machineID, ruleID *string
		var previous *time.Time
		if err := tx.QueryRow(ctx, `
			SELECT state, machine_id::text, rule_id::text, acknowledged_at FROM alert_rule_history
			WHERE id = $1 AND client_id = $2 FOR UPDATE`, id, a.ClientID).Scan(&state, &machineID, &ruleID, &previous); err != nil {
			return db.Error(err, "alerts: lock", db.On(db.NoRows, ErrNotFound))
		}
		if state == "resolved" {
			return ErrResolved
		}
		if _, err := tx.Exec(ctx, `
			UPDATE alert_rule_history SET acknowledged_at = $3, acknowledged_by = $4, ack_comment = NULLIF($5, '')
			WHERE id = $1 AND client_id = $2`, id, a.ClientID, tx.Now, a.UserID, comment); err != nil {
			return db.Error(err, "alerts: acknowledge")
		}
		details := map[string]any{"alert_id": id, "state": state, "comment": comment, "again": previous != nil}
		if ruleID != nil {
			details["rule_id"] = *ruleID
		}
		e := audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP, Action: "alert_acknowledged", Details: details}
		if machineID != nil {
			e.MachineID = *machineID
		}
		if err := audit.Log(ctx, tx, tx.Now, e); err != nil {
			return err
		}
		var err error
		out, err = Get(ctx, tx, a.ClientID, id)
		return err
	})
	return out, err
}
