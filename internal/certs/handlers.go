package certs

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/fleetcache"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/principal"
)

// Deps are what the certificate handlers need.
type Deps struct {
	Pool   *pgxpool.Pool
	Clock  clock.Clock
	Logger *slog.Logger
	Cache  cache.Store // machine lists show the certificate status: a revocation invalidates them
}

// MaxReasonLen bounds a revocation reason.
const MaxReasonLen = 500

// DefaultRevocationReason is recorded when the user gives none.
const DefaultRevocationReason = "revoked from the dashboard"

// machineParam returns the caller's client and the {id} of the path. A malformed id is a
// machine that does not exist.
func machineParam(r *http.Request) (principal.Principal, string, error) {
	p, ok := principal.From(r.Context())
	if !ok || p.ClientID == "" {
		return p, "", apperr.ErrUnauthenticated
	}
	id, ok := httpx.ParseID(r.PathValue("id"))
	if !ok {
		return p, "", ErrMachineNotFound
	}
	return p, id, nil
}

// HandleGet is GET /api/machines/{id}/certificate: the machine's current certificate and
// its status, computed now.
func HandleGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, id, err := machineParam(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		v, err := Get(r.Context(), d.Pool, p.ClientID, id, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	})
}

type revokeBody struct {
	Reason string `json:"reason"`
}

type revokeResponse struct {
	View
	// Revoked is false when there was nothing left to revoke (already revoked).
	Revoked bool `json:"revoked"`
}

// HandleRevoke is POST /api/machines/{id}/certificate/revoke {reason}: the machine's
// certificate is revoked and the agent refused from its next request. The body, and the
// reason in it, are optional.
func HandleRevoke(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, id, err := machineParam(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		reason, err := readReason(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		now := d.Clock.Now()
		v, revoked, err := Revoke(r.Context(), d.Pool, RevokeRequest{
			ClientID: p.ClientID, MachineID: id, Reason: reason, UserID: p.UserID, IP: httpx.ClientIP(r),
		}, now)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		// Marked even when it was already revoked: a mark lost earlier is restored.
		if v.Serial != "" && v.RevokedAt != nil {
			until := time.Time{}
			if v.ExpiresAt != nil {
				until = *v.ExpiresAt
			}
			Marks{Store: d.Cache}.Refuse(context.WithoutCancel(r.Context()), now, Refusal{Serial: v.Serial, Until: until})
		}
		if revoked {
			fleetcache.Invalidate(context.WithoutCancel(r.Context()), d.Cache, p.ClientID)
		}
		httpx.WriteJSON(w, http.StatusOK, revokeResponse{View: v, Revoked: revoked})
	})
}

func readReason(r *http.Request) (string, error) {
	body, err := httpx.ReadBody(r.Body, 16<<10)
	if err != nil {
		return "", err
	}
	var b revokeBody
	if len(bytes.TrimSpace(body)) > 0 {
		if err := httpx.DecodeJSONBytes(body, &b); err != nil {
			return "", err
		}
	}
	reason := strings.TrimSpace(b.Reason)
	switch {
	case reason == "":
		return DefaultRevocationReason, nil
	case len([]rune(reason)) > MaxReasonLen:
		return "", apperr.InvalidFields(map[string]string{"reason": "at most 500 characters"})
	case !utf8.ValidString(reason) || strings.IndexFunc(reason, unicode.IsControl) >= 0:
		return "", apperr.InvalidFields(map[string]string{"reason": "must be text without control characters"})
	}
	return reason, nil
}
