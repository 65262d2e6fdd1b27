package machines

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/principal"
)

// Bounds of an edit.
const (
	MaxDisplayNameRunes = 255
	MaxNotesRunes       = 10000
	MaxGroupsPerMachine = 100
)

// Change is a PATCH body: each field present is set, each absent one left as it is.
type Change struct {
	// DisplayName replaces the hostname in the dashboard; "" clears it.
	DisplayName *string `json:"display_name"`
	Notes       *string `json:"notes"`
	// GroupIDs replaces the machine's group memberships (every group of the caller's client).
	GroupIDs *[]string `json:"group_ids"`
}

// normalise validates c and puts it in canonical form (trimmed name, canonical ids, each
// once), naming every bad field.
func (c *Change) normalise() error {
	bad := map[string]string{}
	if c.DisplayName != nil {
		s := strings.TrimSpace(*c.DisplayName)
		switch {
		case utf8.RuneCountInString(s) > MaxDisplayNameRunes:
			bad["display_name"] = fmt.Sprintf("at most %d characters", MaxDisplayNameRunes)
		case !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0:
			bad["display_name"] = "must be text without control characters"
		}
		c.DisplayName = &s
	}
	if c.Notes != nil {
		s := *c.Notes
		switch {
		case utf8.RuneCountInString(s) > MaxNotesRunes:
			bad["notes"] = fmt.Sprintf("at most %d characters", MaxNotesRunes)
		case !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }) >= 0:
			bad["notes"] = "must be text without control characters other than line breaks and tabs"
		}
	}
	if c.GroupIDs != nil {
		seen := map[string]bool{}
		ids := []string{}
		for _, s := range *c.GroupIDs {
			id, ok := httpx.ParseID(s)
			if !ok {
				bad["group_ids"] = "must be group ids (uuids)"
				break
			}
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		if len(ids) > MaxGroupsPerMachine {
			bad["group_ids"] = fmt.Sprintf("at most %d groups", MaxGroupsPerMachine)
		}
		c.GroupIDs = &ids
	}
	if len(bad) > 0 {
		return apperr.InvalidFields(bad)
	}
	return nil
}

func (c Change) empty() bool { return c.DisplayName == nil && c.Notes == nil && c.GroupIDs == nil }

// errUnknownGroups answers group ids that are not the caller's client's groups.
var errUnknownGroups = apperr.InvalidFields(map[string]string{"group_ids": "every group must be one of your client's groups"})

// Actor is who makes a change, for the audit log.
type Actor = principal.Actor

// Update applies c to a live machine of the actor's client in one transaction stamped
// now, with its audit entry. An empty change only checks the machine exists. The caller
// invalidates the client's list caches once it returns.
func Update(ctx context.Context, pool *pgxpool.Pool, now time.Time, who Actor, machineID string, c Change) error {
	return db.InTxAt(ctx, pool, now, func(tx *db.Tx) error { return update(ctx, tx, who, machineID, c) })
}

// Delete deletes a live machine of the actor's client in one transaction stamped now (see
// remove). The caller invalidates the client's list caches once it returns, and marks the
// returned refusal (the certificate revoked, if any: Serial "" when none) for the agent
// guard (certs.Marks).
func Delete(ctx context.Context, pool *pgxpool.Pool, now time.Time, who Actor, machineID string) (certs.Refusal, error) {
	var refused certs.Refusal
	err := db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		var err error
		refused, err = remove(ctx, tx, who, machineID)
		return err
	})
	if err != nil {
		return certs.Refusal{}, err
	}
	return refused, nil
}

