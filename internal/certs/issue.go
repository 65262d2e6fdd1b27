package certs

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/db"
)

// IssueRequest asks for a certificate for one machine of one client.
type IssueRequest struct {
	ClientID  string
	MachineID string
	PublicKey crypto.PublicKey // from a verified CSR (ca.ParseCSR), or a server-made key
	CreatedBy string           // the user behind the issuance ("" when none)
	IP        string           // for the activity log
	Reason    string           // recorded in the log: "enrolment", "renewal", ...
}

// Issued is a certificate just signed and recorded.
type Issued struct {
	ID         string
	Serial     string
	IssuedAt   time.Time
	ExpiresAt  time.Time
	Cert       *x509.Certificate
	CertPEM    []byte
	Superseded []string // serials of the certificates this one replaced
}

const maxAttempts = 3

// Issue signs a certificate for the machine and records it in one transaction, retried on
// transient conflicts. Every earlier unrevoked certificate of the machine is revoked as
// "superseded" in the same transaction, so concurrent issuances leave exactly one active.
func Issue(ctx context.Context, pool *pgxpool.Pool, authority *ca.CA, req IssueRequest, now time.Time) (Issued, error) {
	var out Issued
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		err = db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
			var e error
			out, e = IssueTx(ctx, tx, authority, req)
			return e
		})
		if err == nil || !retryable(err) {
			break
		}
	}
	return out, err
}

// IssueTx is Issue inside the caller's transaction (bootstrap creates the machine and its
// first certificate together). It locks the machine row first: issuances for one machine
// run one after the other, and the last one holds the only unrevoked certificate. The
// certificate is issued at tx.Now, and every row written carries that instant.
func IssueTx(ctx context.Context, tx *db.Tx, authority *ca.CA, req IssueRequest) (Issued, error) {
	if authority == nil {
		return Issued{}, errors.New("certs: no certificate authority configured")
	}
	now := tx.Now
	var locked string
	err := tx.QueryRow(ctx, `SELECT id FROM machines WHERE id = $1 AND client_id = $2 AND deleted_at IS NULL FOR UPDATE`,
		req.MachineID, req.ClientID).Scan(&locked)
	if err != nil {
		return Issued{}, db.Error(err, "certs: lock machine", db.On(db.NoRows, ErrMachineNotFound))
	}

	cert, err := authority.IssueClient(req.PublicKey, CommonName(req.ClientID, req.MachineID), now, Validity(now))
	if err != nil {
		return Issued{}, fmt.Errorf("certs: sign: %w", err)
	}
	out := Issued{
		Serial: ca.SerialHex(cert.SerialNumber), IssuedAt: now, ExpiresAt: cert.NotAfter, Cert: cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
	}

	rows, err := tx.Query(ctx, `
		UPDATE client_certificates SET revoked_at = $3, revocation_reason = 'superseded'
		WHERE machine_id = $1 AND client_id = $2 AND revoked_at IS NULL
		RETURNING serial`, req.MachineID, req.ClientID, now)
	if err != nil {
		return Issued{}, db.Error(err, "certs: supersede")
	}
	if out.Superseded, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return Issued{}, db.Error(err, "certs: supersede")
	}
	if err := tx.QueryRow(ctx, `
		INSERT INTO client_certificates (client_id, machine_id, serial, issued_at, expires_at, created_by, created_at, certificate_pem)
		VALUES ($1, $2, $3, $4, $5, NULLIF($6, '')::uuid, $4, $7) RETURNING id`,
		req.ClientID, req.MachineID, out.Serial, out.IssuedAt, out.ExpiresAt, req.CreatedBy, string(out.CertPEM)).Scan(&out.ID); err != nil {
		return Issued{}, db.Error(err, "certs: record")
	}
	if _, err := tx.Exec(ctx, `
		UPDATE machines SET cert_serial = $2, cert_issued_at = $3, cert_expires_at = $4, cert_revoked_at = NULL, updated_at = $3
		WHERE id = $1`, req.MachineID, out.Serial, out.IssuedAt, out.ExpiresAt); err != nil {
		return Issued{}, db.Error(err, "certs: machine columns")
	}

	action := "certificate_issued"
	if len(out.Superseded) > 0 {
		action = "certificate_renewed"
	}
	details := map[string]any{"serial": out.Serial, "expires_at": out.ExpiresAt}
	if req.Reason != "" {
		details["reason"] = req.Reason
	}
	if len(out.Superseded) > 0 {
		details["superseded"] = out.Superseded
	}
	if err := audit.Log(ctx, tx, now, audit.Entry{ClientID: req.ClientID, UserID: req.CreatedBy, MachineID: req.MachineID,
		Action: action, Details: details, IP: req.IP}); err != nil {
		return Issued{}, err
	}
	return out, nil
}
