// Package audit writes activity_logs entries: logins, certificate and install-token actions...
package audit

import (
	"context"
	"fmt"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5/pgconn"
)

// Execer is a pool, a connection or a transaction: an entry can be written inside the
// transaction of the action it records.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Entry is one audited action. Empty ids are stored as NULL.
type Entry struct {
	ClientID  string
	UserID    string
	MachineID string
	Action    string // e.g. "login", "login_failed", "certificate_revoked"
	Details   map[string]any
	IP        string
}

// Log writes the entry. Details must never contain secrets (tokens, passwords, keys).
func Log(ctx context.Context, db Execer, e Entry) error {
	details := []byte("{}")
	if len(e.Details) > 0 {
		var err error
		if details, err = json.Marshal(e.Details); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	_, err := db.Exec(ctx, `
		INSERT INTO activity_logs (client_id, user_id, machine_id, action, details, ip_address)
		VALUES (NULLIF($1, '')::uuid, NULLIF($2, '')::uuid, NULLIF($3, '')::uuid, $4, $5, NULLIF($6, ''))`,
		e.ClientID, e.UserID, e.MachineID, e.Action, details, e.IP)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}