// update is Update inside tx.
func update(ctx context.Context, tx *db.Tx, who Actor, machineID string, c Change) error {
	var id string
	err := tx.QueryRow(ctx, `SELECT m.id FROM machines m WHERE `+liveMachine+` FOR UPDATE`, machineID, who.ClientID).Scan(&id)
	if err != nil {
		return db.Error(err, "machines: lock", db.On(db.NoRows, ErrNotFound))
	}
	if c.empty() {
		return nil
	}
	details := map[string]any{}
	if c.DisplayName != nil || c.Notes != nil {
		_, err := tx.Exec(ctx, `
			UPDATE machines SET display_name = CASE WHEN $2 THEN NULLIF($3, '') ELSE display_name END,
			    notes = CASE WHEN $4 THEN $5 ELSE notes END, updated_at = $6
			WHERE id = $1`, machineID, c.DisplayName != nil, deref(c.DisplayName), c.Notes != nil, deref(c.Notes), tx.Now)
		if err != nil {
			return db.Error(err, "machines: update")
		}
		if c.DisplayName != nil {
			details["display_name"] = *c.DisplayName
		}
		if c.Notes != nil {
			details["notes_changed"] = true // the notes themselves stay out of the log
		}
	}
	if c.GroupIDs != nil {
		ids := *c.GroupIDs
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM machine_groups WHERE client_id = $1 AND id = ANY($2::uuid[])`,
			who.ClientID, ids).Scan(&n); err != nil {
			return db.Error(err, "machines: check groups")
		}
		if n != len(ids) {
			return errUnknownGroups
		}
		if _, err := tx.Exec(ctx, `DELETE FROM machine_group_members WHERE machine_id = $1 AND client_id = $2 AND group_id <> ALL($3::uuid[])`,
			machineID, who.ClientID, ids); err != nil {
			return db.Error(err, "machines: leave groups")
		}
		// A group deleted since the check fails the foreign key: the same 400.
		if _, err := tx.Exec(ctx, `
			INSERT INTO machine_group_members (client_id, machine_id, group_id, created_at)
			SELECT $1, $2, g, $4 FROM unnest($3::uuid[]) AS g ON CONFLICT DO NOTHING`,
			who.ClientID, machineID, ids, tx.Now); err != nil {
			return db.Error(err, "machines: join groups", db.On(db.ForeignKeyViolation, errUnknownGroups))
		}
		details["group_ids"] = ids
	}
	return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: who.ClientID, UserID: who.UserID, MachineID: machineID,
		Action: "machine_updated", Details: details, IP: who.IP})
}

// DeletionReason is recorded on the certificate of a deleted machine.
const DeletionReason = "machine deleted"

// remove deletes a live machine of the actor's client inside tx: its certificate is
// revoked first (certs.Revoke ignores deleted machines), then the machine is marked
// deleted and leaves its groups. Its series stay until the cleanup job purges them.
func remove(ctx context.Context, tx *db.Tx, who Actor, machineID string) (certs.Refusal, error) {
	var hostname string
	err := tx.QueryRow(ctx, `SELECT m.hostname FROM machines m WHERE `+liveMachine+` FOR UPDATE`, machineID, who.ClientID).Scan(&hostname)
	if err != nil {
		return certs.Refusal{}, db.Error(err, "machines: lock", db.On(db.NoRows, ErrNotFound))
	}
	v, _, err := certs.Revoke(ctx, tx, certs.RevokeRequest{ClientID: who.ClientID, MachineID: machineID,
		Reason: DeletionReason, UserID: who.UserID, IP: who.IP}, tx.Now)
	if err != nil && !errors.Is(err, certs.ErrNoCertificate) {
		return certs.Refusal{}, err
	}
	// The machine's latest certificate, revoked now or before: refused from now on.
	refused := certs.Refusal{Serial: v.Serial}
	if v.ExpiresAt != nil {
		refused.Until = *v.ExpiresAt
	}
	if _, err := tx.Exec(ctx, `UPDATE machines SET deleted_at = $2, updated_at = $2 WHERE id = $1`, machineID, tx.Now); err != nil {
		return certs.Refusal{}, db.Error(err, "machines: delete")
	}
	if _, err := tx.Exec(ctx, `DELETE FROM machine_group_members WHERE machine_id = $1`, machineID); err != nil {
		return certs.Refusal{}, db.Error(err, "machines: leave groups")
	}
	return refused, audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: who.ClientID, UserID: who.UserID, MachineID: machineID,
		Action: "machine_deleted", Details: map[string]any{"hostname": hostname}, IP: who.IP})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
