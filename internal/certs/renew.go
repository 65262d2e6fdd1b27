package certs

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/identity"
)

// Renewal (POST /agent/certificate/renew), after smallstep's api/renew.go: the agent is
// identified by the certificate it presents over mutual TLS, which must be its machine's
// active one, and sends a CSR for the key it will use next (a new one, or the same). The
// new certificate is signed for that key and supersedes the presented one in one
// transaction (IssueTx).
//
// A retried renewal. The agent may lose the answer (timeout, crash before it wrote the
// file): its presented certificate is then already superseded and the guard's rule would
// refuse it. So this route asserts the certificate itself (routes.CertInBatch) and accepts
// one more case, for RenewalGrace after the renewal only: the presented certificate was
// superseded by a renewal, the certificate that superseded it is still the machine's
// active one, and the retried CSR is for that certificate's public key. The answer is then
// the same certificate, read back from client_certificates.certificate_pem — nothing is
// signed or written. Anything else (a different key, after the window, after another
// renewal or a revocation) is the usual 401.

// RenewalGrace is how long after a renewal its superseded certificate may still fetch the
// certificate that replaced it (same CSR key only).
const RenewalGrace = 10 * time.Minute

// MinRenewalAge is the youngest certificate that may be renewed: an agent renewing in a
// loop would sign (a KMS call each) and store a certificate per request. A retry within
// RenewalGrace is answered from the record and is not limited.
const MinRenewalAge = time.Hour

// RenewWindow is when the heartbeat tells an agent to renew: its certificate expires within
// this window (the spec's "expiring" status).
const RenewWindow = ExpiringWithin

// ShouldRenew reports whether a certificate expiring at notAfter should be renewed at now.
func ShouldRenew(notAfter, now time.Time) bool { return notAfter.Before(now.Add(RenewWindow)) }

// Renewed is a renewal's outcome: the certificate (PEM) and its serial and expiry.
type Renewed struct {
	Serial    string
	ExpiresAt time.Time
	CertPEM   []byte
	// Replayed is true when a retried renewal got the certificate already issued.
	Replayed bool
}

// MaxRenewBody bounds a renewal request (a CSR is at most ca.MaxCSRBytes).
const MaxRenewBody = 32 << 10

// ErrRenewedRecently refuses to renew a certificate issued less than MinRenewalAge ago.
var ErrRenewedRecently = apperr.New(apperr.RateLimited, "this certificate was issued less than an hour ago; renew it later")

// Renew renews the presented certificate of agent a for the public key pub (from a verified
// CSR) at now, or replays a renewal just made for the same key (see RenewalGrace).
func Renew(ctx context.Context, pool *pgxpool.Pool, authority *ca.CA, a Agent, pub crypto.PublicKey, ip string, now time.Time) (Renewed, error) {
	if authority == nil {
		return Renewed{}, apperr.New(apperr.Unavailable, "certificate renewal is not configured on this server")
	}
	var out Renewed
	var err error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		err = db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
			var e error
			out, e = renewTx(ctx, tx, authority, a, pub, ip)
			return e
		})
		if err == nil || !retryable(err) {
			break
		}
	}
	return out, err
}

func renewTx(ctx context.Context, tx *db.Tx, authority *ca.CA, a Agent, pub crypto.PublicKey, ip string) (Renewed, error) {
	// Renewals of one machine run one after the other: a concurrent retry waits for the
	// first to commit, then finds its certificate superseded and replays.
	var locked string
	if err := tx.QueryRow(ctx, `SELECT id FROM machines WHERE id = $1 AND client_id = $2 AND deleted_at IS NULL FOR UPDATE`,
		a.MachineID, a.ClientID).Scan(&locked); err != nil {
		if db.IsNoRows(err) {
			return Renewed{}, fmt.Errorf("certs: renew: machine %s gone or not of client %s: %w", a.MachineID, a.ClientID, ErrRefused)
		}
		return Renewed{}, db.Error(err, "certs: renew: lock machine")
	}
	// The active-certificate rule (optralis_assert_agent), in a savepoint so that a refusal
	// leaves the transaction usable for the replay check.
	sql, args := AssertActive(a, tx.Now)
	refusal := db.InTxAt(ctx, tx, tx.Now, func(sp *db.Tx) error { _, err := sp.Exec(ctx, sql, args...); return err })
	if refusal != nil {
		if db.Code(refusal) != db.AgentRefused {
			return Renewed{}, RefusalError(refusal, "certs: renew: check serial "+a.Serial)
		}
		r, ok, err := replay(ctx, tx, a, pub)
		if err != nil || !ok {
			if err == nil {
				err = RefusalError(refusal, "certs: renew: check serial "+a.Serial)
			}
			return Renewed{}, err
		}
		return r, nil
	}
	var issuedAt time.Time
	if err := tx.QueryRow(ctx, `SELECT issued_at FROM client_certificates WHERE serial = $1`, a.Serial).Scan(&issuedAt); err != nil {
		return Renewed{}, db.Error(err, "certs: renew: read certificate")
	}
	if tx.Now.Sub(issuedAt) < MinRenewalAge {
		e := *ErrRenewedRecently
		e.RetryAfter = int((MinRenewalAge - tx.Now.Sub(issuedAt) + time.Second - 1) / time.Second)
		return Renewed{}, &e
	}
	issued, err := IssueTx(ctx, tx, authority, IssueRequest{ClientID: a.ClientID, MachineID: a.MachineID, PublicKey: pub, IP: ip, Reason: "renewal"})
	if err != nil {
		return Renewed{}, err
	}
	return Renewed{Serial: issued.Serial, ExpiresAt: issued.ExpiresAt, CertPEM: issued.CertPEM}, nil
}

