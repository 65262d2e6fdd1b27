package maintenance

import (
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/httpx"
)

// Deps are what the handlers need.
type Deps struct {
	Pool   *pgxpool.Pool
	Clock  clock.Clock
	Logger *slog.Logger
}

const maxBody = 16 << 10

// HandleList is GET /api/maintenance-windows: the client's windows, each with whether it
// is active now and its next start.
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
		list, err := List(r.Context(), d.Pool, a.ClientID, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"windows": list})
	})
}

// HandleGet is GET /api/maintenance-windows/{id}.
func HandleGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, id, err := httpx.ClientTarget(r, ErrNotFound)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		win, err := Get(r.Context(), d.Pool, a.ClientID, id, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, win)
	})
}

// HandleCreate is POST /api/maintenance-windows.
func HandleCreate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := httpx.ClientActor(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var b Body
		if err := httpx.DecodeJSONLimit(r, &b, maxBody); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		win, err := Create(r.Context(), d.Pool, a, b, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusCreated, win)
	})
}

// HandleUpdate is PATCH /api/maintenance-windows/{id}: any subset of the members.
func HandleUpdate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, id, err := httpx.ClientTarget(r, ErrNotFound)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var b Body
		if err := httpx.DecodeJSONLimit(r, &b, maxBody); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		if b.empty() {
			httpx.WriteError(w, r, d.Logger, apperr.New(apperr.Invalid, "nothing to change: give at least one member of the window"))
			return
		}
		win, err := Update(r.Context(), d.Pool, a, id, b, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, win)
	})
}

// HandleDelete is DELETE /api/maintenance-windows/{id}.
func HandleDelete(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, id, err := httpx.ClientTarget(r, ErrNotFound)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		if err := Delete(r.Context(), d.Pool, a, id, d.Clock.Now()); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
