package certs

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/db"
)

// CheckPresented decides whether an agent's client certificate (already verified against
// the CA by the TLS layer or API Gateway, which check chain and expiry but never
// revocation) is still accepted: its CN must be client_id:machine_id and within its
// validity period (Inspect), and the serial must be that machine's active certificate —
// recorded for that client's existing machine, unrevoked and unexpired. That rule is
// defined once, in SQL (optralis_assert_agent, migrations/00005): this runs it as one
// statement, like the heartbeat batch does. It reads the record on every call, so a
// revocation takes effect on the very next request.
//
// Refusals wrap ErrRefused (one generic 401 for the agent; the reason is in the error
// text for the log). Other errors are database failures.
func CheckPresented(ctx context.Context, q db.Querier, cert *x509.Certificate, now time.Time) (clientID, machineID string, err error) {
	clientID, machineID, serial, err := Inspect(cert, now)
	if err != nil {
		return "", "", err
	}
	sql, args := AssertActive(Agent{ClientID: clientID, MachineID: machineID, Serial: serial}, now)
	if _, err := q.Exec(ctx, sql, args...); err != nil {
		return "", "", RefusalError(err, "certs: check serial "+serial)
	}
	return clientID, machineID, nil
}

// RefusalError maps the error of a statement or batch headed by AssertActive: a refusal
// becomes ErrRefused (wrapping the database's reason, for the log), a disabled client
// ErrClientDisabled (403); other errors go through db.Error.
func RefusalError(err error, op string) error {
	return db.Error(err, op, db.On(db.AgentRefused, ErrRefused), db.On(db.ClientDisabled, ErrClientDisabled))
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

// AssertActive is the active-certificate rule as one statement, for CheckPresented and
// for the head of a pgx.Batch: it fails with SQLSTATE db.AgentRefused (map it with
// RefusalError) unless serial is the active certificate of that client's machine at now,
// aborting the batch's implicit transaction.
func AssertActive(a Agent, now time.Time) (string, []any) {
	return `SELECT optralis_assert_agent($1, $2, $3, $4)`, []any{a.Serial, a.ClientID, a.MachineID, now}
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