// replay finds the certificate that superseded the presented one within RenewalGrace, if
// it is still the machine's active certificate and certifies pub.
func replay(ctx context.Context, tx *db.Tx, a Agent, pub crypto.PublicKey) (Renewed, bool, error) {
	var r Renewed
	var certPEM string
	err := tx.QueryRow(ctx, `
		SELECT n.serial, n.expires_at, n.certificate_pem
		FROM client_certificates o
		JOIN client_certificates n ON n.machine_id = o.machine_id AND n.client_id = o.client_id
		  AND n.revoked_at IS NULL AND n.issued_at = o.revoked_at AND n.expires_at > $4
		JOIN clients cl ON cl.id = o.client_id AND cl.is_active
		WHERE o.serial = $1 AND o.client_id = $2 AND o.machine_id = $3
		  AND o.revocation_reason = 'superseded' AND o.revoked_at > $5 AND o.expires_at > $4
		  AND n.certificate_pem IS NOT NULL`,
		a.Serial, a.ClientID, a.MachineID, tx.Now, tx.Now.Add(-RenewalGrace)).Scan(&r.Serial, &r.ExpiresAt, &certPEM)
	if db.IsNoRows(err) {
		return Renewed{}, false, nil
	}
	if err != nil {
		return Renewed{}, false, db.Error(err, "certs: renew: replay")
	}
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		return Renewed{}, false, errors.New("certs: renew: stored certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return Renewed{}, false, fmt.Errorf("certs: renew: stored certificate: %w", err)
	}
	same, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !same.Equal(pub) {
		return Renewed{}, false, nil
	}
	r.CertPEM, r.Replayed = []byte(certPEM), true
	return r, true, nil
}

// RenewDeps are what the renewal handler needs.
type RenewDeps struct {
	Pool   *pgxpool.Pool
	CA     *ca.CA // nil: 503
	Clock  clock.Clock
	Logger *slog.Logger
	Cache  cache.Store // the superseded certificate is marked refused for the heartbeat guard
}

// RenewRequest is the body of POST /agent/certificate/renew.
type RenewRequest struct {
	CSR string `json:"csr"` // PEM CERTIFICATE REQUEST for the key the agent will use
}

// RenewResponse is its answer.
type RenewResponse struct {
	Certificate string    `json:"certificate"` // PEM
	CAChain     string    `json:"ca_chain"`    // PEM of the CA that signs machine certificates
	Serial      string    `json:"serial"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// HandleRenew is POST /agent/certificate/renew {csr}.
func HandleRenew(d RenewDeps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		a, ok := AgentFrom(ctx)
		if !ok {
			httpx.WriteError(w, r, d.Logger, apperr.ErrNoClientCert)
			return
		}
		var req RenewRequest
		if err := httpx.DecodeJSONLimit(r, &req, MaxRenewBody); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		if req.CSR == "" {
			httpx.WriteError(w, r, d.Logger, apperr.InvalidFields(map[string]string{"csr": "required: a PEM certificate request for the agent's key"}))
			return
		}
		csr, err := ca.ParseCSR([]byte(req.CSR))
		if err != nil {
			httpx.WriteError(w, r, d.Logger, apperr.InvalidFields(map[string]string{"csr": PublicCSRError(err)}))
			return
		}
		res, err := Renew(ctx, d.Pool, d.CA, a, csr.PublicKey, httpx.ClientIP(r), d.Clock.Now())
		if err != nil {
			if errors.Is(err, ErrRefused) {
				d.Logger.InfoContext(ctx, "certificate renewal refused", "serial", a.Serial, "reason", err.Error())
			}
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		if !res.Replayed {
			// The presented certificate is superseded: its heartbeats are refused before
			// their body is read (RefusingGuard); its renewal may still replay (Guard).
			cert, _ := identity.ClientCert(ctx)
			refused := Refusal{Serial: a.Serial}
			if cert != nil {
				refused.Until = cert.NotAfter
			}
			Marks{Store: d.Cache}.Refuse(context.WithoutCancel(ctx), d.Clock.Now(), refused)
		}
		d.Logger.InfoContext(ctx, "agent certificate renewed", "client_id", a.ClientID, "machine_id", a.MachineID,
			"old_serial", a.Serial, "serial", res.Serial, "expires_at", res.ExpiresAt, "replayed", res.Replayed)
		httpx.WriteJSON(w, http.StatusOK, RenewResponse{Certificate: string(res.CertPEM), CAChain: string(d.CA.CertPEM),
			Serial: res.Serial, ExpiresAt: res.ExpiresAt})
	})
}

// PublicCSRError is the message of a CSR refusal that may be shown to the agent.
func PublicCSRError(err error) string {
	for _, known := range []error{ca.ErrMalformedCSR, ca.ErrCSRSignature, ca.ErrKeyType} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	return ca.ErrMalformedCSR.Error()
}
