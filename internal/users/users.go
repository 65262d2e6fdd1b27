// Package users is a client admin's management of their client's users: list, invite,
// change role, deactivate, delete. A change that takes rights away ends the user's
// sessions at once.
package users

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/clients"
	"github.com/optralis/optralis/internal/db"
)

// Audit actions written by this package (invitations: clients.ActionInvited).
const (
	ActionUpdated = "user_updated"
	ActionDeleted = "user_deleted"
)

// Session revocation reasons.
const (
	reasonDeactivated = "account_disabled"
	reasonRoleChanged = "role_changed"
	reasonDeleted     = "user_deleted"
)

// Errors.
var (
	ErrNotFound = apperr.New(apperr.NotFound, "user not found")
	errSelf     = apperr.New(apperr.Conflict,
		"you cannot deactivate, demote or delete yourself: the client must keep an active admin; ask another admin")
	errNoLongerAdmin = apperr.New(apperr.Forbidden, "your role does not allow this")
)

// Deps are the client handlers' own: users are invited through their client.
type Deps = clients.Deps

// User is a user as their client's admins see it.
type User struct {
	ID          string     `json:"id"`
	Email       string     `json:"email"`
	Name        string     `json:"name"`
	Role        string     `json:"role"`
	Active      bool       `json:"is_active"`
	LastLoginAt *time.Time `json:"last_login_at"`
	CreatedAt   time.Time  `json:"created_at"`
	// Status: active, inactive, invited (the invitation is still to be used) or
	// invitation_expired.
	Status              string     `json:"status"`
	InvitationExpiresAt *time.Time `json:"invitation_expires_at,omitempty"`
}

func (u *User) compute(now time.Time) {
	switch {
	case !u.Active:
		u.Status = "inactive"
	case u.InvitationExpiresAt == nil:
		u.Status = "active"
	case u.InvitationExpiresAt.After(now):
		u.Status = "invited"
	default:
		u.Status = "invitation_expired"
	}
}

// An unused invitation token means the user never chose a password: using it, or a reset
// link, deletes every unused token of the user.
const userSelect = `
	SELECT u.id::text, u.email, u.name, u.role, u.is_active, u.last_login_at, u.created_at,
	       (SELECT max(t.expires_at) FROM password_reset_tokens t
	        WHERE t.user_id = u.id AND t.purpose = 'invite' AND t.used_at IS NULL)
	FROM users u`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.Active, &u.LastLoginAt, &u.CreatedAt, &u.InvitationExpiresAt)
	return u, err
}

// List is the client's users by email.
func List(ctx context.Context, q db.Querier, clientID string, now time.Time) ([]User, error) {
	rows, err := q.Query(ctx, userSelect+` WHERE u.client_id = $1 ORDER BY lower(u.email), u.id`, clientID)
	if err != nil {
		return nil, db.Error(err, "users: list")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
	if err != nil {
		return nil, db.Error(err, "users: list")
	}
	for i := range list {
		list[i].compute(now)
	}
	if list == nil {
		list = []User{}
	}
	return list, nil
}

// Changes are validated user fields; nil leaves a field as it is.
type Changes struct {
	Role   *string
	Active *bool
	Name   *string
}

func (c Changes) audit() map[string]any {
	m := map[string]any{}
	if c.Role != nil {
		m["role"] = *c.Role
	}
	if c.Active != nil {
		m["is_active"] = *c.Active
	}
	if c.Name != nil {
		m["name"] = *c.Name
	}
	return m
}

// Request is a change to a user by an admin of the same client.
type Request struct {
	ClientID string
	TargetID string
	Actor    clients.Actor
}

// lockAdmins locks the client's active admins and checks the actor is still one of them:
// two admins demoting each other at once are serialised, and the second finds it no longer
// may. With the rule that nobody demotes, deactivates or deletes themselves, the actor
// remains, so the client always keeps an active admin.
func lockAdmins(ctx context.Context, tx *db.Tx, req Request) error {
	rows, err := tx.Query(ctx, `
		SELECT id::text FROM users WHERE client_id = $1 AND role = 'admin' AND is_active ORDER BY id FOR UPDATE`, req.ClientID)
	if err != nil {
		return db.Error(err, "users: lock admins")
	}
	admins, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return db.Error(err, "users: lock admins")
	}
	for _, id := range admins {
		if id == req.Actor.UserID {
			return nil
		}
	}
	return errNoLongerAdmin
}

