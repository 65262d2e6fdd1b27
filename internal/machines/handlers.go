package machines

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/fleetcache"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/principal"
)

// Deps are what the machine handlers need.
type Deps struct {
	Pool   *pgxpool.Pool
	Cache  cache.Store
	Clock  clock.Clock
	Logger *slog.Logger
}

// MaxEditBody bounds a PATCH body: 10,000 characters of notes and 100 group ids fit.
const MaxEditBody = 64 << 10

func caller(r *http.Request) (principal.Principal, error) {
	p, ok := principal.From(r.Context())
	if !ok || p.ClientID == "" {
		return p, apperr.ErrUnauthenticated
	}
	return p, nil
}

// machineParam returns the caller and the {id} of the path; a malformed id is a machine
// that does not exist.
func machineParam(r *http.Request) (principal.Principal, string, error) {
	p, err := caller(r)
	if err != nil {
		return p, "", err
	}
	id, ok := httpx.ParseID(r.PathValue("id"))
	if !ok {
		return p, "", ErrNotFound
	}
	return p, id, nil
}

// HandleList is GET /api/machines. Pages are cached per client and query for the spec's
// 30 s (machines:list), so a cached page may show a status up to 30 s old; any change to
// the client's machines or groups moves the cache's version on, so a change made through
// the API shows at once.
func HandleList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := caller(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		q, err := ParseListQuery(r.URL.Query())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var page Page
		cached, hit := fleetcache.GetPage(r.Context(), d.Cache, p.ClientID, q.cacheField(), &page)
		if !hit {
			if page, err = List(r.Context(), d.Pool, d.Cache, p.ClientID, q, d.Clock.Now()); err != nil {
				httpx.WriteError(w, r, d.Logger, err)
				return
			}
			cached.Put(r.Context(), page)
		}
		httpx.WriteJSON(w, http.StatusOK, page)
	})
}

// HandleGet is GET /api/machines/{id}.
func HandleGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, id, err := machineParam(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		v, err := GetDetails(r.Context(), d.Pool, p.ClientID, id, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	})
}

// HandlePatch is PATCH /api/machines/{id} {display_name, notes, group_ids}: any user of the
// client may rename a machine, annotate it and file it in groups (deleting it takes an
// admin). It answers the machine's details.
func HandlePatch(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, id, err := machineParam(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var c Change
		if err := httpx.DecodeJSONLimit(r, &c, MaxEditBody); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		if err := c.normalise(); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		now := d.Clock.Now()
		if err := Update(r.Context(), d.Pool, now, Actor{ClientID: p.ClientID, UserID: p.UserID, IP: httpx.ClientIP(r)}, id, c); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		if !c.empty() {
			fleetcache.Invalidate(context.WithoutCancel(r.Context()), d.Cache, p.ClientID)
		}
		v, err := GetDetails(r.Context(), d.Pool, p.ClientID, id, now)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, v)
	})
}

// HandleDelete is DELETE /api/machines/{id} (client admins): the certificate is revoked,
// the machine leaves every list and count at once, and its agent is refused from its next
// request. Its history is purged by the cleanup job.
func HandleDelete(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, id, err := machineParam(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		now := d.Clock.Now()
		refused, err := Delete(r.Context(), d.Pool, now, Actor{ClientID: p.ClientID, UserID: p.UserID, IP: httpx.ClientIP(r)}, id)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		certs.Marks{Store: d.Cache}.Refuse(context.WithoutCancel(r.Context()), now, refused)
		fleetcache.Invalidate(context.WithoutCancel(r.Context()), d.Cache, p.ClientID)
		w.WriteHeader(http.StatusNoContent)
	})
}

// HandleOverview is GET /api/overview: the fleet summary, computed now.
func HandleOverview(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := caller(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		o, err := GetOverview(r.Context(), d.Pool, p.ClientID, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, o)
	})
}
