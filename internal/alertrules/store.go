package alertrules

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

// Rule is a stored rule as the API shows it.
type Rule struct {
	ID string `json:"id"`
	Spec
	IsDefault bool `json:"is_default"`
	// FiringAlerts counts the rule's alerts firing now.
	FiringAlerts int       `json:"firing_alerts"`
	CreatedBy    *string   `json:"created_by"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// ErrNotFound answers a rule that is not the caller's client's (or does not exist).
var ErrNotFound = apperr.New(apperr.NotFound, "alert rule not found")

// Actor is who makes a change, for the audit log.
type Actor = principal.Actor

const columns = `r.id::text, r.name, r.kind, r.metric, r.threshold, r.recovery_threshold, r.pending_seconds,
	r.min_firing_seconds, r.grace_seconds, r.service_pattern, r.days, r.severity, r.scope_group_id::text,
	r.scope_machine_id::text, r.enabled, r.is_default,
	(SELECT count(*) FROM alert_rule_history h WHERE h.rule_id = r.id AND h.client_id = r.client_id AND h.state = 'firing'),
	r.created_by::text, r.created_at, r.updated_at`

func scan(row pgx.Row) (Rule, error) {
	var r Rule
	s := &r.Spec
	err := row.Scan(&r.ID, &s.Name, &s.Kind, &s.Metric, &s.Threshold, &s.RecoveryThreshold, &s.PendingSeconds,
		&s.MinFiringSeconds, &s.GraceSeconds, &s.ServicePattern, &s.Days, &s.Severity, &s.GroupID, &s.MachineID,
		&s.Enabled, &r.IsDefault, &r.FiringAlerts, &r.CreatedBy, &r.CreatedAt, &r.UpdatedAt)
	return r, err
}

// List returns the client's rules, oldest first (the defaults lead).
func List(ctx context.Context, q db.Querier, clientID string) ([]Rule, error) {
	rows, err := q.Query(ctx, `SELECT `+columns+` FROM alert_rules r WHERE r.client_id = $1 ORDER BY r.created_at, r.id`, clientID)
	if err != nil {
		return nil, db.Error(err, "alert rules: list")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Rule, error) { return scan(r) })
	if err != nil {
		return nil, db.Error(err, "alert rules: list")
	}
	return out, nil
}

// Get returns one rule of the client.
func Get(ctx context.Context, q db.Querier, clientID, id string) (Rule, error) {
	r, err := scan(q.QueryRow(ctx, `SELECT `+columns+` FROM alert_rules r WHERE r.id = $1 AND r.client_id = $2`, id, clientID))
	return r, db.Error(err, "alert rules: get", db.On(db.NoRows, ErrNotFound))
}

// errScope is a scope that names a group or machine the client does not have, should one
// vanish between CheckScope and the write (the composite foreign keys refuse it).
var errScope = apperr.InvalidFields(map[string]string{"scope": "the group or machine no longer exists"})

// CheckScope names group_id or machine_id when it is not a group, or a live machine, of
// the client. Another client's group answers like one that does not exist.
func CheckScope(ctx context.Context, q db.Querier, clientID string, groupID, machineID *string, bad map[string]string) error {
	if groupID != nil {
		var ok bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM machine_groups WHERE id = $1 AND client_id = $2)`,
			*groupID, clientID).Scan(&ok); err != nil {
			return db.Error(err, "scope: group")
		}
		if !ok {
			bad["group_id"] = "not a group of this client"
		}
	}
	if machineID != nil {
		var ok bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM machines WHERE id = $1 AND client_id = $2 AND deleted_at IS NULL)`,
			*machineID, clientID).Scan(&ok); err != nil {
			return db.Error(err, "scope: machine")
		}
		if !ok {
			bad["machine_id"] = "not a machine of this client"
		}
	}
	return nil
}

// sent is a scope member's new value when the body names one.
func sent(f field[string]) *string {
	if f.Set {
		return f.V
	}
	return nil
}

// writeCases map what the schema refuses that validation should have caught first.
var writeCases = []db.Case{db.On(db.ForeignKeyViolation, errScope)}

// Create adds a rule; p is a parsed create body (see Body.Parse).
func Create(ctx context.Context, pool *pgxpool.Pool, a Actor, p Patch, now time.Time) (Rule, error) {
	bad := map[string]string{}
	s := p.Apply(NewSpec(), bad)
	if len(bad) > 0 {
		return Rule{}, apperr.InvalidFields(bad)
	}
	var out Rule
	err := db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		if err := CheckScope(ctx, tx, a.ClientID, s.GroupID, s.MachineID, bad); err != nil {
			return err
		}
		if len(bad) > 0 {
			return apperr.InvalidFields(bad)
		}
		var id string
		if err := tx.QueryRow(ctx, `
			INSERT INTO alert_rules (client_id, name, kind, metric, threshold, recovery_threshold, pending_seconds,
				min_firing_seconds, grace_seconds, service_pattern, days, severity, scope_group_id, scope_machine_id,
				enabled, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, NULLIF($16, '')::uuid, $17, $17)
			RETURNING id::text`,
			a.ClientID, s.Name, s.Kind, s.Metric, s.Threshold, s.RecoveryThreshold, s.PendingSeconds, s.MinFiringSeconds,
			s.GraceSeconds, s.ServicePattern, s.Days, s.Severity, s.GroupID, s.MachineID, s.Enabled, a.UserID, tx.Now).
			Scan(&id); err != nil {
			return db.Error(err, "alert rules: create", writeCases...)
		}
		if err := audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP,
			Action: "alert_rule_created", Details: map[string]any{"rule_id": id, "name": s.Name, "kind": s.Kind}}); err != nil {
			return err
		}
		var err error
		out, err = Get(ctx, tx, a.ClientID, id)
		return err
	})
	return out, err
}

// Closed counts the open episodes a change ended.
type Closed struct {
	Resolved int `json:"resolved"` // firing alerts resolved (their resolution is notified)
	Dropped  int `json:"dropped"`  // pending episodes deleted (they never fired)
}

// closeEpisodes ends a rule's open episodes: pending ones are deleted (they never were
// alerts), firing ones resolved at the transaction's instant with details.closed_by = why,
// so the notification pipeline announces the resolution.
func closeEpisodes(ctx context.Context, tx *db.Tx, clientID, ruleID, why string) (Closed, error) {
	var c Closed
	err := tx.QueryRow(ctx, `
		WITH p AS (DELETE FROM alert_rule_history WHERE rule_id = $1 AND client_id = $2 AND state = 'pending' RETURNING 1),
		     f AS (UPDATE alert_rule_history
		           SET state = 'resolved', resolved_at = $3, last_evaluated_at = $3,
		               details = details || jsonb_build_object('closed_by', $4::text)
		           WHERE rule_id = $1 AND client_id = $2 AND state = 'firing' RETURNING 1)
		SELECT (SELECT count(*) FROM f), (SELECT count(*) FROM p)`, ruleID, clientID, tx.Now, why).Scan(&c.Resolved, &c.Dropped)
	return c, db.Error(err, "alert rules: close episodes")
}

// Update applies a PATCH to a rule. Changing its kind, metric or scope, or disabling it,
// ends its open episodes in the same transaction (closeEpisodes).
func Update(ctx context.Context, pool *pgxpool.Pool, a Actor, id string, p Patch, now time.Time) (Rule, Closed, error) {
	var out Rule
	var closed Closed
	err := db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		old, err := scan(tx.QueryRow(ctx, `SELECT `+columns+` FROM alert_rules r WHERE r.id = $1 AND r.client_id = $2 FOR UPDATE OF r`,
			id, a.ClientID))
		if err != nil {
			return db.Error(err, "alert rules: lock", db.On(db.NoRows, ErrNotFound))
		}
		bad := map[string]string{}
		s := p.Apply(old.Spec, bad)
		if len(bad) == 0 {
			// Only a scope this body names is checked: a rule kept on a machine deleted
			// since stays editable (the machine's purge deletes the rule).
			if err := CheckScope(ctx, tx, a.ClientID, sent(p.GroupID), sent(p.MachineID), bad); err != nil {
				return err
			}
		}
		if len(bad) > 0 {
			return apperr.InvalidFields(bad)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE alert_rules SET name = $3, kind = $4, metric = $5, threshold = $6, recovery_threshold = $7,
				pending_seconds = $8, min_firing_seconds = $9, grace_seconds = $10, service_pattern = $11, days = $12,
				severity = $13, scope_group_id = $14, scope_machine_id = $15, enabled = $16, updated_at = $17
			WHERE id = $1 AND client_id = $2`,
			id, a.ClientID, s.Name, s.Kind, s.Metric, s.Threshold, s.RecoveryThreshold, s.PendingSeconds,
			s.MinFiringSeconds, s.GraceSeconds, s.ServicePattern, s.Days, s.Severity, s.GroupID, s.MachineID, s.Enabled,
			tx.Now); err != nil {
			return db.Error(err, "alert rules: update", writeCases...)
		}
		if closes(old.Spec, s) {
			if closed, err = closeEpisodes(ctx, tx, a.ClientID, id, "rule_updated"); err != nil {
				return err
			}
		}
		details := map[string]any{"rule_id": id, "name": s.Name, "changes": changes(old.Spec, s)}
		if closed != (Closed{}) {
			details["alerts_resolved"], details["pending_dropped"] = closed.Resolved, closed.Dropped
		}
		if err := audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP,
			Action: "alert_rule_updated", Details: details}); err != nil {
			return err
		}
		out, err = Get(ctx, tx, a.ClientID, id)
		return err
	})
	return out, closed, err
}

// Delete removes a rule. Its firing alerts are resolved first (the resolution is
// notified) and its pending episodes dropped; the history keeps its episodes, whose
// rule_id the foreign key sets to NULL (they keep the rule's name in rule_name).
func Delete(ctx context.Context, pool *pgxpool.Pool, a Actor, id string, now time.Time) (Closed, error) {
	var closed Closed
	err := db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		var name, kind string
		if err := tx.QueryRow(ctx, `SELECT name, kind FROM alert_rules WHERE id = $1 AND client_id = $2 FOR UPDATE`, id, a.ClientID).
			Scan(&name, &kind); err != nil {
			return db.Error(err, "alert rules: lock", db.On(db.NoRows, ErrNotFound))
		}
		var err error
		if closed, err = closeEpisodes(ctx, tx, a.ClientID, id, "rule_deleted"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM alert_rules WHERE id = $1 AND client_id = $2`, id, a.ClientID); err != nil {
			return db.Error(err, "alert rules: delete")
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP,
			Action: "alert_rule_deleted", Details: map[string]any{"rule_id": id, "name": name, "kind": kind,
				"alerts_resolved": closed.Resolved, "pending_dropped": closed.Dropped}})
	})
	return closed, err
}
