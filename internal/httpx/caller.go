package httpx

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/principal"
)

// ClientActor is the signed-in user of a client-scoped dashboard route (401 without one,
// and for a platform admin, who belongs to no client).
func ClientActor(r *http.Request) (principal.Actor, error) {
	p, ok := principal.From(r.Context())
	if !ok || p.ClientID == "" {
		return principal.Actor{}, apperr.ErrUnauthenticated
	}
	return principal.Actor{ClientID: p.ClientID, UserID: p.UserID, IP: ClientIP(r)}, nil
}

// ClientTarget is ClientActor and the {id} of the path. A malformed id answers notFound,
// like an unknown id or another client's: which ids exist is nobody else's business.
func ClientTarget(r *http.Request, notFound error) (principal.Actor, string, error) {
	a, err := ClientActor(r)
	if err != nil {
		return a, "", err
	}
	id, ok := ParseID(r.PathValue("id"))
	if !ok {
		return a, "", notFound
	}
	return a, id, nil
}

// ParseID accepts a UUID in its canonical 36-character form only and returns it in lower
// case, so one resource has one spelling in paths, logs and cache keys.
func ParseID(s string) (string, bool) {
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", false
	}
	return u.String(), true
}
