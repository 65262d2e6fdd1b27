package alertrules

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/fleetcache"
	"github.com/optralis/optralis/internal/httpx"
)

// Deps are what the handlers need.
type Deps struct {
	Pool   *pgxpool.Pool
	Cache  cache.Store // machine lists count firing alerts: closing episodes changes them
	Clock  clock.Clock
	Logger *slog.Logger
}

// maxBody bounds a rule body: a few hundred bytes of members.
const maxBody = 16 << 10

func decode(r *http.Request) (Patch, error) {
	var b Body
	if err := httpx.DecodeJSONLimit(r, &b, maxBody); err != nil {
		return Patch{}, err
	}
	p, bad := b.Parse()
	if len(bad) > 0 {
		return Patch{}, apperr.InvalidFields(bad)
	}
	return p, nil
}

// changed drops the client's cached machine lists once alerts were closed.
func (d Deps) changed(ctx context.Context, clientID string, c Closed) {
	if c.Resolved > 0 {
		fleetcache.Invalidate(context.WithoutCancel(ctx), d.Cache, clientID)
	}
}

// HandleList is GET /api/alert-rules: the client's rules (no query parameters).
func HandleList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := httpx.ClientActor(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		if bad := httpx.QueryProblems(r.URL.Query()); len(bad) > 0 {
			httpx.WriteError(w, r, d.Logger, apperr.InvalidFields(bad))
			return
		}
		list, err := List(r.Context(), d.Pool, a.ClientID)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"rules": list})
	})
}

// HandleGet is GET /api/alert-rules/{id}.
func HandleGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, id, err := httpx.ClientTarget(r, ErrNotFound)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		rule, err := Get(r.Context(), d.Pool, a.ClientID, id)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, rule)
	})
}

// HandleCreate is POST /api/alert-rules.
func HandleCreate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := httpx.ClientActor(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		p, err := decode(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		rule, err := Create(r.Context(), d.Pool, a, p, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusCreated, rule)
	})
}

// HandleUpdate is PATCH /api/alert-rules/{id}: any subset of the members; null clears a
// nullable one (group_id and machine_id null: every machine).
func HandleUpdate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, id, err := httpx.ClientTarget(r, ErrNotFound)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		p, err := decode(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		if p.Empty() {
			httpx.WriteError(w, r, d.Logger, apperr.New(apperr.Invalid, "nothing to change: give at least one member of the rule"))
			return
		}
		rule, closed, err := Update(r.Context(), d.Pool, a, id, p, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		d.changed(r.Context(), a.ClientID, closed)
		httpx.WriteJSON(w, http.StatusOK, rule)
	})
}

// HandleDelete is DELETE /api/alert-rules/{id}.
func HandleDelete(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, id, err := httpx.ClientTarget(r, ErrNotFound)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		closed, err := Delete(r.Context(), d.Pool, a, id, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		d.changed(r.Context(), a.ClientID, closed)
		w.WriteHeader(http.StatusNoContent)
	})
}
