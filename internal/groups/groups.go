// Package groups is a client's machine groups: create, rename, recolour, delete, and the
// bulk replacement of a group's members.
package groups

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/principal"
)

// DefaultColor is the schema's default colour, used when a group is created without one.
const DefaultColor = "#3B82F6"

// MaxMembers bounds one bulk assignment (PUT /api/groups/{id}/machines).
const MaxMembers = 5000

// Group is a machine group and how many live machines it holds.
type Group struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Color        string    `json:"color"`
	MachineCount int       `json:"machine_count"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

var (
	// ErrNotFound answers a group that is not the caller's client's (or does not exist).
	ErrNotFound = apperr.New(apperr.NotFound, "group not found")
	// ErrDuplicateName is a second group of one client with the same name, in any case.
	ErrDuplicateName = apperr.New(apperr.Conflict, "a group with this name already exists")
)

// Actor is who makes a change, for the audit log.
type Actor = principal.Actor

// columns selects a Group from machine_groups g; the count ignores deleted machines.
const columns = `g.id::text, g.name, g.color,
	(SELECT count(*) FROM machine_group_members mm JOIN machines m ON m.id = mm.machine_id
	 WHERE mm.group_id = g.id AND m.deleted_at IS NULL),
	g.created_at, g.updated_at`

func scan(row pgx.Row) (Group, error) {
	var g Group
	err := row.Scan(&g.ID, &g.Name, &g.Color, &g.MachineCount, &g.CreatedAt, &g.UpdatedAt)
	return g, err
}

// List returns the client's groups by name.
func List(ctx context.Context, q db.Querier, clientID string) ([]Group, error) {
	rows, err := q.Query(ctx, `SELECT `+columns+` FROM machine_groups g WHERE g.client_id = $1 ORDER BY lower(g.name), g.id`, clientID)
	if err != nil {
		return nil, db.Error(err, "groups: list")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Group, error) { return scan(r) })
	if err != nil {
		return nil, db.Error(err, "groups: list")
	}
	return out, nil
}

func get(ctx context.Context, q db.Querier, clientID, id string) (Group, error) {
	g, err := scan(q.QueryRow(ctx, `SELECT `+columns+` FROM machine_groups g WHERE g.id = $1 AND g.client_id = $2`, id, clientID))
	return g, db.Error(err, "groups: get", db.On(db.NoRows, ErrNotFound))
}

// Create adds a group; name and color must be valid already (see Input).
func Create(ctx context.Context, pool *pgxpool.Pool, a Actor, name, color string, now time.Time) (Group, error) {
	var g Group
	err := db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		var id string
		if err := tx.QueryRow(ctx, `
			INSERT INTO machine_groups (client_id, name, color, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
			RETURNING id::text`, a.ClientID, name, color, tx.Now).Scan(&id); err != nil {
			return db.Error(err, "groups: create", db.On(db.UniqueViolation, ErrDuplicateName))
		}
		if err := audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP,
			Action: "group_created", Details: map[string]any{"group_id": id, "name": name, "color": color}}); err != nil {
			return err
		}
		var err error
		g, err = get(ctx, tx, a.ClientID, id)
		return err
	})
	return g, err
}

// Update renames and/or recolours a group; nil leaves a field as it is.
func Update(ctx context.Context, pool *pgxpool.Pool, a Actor, id string, name, color *string, now time.Time) (Group, error) {
	var g Group
	err := db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		var oldName, oldColor string
		if err := tx.QueryRow(ctx, `SELECT name, color FROM machine_groups WHERE id = $1 AND client_id = $2 FOR UPDATE`, id, a.ClientID).
			Scan(&oldName, &oldColor); err != nil {
			return db.Error(err, "groups: lock", db.On(db.NoRows, ErrNotFound))
		}
		if _, err := tx.Exec(ctx, `
			UPDATE machine_groups SET name = COALESCE($3, name), color = COALESCE($4, color), updated_at = $5
			WHERE id = $1 AND client_id = $2`, id, a.ClientID, name, color, tx.Now); err != nil {
			return db.Error(err, "groups: update", db.On(db.UniqueViolation, ErrDuplicateName))
		}
		details := map[string]any{"group_id": id}
		if name != nil && *name != oldName {
			details["name"], details["previous_name"] = *name, oldName
		}
		if color != nil && *color != oldColor {
			details["color"], details["previous_color"] = *color, oldColor
		}
		if err := audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP,
			Action: "group_updated", Details: details}); err != nil {
			return err
		}
		var err error
		g, err = get(ctx, tx, a.ClientID, id)
		return err
	})
	return g, err
}

// Delete removes a group; its memberships go with it (the machines stay).
func Delete(ctx context.Context, pool *pgxpool.Pool, a Actor, id string, now time.Time) error {
	return db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		var name string
		var members int
		if err := tx.QueryRow(ctx, `
			WITH d AS (DELETE FROM machine_groups WHERE id = $1 AND client_id = $2 RETURNING id, name)
			SELECT d.name, (SELECT count(*) FROM machine_group_members WHERE group_id = d.id) FROM d`, id, a.ClientID).
			Scan(&name, &members); err != nil {
			return db.Error(err, "groups: delete", db.On(db.NoRows, ErrNotFound))
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP,
			Action: "group_deleted", Details: map[string]any{"group_id": id, "name": name, "members": members}})
	})
}

// Membership is the outcome of SetMembers.
type Membership struct {
	Group
	Added   int `json:"added"`
	Removed int `json:"removed"`
}

// maxListedIDs bounds how many refused ids an error message repeats.
const maxListedIDs = 10

// SetMembers makes machineIDs (canonical UUIDs, without duplicates) the group's exact
// members. Every id must be a live machine of the caller's client, or nothing changes.
func SetMembers(ctx context.Context, pool *pgxpool.Pool, a Actor, id string, machineIDs []string, now time.Time) (Membership, error) {
	var out Membership
	err := db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		var locked string
		if err := tx.QueryRow(ctx, `SELECT id::text FROM machine_groups WHERE id = $1 AND client_id = $2 FOR UPDATE`, id, a.ClientID).
			Scan(&locked); err != nil {
			return db.Error(err, "groups: lock", db.On(db.NoRows, ErrNotFound))
		}
		// Another client's machine and a machine that does not exist get the same answer.
		rows, err := tx.Query(ctx, `
			SELECT x::text FROM unnest($2::uuid[]) AS x
			WHERE NOT EXISTS (SELECT 1 FROM machines m WHERE m.id = x AND m.client_id = $1 AND m.deleted_at IS NULL)
			ORDER BY 1`, a.ClientID, machineIDs)
		if err != nil {
			return db.Error(err, "groups: check machines")
		}
		unknown, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return db.Error(err, "groups: check machines")
		}
		if len(unknown) > 0 {
			return apperr.InvalidFields(map[string]string{"machine_ids": notMachines(unknown)})
		}
		tag, err := tx.Exec(ctx, `DELETE FROM machine_group_members WHERE group_id = $1 AND machine_id <> ALL($2::uuid[])`, id, machineIDs)
		if err != nil {
			return db.Error(err, "groups: remove members")
		}
		out.Removed = int(tag.RowsAffected())
		tag, err = tx.Exec(ctx, `
			INSERT INTO machine_group_members (client_id, machine_id, group_id, created_at)
			SELECT $1, x, $2, $4 FROM unnest($3::uuid[]) AS x
			ON CONFLICT (machine_id, group_id) DO NOTHING`, a.ClientID, id, machineIDs, tx.Now)
		if err != nil {
			return db.Error(err, "groups: add members")
		}
		out.Added = int(tag.RowsAffected())
		if _, err := tx.Exec(ctx, `UPDATE machine_groups SET updated_at = $2 WHERE id = $1`, id, tx.Now); err != nil {
			return db.Error(err, "groups: touch")
		}
		if err := audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: a.ClientID, UserID: a.UserID, IP: a.IP,
			Action: "group_members_set", Details: map[string]any{"group_id": id, "members": len(machineIDs),
				"added": out.Added, "removed": out.Removed}}); err != nil {
			return err
		}
		out.Group, err = get(ctx, tx, a.ClientID, id)
		return err
	})
	return out, err
}

func notMachines(ids []string) string {
	listed := ids[:min(len(ids), maxListedIDs)]
	msg := "not machines of this client: " + strings.Join(listed, ", ")
	if n := len(ids) - len(listed); n > 0 {
		msg += fmt.Sprintf(" and %d more", n)
	}
	return msg
}
