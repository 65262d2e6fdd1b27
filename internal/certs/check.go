package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/optralis/optralis/internal/ca"
)

// CheckPresented decides whether an agent's client certificate (already verified against
// the CA by the TLS layer or API Gateway, which check chain and expiry but never
// revocation) is still accepted: its CN must be client_id:machine_id, the machine must
// exist and belong to that client, and the serial must be the machine's active
// certificate — recorded for that machine, unrevoked and unexpired. It reads the record on
// every call, so a revocation takes effect on the very next request.
//
// Refusals wrap ErrRefused (one generic 401 for the agent; the reason is in the error
// text for the log). Other errors are database failures.
func CheckPresented(ctx context.Context, db Querier, cert *x509.Certificate, now time.Time) (clientID, machineID string, err error) {
	clientID, machineID, serial, err := Inspect(cert, now)
	if err != nil {
		return "", "", err
	}
	cn := cert.Subject.CommonName
	var rowClient, rowMachine string
	var revokedAt *time.Time
	var expiresAt time.Time
	err = db.QueryRow(ctx, `
		SELECT c.client_id::text, c.machine_id::text, c.revoked_at, c.expires_at
		FROM client_certificates c
		JOIN machines m ON m.id = c.machine_id AND m.client_id = c.client_id
		WHERE c.serial = $1`, serial).Scan(&rowClient, &rowMachine, &revokedAt, &expiresAt)
	switch {
	case isNoRows(err):
		return "", "", fmt.Errorf("certs: serial %s: not recorded, or its machine is gone: %w", serial, ErrRefused)
	case err != nil:
		return "", "", fmt.Errorf("certs: check serial %s: %w", serial, err)
	case rowClient != clientID || rowMachine != machineID:
		return "", "", fmt.Errorf("certs: serial %s: recorded for %s:%s, CN says %s: %w", serial, rowClient, rowMachine, cn, ErrRefused)
	case revokedAt != nil:
		return "", "", fmt.Errorf("certs: serial %s: revoked at %s: %w", serial, revokedAt.UTC().Format(time.RFC3339), ErrRefused)
	case !expiresAt.After(now):
		return "", "", fmt.Errorf("certs: serial %s: expired: %w", serial, ErrRefused)
	}
	return clientID, machineID, nil
}

// Inspect is the part of CheckPresented that needs no database: the CN's client and
// machine, the validity period, and the serial to look up.
func Inspect(cert *x509.Certificate, now time.Time) (clientID, machineID, serial string, err error) {
	if cert == nil || cert.SerialNumber == nil {
		return "", "", "", fmt.Errorf("certs: no certificate: %w", ErrRefused)
	}
	serial = ca.SerialHex(cert.SerialNumber)
	clientID, machineID, err = ParseCommonName(cert.Subject.CommonName)
	if err != nil {
		return "", "", "", fmt.Errorf("certs: serial %s: %v: %w", serial, err, ErrRefused)
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return "", "", "", fmt.Errorf("certs: serial %s: outside its validity period: %w", serial, ErrRefused)
	}
	return clientID, machineID, serial, nil
}

// AssertActive is CheckPresented's database check as one statement for a pgx.Batch: it
// fails with SQLSTATE OA401 (see IsRefusedInBatch) unless serial is the active certificate
// of that client's machine, aborting the batch's implicit transaction.
func AssertActive(a Agent, now time.Time) (string, []any) {
	return `SELECT optralis_assert_agent($1, $2, $3, $4)`, []any{a.Serial, a.ClientID, a.MachineID, now}
}

// IsRefusedInBatch reports whether err is AssertActive's refusal.
func IsRefusedInBatch(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "OA401"
}

// Agent is the machine an accepted certificate belongs to.
type Agent struct {
	ClientID  string
	MachineID string
	Serial    string // the certificate's serial (hex), for AssertActive
}

type agentKey struct{}

// WithAgent returns a context carrying the checked agent. Only the agent guard calls it,
// after CheckPresented.
func WithAgent(ctx context.Context, a Agent) context.Context {
	return context.WithValue(ctx, agentKey{}, a)
}

// AgentFrom returns the agent whose certificate the guard accepted.
func AgentFrom(ctx context.Context) (Agent, bool) {
	a, ok := ctx.Value(agentKey{}).(Agent)
	return a, ok && a.MachineID != ""
}
