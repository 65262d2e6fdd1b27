package groups

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/fleetcache"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/validate"
)

// Deps are what the handlers need.
type Deps struct {
	Pool   *pgxpool.Pool
	Cache  cache.Store // machine lists show group names and colours
	Clock  clock.Clock
	Logger *slog.Logger
}

// maxMembersBody fits MaxMembers quoted UUIDs with room to spare.
const maxMembersBody = 256 << 10

// input is a create or update body; nil fields were not sent.
type input struct {
	Name  *string `json:"name"`
	Color *string `json:"color"`
}

// check validates the fields sent, trimming the name and writing the colour in upper case
// (one spelling per colour).
func (in *input) check(bad map[string]string) {
	if in.Name != nil {
		name, err := validate.GroupName(*in.Name)
		if err != nil {
			bad["name"] = err.Error()
		}
		in.Name = &name
	}
	if in.Color != nil {
		if err := validate.HexColor(*in.Color); err != nil {
			bad["color"] = err.Error()
		}
		c := strings.ToUpper(*in.Color)
		in.Color = &c
	}
}

// changed drops the client's cached machine lists after a committed change.
func (d Deps) changed(ctx context.Context, clientID string) {
	fleetcache.Invalidate(context.WithoutCancel(ctx), d.Cache, clientID)
}

// HandleList is GET /api/groups: the caller's client's groups with their live machine counts.
func HandleList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := httpx.ClientActor(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		list, err := List(r.Context(), d.Pool, a.ClientID)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"groups": list})
	})
}

// HandleCreate is POST /api/groups {name, color?} (colour default DefaultColor).
func HandleCreate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := httpx.ClientActor(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var in input
		if err := httpx.DecodeJSON(r, &in); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		bad := map[string]string{}
		if in.Name == nil {
			bad["name"] = "required"
		}
		if in.Color == nil {
			c := DefaultColor
			in.Color = &c
		}
		in.check(bad)
		if len(bad) > 0 {
			httpx.WriteError(w, r, d.Logger, apperr.InvalidFields(bad))
			return
		}
		g, err := Create(r.Context(), d.Pool, a, *in.Name, *in.Color, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		d.changed(r.Context(), a.ClientID)
		httpx.WriteJSON(w, http.StatusCreated, g)
	})
}

// HandleUpdate is PATCH /api/groups/{id} {name?, color?}: at least one of them.
func HandleUpdate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, id, err := httpx.ClientTarget(r, ErrNotFound)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var in input
		if err := httpx.DecodeJSON(r, &in); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		bad := map[string]string{}
		if in.Name == nil && in.Color == nil {
			bad["name"], bad["color"] = "give name, color or both", "give name, color or both"
		}
		in.check(bad)
		if len(bad) > 0 {
			httpx.WriteError(w, r, d.Logger, apperr.InvalidFields(bad))
			return
		}
		g, err := Update(r.Context(), d.Pool, a, id, in.Name, in.Color, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		d.changed(r.Context(), a.ClientID)
		httpx.WriteJSON(w, http.StatusOK, g)
	})
}

// HandleDelete is DELETE /api/groups/{id}: the machines stay, only their membership goes.
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
		d.changed(r.Context(), a.ClientID)
		w.WriteHeader(http.StatusNoContent)
	})
}

type membersBody struct {
	MachineIDs []string `json:"machine_ids"`
}

// HandleSetMembers is PUT /api/groups/{id}/machines {machine_ids}: the group's members
// become exactly these machines (an empty list empties the group; duplicates count once).
func HandleSetMembers(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, id, err := httpx.ClientTarget(r, ErrNotFound)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var b membersBody
		if err := httpx.DecodeJSONLimit(r, &b, maxMembersBody); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		ids, err := machineIDs(b.MachineIDs)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		m, err := SetMembers(r.Context(), d.Pool, a, id, ids, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		d.changed(r.Context(), a.ClientID)
		httpx.WriteJSON(w, http.StatusOK, m)
	})
}

// machineIDs checks and canonicalises the body's ids, dropping duplicates.
func machineIDs(raw []string) ([]string, error) {
	switch {
	case raw == nil:
		return nil, apperr.InvalidFields(map[string]string{"machine_ids": "required: a list of machine ids (empty to empty the group)"})
	case len(raw) > MaxMembers:
		return nil, apperr.InvalidFields(map[string]string{"machine_ids": "at most 5000 machines at once"})
	}
	seen := make(map[string]bool, len(raw))
	ids := make([]string, 0, len(raw))
	var malformed []string
	for _, s := range raw {
		id, ok := httpx.ParseID(s)
		if !ok {
			if len(malformed) < maxListedIDs {
				malformed = append(malformed, quote(s))
			}
			continue
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(malformed) > 0 {
		return nil, apperr.InvalidFields(map[string]string{"machine_ids": "not machine ids (UUIDs): " + strings.Join(malformed, ", ")})
	}
	return ids, nil
}

// quote shows a refused value briefly and safely (escaped, at most 40 bytes of it).
func quote(s string) string {
	if len(s) > 40 {
		return strconv.Quote(s[:40]) + "…"
	}
	return strconv.Quote(s)
}
