// Package audit writes activity_logs entries: logins, certificate and install-token actions...
package audit

import (
	"context"
	"fmt"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/db"
)

// Entry is one audited action. Empty ids are stored as NULL.
type Entry struct {
	ClientID  string
	UserID    string
	MachineID string
	Action    string // e.g. "login", "login_failed", "certificate_revoked"
	Details   map[string]any
	IP        string
}

// Log writes the entry, stamped at (the application's clock: inside a transaction, its
// db.Tx.Now, so the entry carries the same instant as the rows of the action it records).
// q may be a pool or the action's transaction. Details must never contain secrets
// (tokens, passwords, keys).
func Log(ctx context.Context, q db.Querier, at time.Time, e Entry) error {
	details := []byte("{}")
	if len(e.Details) > 0 {
		var err error
		if details, err = json.Marshal(e.Details); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	_, err := q.Exec(ctx, `
		INSERT INTO activity_logs (client_id, user_id, machine_id, action, details, ip_address, created_at)
		VALUES (NULLIF($1, '')::uuid, NULLIF($2, '')::uuid, NULLIF($3, '')::uuid, $4, $5, NULLIF($6, ''), $7)`,
		e.ClientID, e.UserID, e.MachineID, e.Action, details, e.IP, at)
	if err != nil {
		// Not mapped to a client error: a failed audit write is always the server's fault.
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}
