package certs

import (
	"context"
	"time"

	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/db"
)

// View is a machine's current certificate as the dashboard shows it.
type View struct {
	MachineID        string     `json:"machine_id"`
	Status           Status     `json:"status"`
	Serial           string     `json:"serial,omitempty"`
	IssuedAt         *time.Time `json:"issued_at,omitempty"`
	ExpiresAt        *time.Time `json:"expires_at,omitempty"`
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
	RevocationReason string     `json:"revocation_reason,omitempty"`
	// DaysRemaining until expiry (negative once expired); absent without a certificate.
	DaysRemaining *int `json:"days_remaining,omitempty"`
}

func (v *View) compute(now time.Time) {
	v.Status = ComputeStatus(v.Serial, v.RevokedAt, v.ExpiresAt, now)
	if v.ExpiresAt != nil {
		d := int(v.ExpiresAt.Sub(now).Hours() / 24)
		v.DaysRemaining = &d
	}
}

// Get returns the certificate view of a machine of the client (ErrMachineNotFound when the
// machine does not exist or belongs to another client).
func Get(ctx context.Context, q db.Querier, clientID, machineID string, now time.Time) (View, error) {
	v := View{MachineID: machineID}
	var serial, reason *string
	err := q.QueryRow(ctx, `
		SELECT c.serial, c.issued_at, c.expires_at, c.revoked_at, c.revocation_reason
		FROM machines m
		LEFT JOIN LATERAL (`+latestCertificate+`) c ON TRUE
		WHERE m.id = $1 AND m.client_id = $2 AND m.deleted_at IS NULL`, machineID, clientID).
		Scan(&serial, &v.IssuedAt, &v.ExpiresAt, &v.RevokedAt, &reason)
	if err != nil {
		return View{}, db.Error(err, "certs: get", db.On(db.NoRows, ErrMachineNotFound))
	}
	if serial != nil {
		v.Serial = *serial
	}
	if reason != nil {
		v.RevocationReason = *reason
	}
	v.compute(now)
	return v, nil
}

// RevokeRequest revokes a machine's active certificate.
type RevokeRequest struct {
	ClientID  string
	MachineID string
	Reason    string
	UserID    string
	IP        string
}

// Revoke revokes the machine's unrevoked certificate and brings machines.cert_* in line,
// in one transaction. The agent is refused from its very next request (CheckPresented
// reads the record). Revoking again is a no-op that answers the current view
// (idempotent); a machine that never had a certificate is ErrNoCertificate. now stamps
// the revocation and its audit entry. b is the pool, or a transaction the revocation joins
// (a machine's deletion revokes its certificate in its own transaction).
func Revoke(ctx context.Context, b db.Beginner, req RevokeRequest, now time.Time) (v View, revoked bool, err error) {
	err = db.InTxAt(ctx, b, now, func(tx *db.Tx) error {
		var id string
		err := tx.QueryRow(ctx, `SELECT id FROM machines WHERE id = $1 AND client_id = $2 AND deleted_at IS NULL FOR UPDATE`,
			req.MachineID, req.ClientID).Scan(&id)
		if err != nil {
			return db.Error(err, "certs: lock machine", db.On(db.NoRows, ErrMachineNotFound))
		}
		var serial string
		err = tx.QueryRow(ctx, `
			UPDATE client_certificates SET revoked_at = $3, revocation_reason = $4
			WHERE machine_id = $1 AND client_id = $2 AND revoked_at IS NULL
			RETURNING serial`, req.MachineID, req.ClientID, tx.Now, req.Reason).Scan(&serial)
		switch {
		case db.IsNoRows(err):
			// Nothing active: already revoked (idempotent) or never issued.
		case err != nil:
			return db.Error(err, "certs: revoke")
		default:
			revoked = true
			sql, args := SyncStatement(req.MachineID)
			if _, err := tx.Exec(ctx, sql, args...); err != nil {
				return db.Error(err, "certs: machine columns")
			}
			if err := audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: req.ClientID, UserID: req.UserID, MachineID: req.MachineID,
				Action: "certificate_revoked", Details: map[string]any{"serial": serial, "reason": req.Reason}, IP: req.IP}); err != nil {
				return err
			}
		}
		v, err = Get(ctx, tx, req.ClientID, req.MachineID, tx.Now)
		if err == nil && v.Status == StatusUnknown {
			return ErrNoCertificate
		}
		return err
	})
	if err != nil {
		return View{}, false, err
	}
	return v, revoked, nil
}
