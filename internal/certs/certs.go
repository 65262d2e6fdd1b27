// Package certs keeps the record of machine certificates: issuance, revocation, status, the
// check of a certificate an agent presents, and the heartbeat's sync of machines.cert_*.
package certs

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/db"
)

// Validity is how long a machine certificate lives: one year (spec), from issuance.
func Validity(now time.Time) time.Duration { return now.AddDate(1, 0, 0).Sub(now) }

// ExpiringWithin is the spec's "expiring" window.
const ExpiringWithin = 30 * 24 * time.Hour

// Status is a certificate's state, computed on read and never stored (spec "Calcul du
// statut certificat").
type Status string

const (
	StatusUnknown  Status = "unknown"  // no certificate recorded for the machine
	StatusRevoked  Status = "revoked"  // revoked (by a user, or superseded by a newer one)
	StatusExpired  Status = "expired"  // past its expiry
	StatusExpiring Status = "expiring" // expires within 30 days
	StatusValid    Status = "valid"
)

// ComputeStatus applies the spec's table in its order: unknown, revoked, expired,
// expiring, valid.
func ComputeStatus(serial string, revokedAt, expiresAt *time.Time, now time.Time) Status {
	switch {
	case serial == "" || expiresAt == nil:
		return StatusUnknown
	case revokedAt != nil:
		return StatusRevoked
	case expiresAt.Before(now):
		return StatusExpired
	case expiresAt.Before(now.Add(ExpiringWithin)):
		return StatusExpiring
	}
	return StatusValid
}

// CommonName is the subject CN of a machine certificate: client_id:machine_id.
func CommonName(clientID, machineID string) string { return clientID + ":" + machineID }

// ParseCommonName splits a machine certificate's CN into canonical (lower-case, hyphenated)
// client and machine ids. Anything but exactly "uuid:uuid" in that form is refused.
func ParseCommonName(cn string) (clientID, machineID string, err error) {
	c, m, ok := strings.Cut(cn, ":")
	if !ok || !canonicalUUID(c) || !canonicalUUID(m) {
		return "", "", fmt.Errorf("certs: common name %q is not client_id:machine_id", cn)
	}
	return c, m, nil
}

func canonicalUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// Errors of this package that reach clients.
var (
	ErrMachineNotFound = apperr.New(apperr.NotFound, "machine not found")
	ErrNoCertificate   = apperr.New(apperr.Conflict, "this machine has no certificate")
	// ErrRefused is the one answer to an agent whose certificate is not accepted; the
	// reason is in the wrapping error, for the log only.
	ErrRefused = apperr.New(apperr.Unauthenticated, "client certificate not accepted")
	// ErrClientDisabled answers the agents of a client a platform admin has disabled.
	ErrClientDisabled = apperr.New(apperr.Forbidden, "this client's service is disabled")
)

// latestCertificate selects the machine's current certificate row: its unrevoked one if
// it has one, otherwise the most recently issued (so a revocation shows). $1 is the
// machine id. The view, the revocation and the heartbeat sync share this definition.
const latestCertificate = latestCertificateOf + `$1` + latestCertificateOrder

// latestCertificateOf + a machine id expression + latestCertificateOrder is
// latestCertificate for another expression (the group sync's x.id).
const (
	latestCertificateOf = `
	SELECT serial, issued_at, expires_at, revoked_at, revocation_reason
	FROM client_certificates
	WHERE machine_id = `
	latestCertificateOrder = `
	ORDER BY (revoked_at IS NULL) DESC, issued_at DESC, created_at DESC
	LIMIT 1`
)

// retryable reports transient conflicts of concurrent transactions: serialization
// failures, deadlocks, lock timeouts, and a unique violation a concurrent insert caused.
func retryable(err error) bool {
	return db.Transient(err) || db.Code(err) == db.UniqueViolation
}
