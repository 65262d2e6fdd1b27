// Package maintenance is a client's maintenance windows (scheduled, recurring, per client,
// group or machine) that mute alert notifications, and their API.
package maintenance

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/alertrules"
	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/jsonfield"
	"github.com/optralis/optralis/internal/validate"
)

// Bounds and recurrences (migrations/00012).
const (
	MinDuration = 60        // seconds
	MaxDuration = 7 * 86400 // seconds
	MaxNameLen  = 100       // characters
	day         = 86400     // seconds
	week        = 7 * 86400 // seconds
)

// Recurrences a window accepts (UTC).
var Recurrences = []string{"none", "daily", "weekly"}

// Spec is what a window says.
type Spec struct {
	Name            string     `json:"name"`
	GroupID         *string    `json:"group_id"`
	MachineID       *string    `json:"machine_id"`
	StartsAt        time.Time  `json:"starts_at"`
	DurationSeconds int        `json:"duration_seconds"`
	Recurrence      string     `json:"recurrence"`
	RecurrenceUntil *time.Time `json:"recurrence_until"`
}

// Window is a stored window as the API shows it, with its state at the request's instant.
type Window struct {
	ID string `json:"id"`
	Spec
	// Active: the window covers now (optralis_window_covers at the application's clock).
	Active bool `json:"active"`
	// NextStartAt is the first occurrence starting after now; null when none is left.
	NextStartAt *time.Time `json:"next_start_at"`
	CreatedBy   *string    `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// period is a recurrence's period in seconds (0: none).
func period(recurrence string) int64 {
	switch recurrence {
	case "daily":
		return day
	case "weekly":
		return week
	}
	return 0
}

// NextStart is the first occurrence of a window starting strictly after now, or nil.
// Occurrences are starts_at + k·period (UTC), those before recurrence_until.
func NextStart(s Spec, now time.Time) *time.Time {
	if !now.Before(s.StartsAt) {
		p := period(s.Recurrence)
		if p == 0 {
			return nil
		}
		// In Unix seconds: a time.Duration overflows after 292 years.
		start := s.StartsAt.Unix()
		k := (now.Unix()-start)/p + 1
		next := time.Unix(start+k*p, int64(s.StartsAt.Nanosecond())).UTC()
		if s.RecurrenceUntil != nil && !next.Before(*s.RecurrenceUntil) {
			return nil
		}
		return &next
	}
	t := s.StartsAt
	return &t
}

// Body is the JSON of POST /api/maintenance-windows and PATCH .../{id}.
type Body struct {
	Name            jsonfield.Member `json:"name"`
	GroupID         jsonfield.Member `json:"group_id"`
	MachineID       jsonfield.Member `json:"machine_id"`
	StartsAt        jsonfield.Member `json:"starts_at"`
	DurationSeconds jsonfield.Member `json:"duration_seconds"`
	Recurrence      jsonfield.Member `json:"recurrence"`
	RecurrenceUntil jsonfield.Member `json:"recurrence_until"`
}

func (b Body) empty() bool {
	return !(b.Name.Set || b.GroupID.Set || b.MachineID.Set || b.StartsAt.Set || b.DurationSeconds.Set ||
		b.Recurrence.Set || b.RecurrenceUntil.Set)
}

func instant(m jsonfield.Member) (time.Time, bool) {
	s, ok := m.String()
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !validate.Date(t) {
		return time.Time{}, false
	}
	return t.UTC().Truncate(time.Second), true // windows are to the second
}

const instantProblem = "must be an RFC 3339 date-time such as 2026-12-24T22:00:00Z"

// Apply merges the body's members into s and checks the whole window; bad names each
// problem. Scope ownership is checked by the store.
func (b Body) Apply(s Spec, bad map[string]string) Spec {
	if b.Name.Set {
		if v, ok := b.Name.String(); !ok {
			bad["name"] = "must be a string"
		} else if v, err := jsonfield.Text(v, 1, MaxNameLen); err != nil {
			bad["name"] = err.Error()
		} else {
			s.Name = v
		}
	}
	scope := func(m jsonfield.Member, name, what string, dst **string) {
		if !m.Set {
			return
		}
		if m.Null() {
			*dst = nil
			return
		}
		v, ok := m.String()
		if ok {
			if v, err := alertrules.ParseID(what)(v); err == nil {
				*dst = &v
				return
			}
		}
		bad[name] = fmt.Sprintf("must be a %s id (uuid) or null", what)
	}
	scope(b.GroupID, "group_id", "group", &s.GroupID)
	scope(b.MachineID, "machine_id", "machine", &s.MachineID)
	if b.StartsAt.Set {
		if t, ok := instant(b.StartsAt); ok {
			s.StartsAt = t
		} else {
			bad["starts_at"] = instantProblem
		}
	}
	if b.DurationSeconds.Set {
		if n, ok := b.DurationSeconds.Int(); ok {
			s.DurationSeconds = n
		} else {
			bad["duration_seconds"] = "must be a whole number of seconds"
		}
	}
	if b.Recurrence.Set {
		if v, ok := b.Recurrence.String(); ok && slices.Contains(Recurrences, v) {
			s.Recurrence = v
		} else {
			bad["recurrence"] = "must be one of none, daily, weekly"
		}
	}
	if b.RecurrenceUntil.Set {
		if b.RecurrenceUntil.Null() {
			s.RecurrenceUntil = nil
		} else if t, ok := instant(b.RecurrenceUntil); ok {
			s.RecurrenceUntil = &t
		} else {
			bad["recurrence_until"] = instantProblem + " or null"
		}
	}
	if len(bad) > 0 {
		return s
	}
	if s.Recurrence == "none" && !b.RecurrenceUntil.Set {
		s.RecurrenceUntil = nil // left by a former recurrence
	}
	if s.Name == "" {
		bad["name"] = "required"
	}
	if s.StartsAt.IsZero() {
		bad["starts_at"] = "required: " + instantProblem
	}
	switch {
	case s.DurationSeconds == 0 && !b.DurationSeconds.Set:
		bad["duration_seconds"] = "required: from 60 seconds to 7 days (604800)"
	case s.DurationSeconds < MinDuration || s.DurationSeconds > MaxDuration:
		bad["duration_seconds"] = "must be from 60 seconds to 7 days (604800)"
	case period(s.Recurrence) > 0 && int64(s.DurationSeconds) > period(s.Recurrence):
		bad["duration_seconds"] = fmt.Sprintf("must not exceed the %s period (%d seconds)", s.Recurrence, period(s.Recurrence))
	}
	if s.RecurrenceUntil != nil {
		switch {
		case s.Recurrence == "none":
			bad["recurrence_until"] = "only for a daily or weekly window (set recurrence, or null)"
		case !s.RecurrenceUntil.After(s.StartsAt):
			bad["recurrence_until"] = "must be after starts_at"
		}
	}
	if s.GroupID != nil && s.MachineID != nil {
		msg := "give group_id or machine_id, not both (neither: every machine)"
		bad["group_id"], bad["machine_id"] = msg, msg
	}
	return s
}

// ErrNotFound answers a window that is not the caller's client's (or does not exist).
var ErrNotFound = apperr.New(apperr.NotFound, "maintenance window not found")

var errScope = apperr.InvalidFields(map[string]string{"scope": "the group or machine no longer exists"})

// columns selects a Window from maintenance_windows w; $2 is now.
const columns = `w.id::text, w.name, w.scope_group_id::text, w.scope_machine_id::text, w.starts_at, w.duration_seconds,
	w.recurrence, w.recurrence_until,
	optralis_window_covers(w.starts_at, w.duration_seconds, w.recurrence, w.recurrence_until, $2),
	w.created_by::text, w.created_at, w.updated_at`

func scan(row pgx.Row, now time.Time) (Window, error) {
	var w Window
	s := &w.Spec
	err := row.Scan(&w.ID, &s.Name, &s.GroupID, &s.MachineID, &s.StartsAt, &s.DurationSeconds, &s.Recurrence,
		&s.RecurrenceUntil, &w.Active, &w.CreatedBy, &w.CreatedAt, &w.UpdatedAt)
	if err == nil {
		s.StartsAt = s.StartsAt.UTC()
		if s.RecurrenceUntil != nil {
			u := s.RecurrenceUntil.UTC()
			s.RecurrenceUntil = &u
		}
		w.NextStartAt = NextStart(*s, now)
	}
	return w, err
}

// List returns the client's windows by start.
func List(ctx context.Context, q db.Querier, clientID string, now time.Time) ([]Window, error) {
	rows, err := q.Query(ctx, `SELECT `+columns+` FROM maintenance_windows w WHERE w.client_id = $1 ORDER BY w.starts_at, w.id`,
		clientID, now)
	if err != nil {
		return nil, db.Error(err, "maintenance windows: list")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Window, error) { return scan(r, now) })
	if err != nil {
		return nil, db.Error(err, "maintenance windows: list")
	}
	return out, nil
}

// Get returns one window of the client.
func Get(ctx context.Context, q db.Querier, clientID, id string, now time.Time) (Window, error) {
	w, err := scan(q.QueryRow(ctx, `SELECT `+columns+` FROM maintenance_windows w WHERE w.client_id = $1 AND w.id = $3`,
		clientID, now, id), now)
	return w, db.Error(err, "maintenance windows: get", db.On(db.NoRows, ErrNotFound))
}

// Actor is who makes a change.
type Actor = alertrules.Actor

func auditDetails(id string, s Spec) map[string]any {
	d := map[string]any{"window_id": id, "name": s.Name, "starts_at": s.StartsAt, "duration_seconds": s.DurationSeconds,
		"recurrence": s.Recurrence}
	if s.RecurrenceUntil != nil {
		d["recurrence_until"] = *s.RecurrenceUntil
	}
	if s.GroupID != nil {
		d["group_id"] = *s.GroupID
	}
	if s.MachineID != nil {
		d["machine_id"] = *s.MachineID
	}
	return d
}

// Create adds a window from a create body.
func Create(ctx context.Context, pool *pgxpool.Pool, a Actor, b Body, now time.Time) (Window, error) {
	bad := map[string]string{}
	s := b.Apply(Spec{Recurrence: "none"}, bad)
	if len(bad) > 0 {
		return Window{}, apperr.InvalidFields(bad)
	}
	var out Window
	err := db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		if err := alertrules.CheckScope(ctx, tx, a.ClientID, s.GroupID, s.MachineID, bad); err != nil {
			return err
		}
		if len(bad) > 0 {
			return apperr.InvalidFields(bad)
		}
		var id string
		if err := tx.QueryRow(ctx, `
			INSERT INTO maintenance_windows (client_id, name, scope_group_id, scope_machine_id, starts_at, duration_seconds,
				recurrence, recurrence_until, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULLIF($9, '')::uuid, $10, $10) RETURNING id::text`,
			a.ClientID, s.Name, s.GroupID, s.MachineID, s.StartsAt, s.DurationSeconds, s.Recurrence, s.RecurrenceUntil,
			a.UserID, tx.Now).Scan(&id); err != nil {
			return db.Error(err, "maintenance windows: create", db.On(db.ForeignKeyViolation, errScope))
		}
		if err := audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP,
			Action: "maintenance_window_created", Details: auditDetails(id, s)}); err != nil {
			return err
		}
		var err error
		out, err = Get(ctx, tx, a.ClientID, id, tx.Now)
		return err
	})
	return out, err
}

// Update applies a PATCH body to a window; the result is checked whole.
func Update(ctx context.Context, pool *pgxpool.Pool, a Actor, id string, b Body, now time.Time) (Window, error) {
	var out Window
	err := db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		old, err := scan(tx.QueryRow(ctx, `SELECT `+columns+` FROM maintenance_windows w WHERE w.client_id = $1 AND w.id = $3 FOR UPDATE`,
			a.ClientID, tx.Now, id), tx.Now)
		if err != nil {
			return db.Error(err, "maintenance windows: lock", db.On(db.NoRows, ErrNotFound))
		}
		bad := map[string]string{}
		s := b.Apply(old.Spec, bad)
		if len(bad) == 0 {
			// Only a scope this body names is checked (a window kept on a machine deleted
			// since stays editable).
			var group, machine *string
			if b.GroupID.Set {
				group = s.GroupID
			}
			if b.MachineID.Set {
				machine = s.MachineID
			}
			if err := alertrules.CheckScope(ctx, tx, a.ClientID, group, machine, bad); err != nil {
				return err
			}
		}
		if len(bad) > 0 {
			return apperr.InvalidFields(bad)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE maintenance_windows SET name = $3, scope_group_id = $4, scope_machine_id = $5, starts_at = $6,
				duration_seconds = $7, recurrence = $8, recurrence_until = $9, updated_at = $10
			WHERE id = $1 AND client_id = $2`,
			id, a.ClientID, s.Name, s.GroupID, s.MachineID, s.StartsAt, s.DurationSeconds, s.Recurrence, s.RecurrenceUntil,
			tx.Now); err != nil {
			return db.Error(err, "maintenance windows: update", db.On(db.ForeignKeyViolation, errScope))
		}
		details := auditDetails(id, s)
		details["previous"] = auditDetails(id, old.Spec)
		if err := audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP,
			Action: "maintenance_window_updated", Details: details}); err != nil {
			return err
		}
		out, err = Get(ctx, tx, a.ClientID, id, tx.Now)
		return err
	})
	return out, err
}

// Delete removes a window: notifications it muted stay muted (notification_history).
func Delete(ctx context.Context, pool *pgxpool.Pool, a Actor, id string, now time.Time) error {
	return db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		old, err := scan(tx.QueryRow(ctx, `
			DELETE FROM maintenance_windows w WHERE w.client_id = $1 AND w.id = $3
			RETURNING `+columns, a.ClientID, tx.Now, id), tx.Now)
		if err != nil {
			return db.Error(err, "maintenance windows: delete", db.On(db.NoRows, ErrNotFound))
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP,
			Action: "maintenance_window_deleted", Details: auditDetails(id, old.Spec)})
	})
}
