package certs

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/routes"
)

// Guard admits an agent whose client certificate the transport verified (chain and
// expiry: the local TLS listener, or API Gateway's mutual TLS) and that is still its
// machine's active certificate: revoked, superseded, unknown or mismatched certificates
// are refused from the very next request. Routes marked routes.CertInBatch get only the
// checks that need no database here; their handler asserts the rest (AssertActive) at the
// head of its own write batch. Handlers find the machine with AgentFrom.
func Guard(pool *pgxpool.Pool, clk clock.Clock, logger *slog.Logger) func(routes.Route, http.Handler) http.Handler {
	return guard(pool, nil, clk, logger)
}

// RefusingGuard is Guard for the heartbeat function: on routes.CertInBatch routes it also
// refuses, before the handler reads a byte of the body, a certificate or client marked
// refused in Redis (Marks: one Redis call, no database). When Redis cannot tell (absent,
// paused by its breaker, failing) it checks the database instead, an extra round trip
// only then. The handler's batch still asserts the certificate: it is the authority. Only
// the heartbeat function's routes are pre-checked: a superseded certificate may still
// replay its renewal (POST /agent/certificate/renew), which the local stack serves
// behind the same guard.
func RefusingGuard(pool *pgxpool.Pool, marks Marks, clk clock.Clock, logger *slog.Logger) func(routes.Route, http.Handler) http.Handler {
	return guard(pool, &marks, clk, logger)
}

func guard(pool *pgxpool.Pool, marks *Marks, clk clock.Clock, logger *slog.Logger) func(routes.Route, http.Handler) http.Handler {
	return func(r routes.Route, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			cert, ok := identity.ClientCert(req.Context())
			if !ok {
				httpx.WriteError(w, req, logger, apperr.ErrNoClientCert)
				return
			}
			var clientID, machineID, serial string
			var err error
			if r.Cert == routes.CertInBatch {
				clientID, machineID, serial, err = Inspect(cert, clk.Now())
				if err == nil && marks != nil && r.Function == routes.FnHeartbeat {
					if err = marks.Check(req.Context(), serial, clientID); errors.Is(err, errNoMarks) {
						clientID, machineID, err = CheckPresented(req.Context(), pool, cert, clk.Now())
					}
				}
			} else {
				serial = ca.SerialHex(cert.SerialNumber)
				clientID, machineID, err = CheckPresented(req.Context(), pool, cert, clk.Now())
			}
			if err != nil {
				if e, ok := apperr.As(err); ok && (e.Code == apperr.Unauthenticated || e.Code == apperr.Forbidden) {
					logger.InfoContext(req.Context(), "agent certificate refused", "reason", err.Error())
				}
				httpx.WriteError(w, req, logger, err)
				return
			}
			next.ServeHTTP(w, req.WithContext(WithAgent(req.Context(), Agent{ClientID: clientID, MachineID: machineID, Serial: serial})))
		})
	}
}