func target(ctx context.Context, tx *db.Tx, req Request) (User, error) {
	u, err := scanUser(tx.QueryRow(ctx, userSelect+` WHERE u.id = $1 AND u.client_id = $2 FOR UPDATE OF u`, req.TargetID, req.ClientID))
	if err != nil {
		return User{}, db.Error(err, "users: target", db.On(db.NoRows, ErrNotFound))
	}
	return u, nil
}

// Update changes a user's role, activity or name. Deactivating a user or changing the
// role ends their sessions at once (the role is in the access token).
func Update(ctx context.Context, d Deps, req Request, c Changes) (User, error) {
	var out User
	var ended auth.Ended
	err := db.InTx(ctx, d.Pool, d.Clock, func(tx *db.Tx) error {
		if err := lockAdmins(ctx, tx, req); err != nil {
			return err
		}
		before, err := target(ctx, tx, req)
		if err != nil {
			return err
		}
		demoted := c.Role != nil && *c.Role != before.Role && before.Role == "admin"
		deactivated := c.Active != nil && !*c.Active && before.Active
		if before.ID == req.Actor.UserID && (demoted || deactivated) {
			return errSelf
		}
		if _, err := tx.Exec(ctx, `
			UPDATE users SET role = COALESCE($2, role), is_active = COALESCE($3, is_active), name = COALESCE($4, name), updated_at = $5
			WHERE id = $1`, before.ID, c.Role, c.Active, c.Name, tx.Now); err != nil {
			return db.Error(err, "users: update")
		}
		if out, err = target(ctx, tx, req); err != nil {
			return err
		}
		details := map[string]any{"user_id": before.ID, "email": before.Email, "changes": c.audit()}
		if reason := endReason(before, out); reason != "" {
			if ended, err = d.Auth.EndSessionsOfUsers(ctx, tx, []string{before.ID}, reason); err != nil {
				return err
			}
			details["sessions_ended"] = ended.Sessions
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: req.ClientID, UserID: req.Actor.UserID, Action: ActionUpdated,
			IP: req.Actor.IP, Details: details})
	})
	if err != nil {
		return User{}, err
	}
	d.Auth.Publish(ctx, ended)
	out.compute(d.Clock.Now())
	return out, nil
}

// endReason says why a change ends the user's sessions, or "" when it does not.
func endReason(before, after User) string {
	switch {
	case before.Active && !after.Active:
		return reasonDeactivated
	case before.Role != after.Role:
		return reasonRoleChanged
	}
	return ""
}

// Delete removes a user of the client; their sessions end first (blacklisted, so their
// access tokens die with the row).
func Delete(ctx context.Context, d Deps, req Request) error {
	var ended auth.Ended
	err := db.InTx(ctx, d.Pool, d.Clock, func(tx *db.Tx) error {
		if err := lockAdmins(ctx, tx, req); err != nil {
			return err
		}
		u, err := target(ctx, tx, req)
		if err != nil {
			return err
		}
		if u.ID == req.Actor.UserID {
			return errSelf
		}
		if ended, err = d.Auth.EndSessionsOfUsers(ctx, tx, []string{u.ID}, reasonDeleted); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1 AND client_id = $2`, u.ID, req.ClientID); err != nil {
			return db.Error(err, "users: delete")
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: req.ClientID, UserID: req.Actor.UserID, Action: ActionDeleted,
			IP: req.Actor.IP, Details: map[string]any{"user_id": u.ID, "email": u.Email, "role": u.Role, "sessions_ended": ended.Sessions}})
	})
	if err != nil {
		return err
	}
	d.Auth.Publish(ctx, ended)
	return nil
}
