package clients

import (
	"net/http"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/jsonfield"
	"github.com/optralis/optralis/internal/principal"
)

var errNothing = apperr.New(apperr.Invalid, "nothing to change: give at least one field")

func actor(r *http.Request) (principal.Principal, Actor, error) {
	p, ok := principal.From(r.Context())
	if !ok {
		return p, Actor{}, apperr.ErrUnauthenticated
	}
	return p, Actor{UserID: p.UserID, IP: httpx.ClientIP(r)}, nil
}

// pathID is the {id} of the path; a malformed one is a client that does not exist.
func pathID(r *http.Request) (string, error) {
	id, ok := httpx.ParseID(r.PathValue("id"))
	if !ok {
		return "", ErrNotFound
	}
	return id, nil
}

func decodeChanges(r *http.Request) (Changes, error) {
	var b body
	if err := httpx.DecodeJSON(r, &b); err != nil {
		return Changes{}, err
	}
	return b.changes()
}

// answer writes fn's result with status, or its error.
func answer[T any](d Deps, status int, fn func(r *http.Request) (T, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, status, v)
	})
}

type listResponse struct {
	Clients []View `json:"clients"`
}

// HandleList is GET /api/admin/clients: every client with its machine count and licence
// usage, by name.
func HandleList(d Deps) http.Handler {
	return answer(d, http.StatusOK, func(r *http.Request) (listResponse, error) {
		list, err := List(r.Context(), d.Pool)
		return listResponse{list}, err
	})
}

// HandleCreate is POST /api/admin/clients {name, license_tier, license_expires_at,
// max_machines, is_active, agent_channel}: only the name is required (defaults: Trial, no
// expiry, 5 machines, enabled, stable).
func HandleCreate(d Deps) http.Handler {
	return answer(d, http.StatusCreated, func(r *http.Request) (View, error) {
		_, a, err := actor(r)
		if err != nil {
			return View{}, err
		}
		c, err := decodeChanges(r)
		if err != nil {
			return View{}, err
		}
		if c, err = c.forCreate(); err != nil {
			return View{}, err
		}
		return Create(r.Context(), d, c, a)
	})
}

// HandleGet is GET /api/admin/clients/{id}.
func HandleGet(d Deps) http.Handler {
	return answer(d, http.StatusOK, func(r *http.Request) (View, error) {
		id, err := pathID(r)
		if err != nil {
			return View{}, err
		}
		return Get(r.Context(), d, id)
	})
}

// HandlePatch is PATCH /api/admin/clients/{id}: any subset of the client's fields.
// is_active=false cuts every session of the client's users and refuses its agents.
func HandlePatch(d Deps) http.Handler {
	return answer(d, http.StatusOK, func(r *http.Request) (View, error) {
		return patch(r, d, pathID, decodeChanges)
	})
}

func patch(r *http.Request, d Deps, target func(*http.Request) (string, error), decode func(*http.Request) (Changes, error)) (View, error) {
	_, a, err := actor(r)
	if err != nil {
		return View{}, err
	}
	id, err := target(r)
	if err != nil {
		return View{}, err
	}
	c, err := decode(r)
	if err != nil {
		return View{}, err
	}
	if c.empty() {
		return View{}, errNothing
	}
	return Update(r.Context(), d, id, c, a)
}

type inviteBody struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

// HandleInviteAdmin is POST /api/admin/clients/{id}/users {email, name}: an admin of the
// client (its first one, at onboarding), invited.
func HandleInviteAdmin(d Deps) http.Handler {
	h := answer(d, http.StatusCreated, func(r *http.Request) (Invited, error) {
		_, a, err := actor(r)
		if err != nil {
			return Invited{}, err
		}
		id, err := pathID(r)
		if err != nil {
			return Invited{}, err
		}
		var b inviteBody
		if err := httpx.DecodeJSON(r, &b); err != nil {
			return Invited{}, err
		}
		in, err := Invitee(b.Email, b.Name, principal.RoleAdmin, id)
		if err != nil {
			return Invited{}, err
		}
		return Invite(r.Context(), d, in, a)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store") // the answer may hold a set-password link
		h.ServeHTTP(w, r)
	})
}

// Invitee checks a new user's name (the email is checked by auth.Service.Invite, which
// trims it first).
func Invitee(email, name, role, clientID string) (auth.Invitee, error) {
	name, err := jsonfield.Text(name, 0, MaxNameLen)
	if err != nil {
		return auth.Invitee{}, apperr.InvalidFields(map[string]string{"name": err.Error()})
	}
	if email == "" {
		return auth.Invitee{}, apperr.InvalidFields(map[string]string{"email": "required"})
	}
	return auth.Invitee{Email: email, Name: name, Role: role, ClientID: clientID}, nil
}

// HandleGetOwn is GET /api/client: the caller's client, its licence (tier, expiry,
// machine limit, retention), machine count and agent channel.
func HandleGetOwn(d Deps) http.Handler {
	return answer(d, http.StatusOK, func(r *http.Request) (View, error) {
		p, _, err := actor(r)
		if err != nil {
			return View{}, err
		}
		return Get(r.Context(), d, p.ClientID)
	})
}

// HandlePatchOwn is PATCH /api/client {name}: a client admin renames their client. The
// licence fields are the platform admin's and are refused by name.
func HandlePatchOwn(d Deps) http.Handler {
	own := func(r *http.Request) (string, error) {
		p, _ := principal.From(r.Context())
		return p.ClientID, nil
	}
	decode := func(r *http.Request) (Changes, error) {
		var b body
		if err := httpx.DecodeJSON(r, &b); err != nil {
			return Changes{}, err
		}
		bad := map[string]string{}
		for name, m := range map[string]jsonfield.Member{"license_tier": b.LicenseTier, "license_expires_at": b.LicenseExpiresAt,
			"max_machines": b.MaxMachines, "is_active": b.Active, "agent_channel": b.AgentChannel} {
			if m.Set {
				bad[name] = "only a platform administrator can change it"
			}
		}
		if len(bad) > 0 {
			return Changes{}, apperr.InvalidFields(bad)
		}
		return b.changes()
	}
	return answer(d, http.StatusOK, func(r *http.Request) (View, error) { return patch(r, d, own, decode) })
}
