package users

import (
	"net/http"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/clients"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/jsonfield"
	"github.com/optralis/optralis/internal/principal"
)

const roleProblem = "must be user or admin"

func request(r *http.Request) (Request, error) {
	p, ok := principal.From(r.Context())
	if !ok || p.ClientID == "" {
		return Request{}, apperr.ErrUnauthenticated
	}
	return Request{ClientID: p.ClientID, Actor: clients.Actor{UserID: p.UserID, IP: httpx.ClientIP(r)}}, nil
}

// targetRequest adds the {id} of the path; a malformed one is a user that does not exist.
func targetRequest(r *http.Request) (Request, error) {
	req, err := request(r)
	if err != nil {
		return req, err
	}
	var ok bool
	if req.TargetID, ok = httpx.ParseID(r.PathValue("id")); !ok {
		return req, ErrNotFound
	}
	return req, nil
}

func clientRole(s string) bool { return s == principal.RoleUser || s == principal.RoleAdmin }

type listResponse struct {
	Users []User `json:"users"`
}

// HandleList is GET /api/users: the caller's client's users.
func HandleList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := request(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		list, err := List(r.Context(), d.Pool, req.ClientID, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, listResponse{list})
	})
}

type createBody struct {
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"` // default user
}

// HandleCreate is POST /api/users {email, name, role}: a user of the caller's client,
// invited (mail, or a one-time set-password link in the answer when mail is disabled).
func HandleCreate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store") // the answer may hold a set-password link
		req, err := request(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var b createBody
		if err := httpx.DecodeJSON(r, &b); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		if b.Role == "" {
			b.Role = principal.RoleUser
		}
		if !clientRole(b.Role) {
			httpx.WriteError(w, r, d.Logger, apperr.InvalidFields(map[string]string{"role": roleProblem}))
			return
		}
		in, err := clients.Invitee(b.Email, b.Name, b.Role, req.ClientID)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		out, err := clients.Invite(r.Context(), d, in, req.Actor)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusCreated, out)
	})
}

type patchBody struct {
	Role   jsonfield.Member `json:"role"`
	Active jsonfield.Member `json:"is_active"`
	Name   jsonfield.Member `json:"name"`
}

func (b patchBody) changes() (Changes, error) {
	var c Changes
	bad := map[string]string{}
	if b.Role.Set {
		if s, ok := b.Role.String(); ok && clientRole(s) {
			c.Role = &s
		} else {
			bad["role"] = roleProblem
		}
	}
	if b.Active.Set {
		if v, ok := b.Active.Bool(); ok {
			c.Active = &v
		} else {
			bad["is_active"] = "must be true or false"
		}
	}
	if b.Name.Set {
		s, ok := b.Name.String()
		if ok {
			var err error
			if s, err = jsonfield.Text(s, 0, clients.MaxNameLen); err != nil {
				ok = false
			}
		}
		if ok {
			c.Name = &s
		} else {
			bad["name"] = "must be at most 255 characters of text"
		}
	}
	if len(bad) > 0 {
		return Changes{}, apperr.InvalidFields(bad)
	}
	if c == (Changes{}) {
		return c, apperr.New(apperr.Invalid, "nothing to change: give role, is_active or name")
	}
	return c, nil
}

// HandlePatch is PATCH /api/users/{id} {role, is_active, name}: any subset. Deactivation
// and role changes end the user's sessions at once; nobody demotes or deactivates
// themselves (409).
func HandlePatch(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := targetRequest(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var b patchBody
		if err := httpx.DecodeJSON(r, &b); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		c, err := b.changes()
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		u, err := Update(r.Context(), d, req, c)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, u)
	})
}

// HandleDelete is DELETE /api/users/{id}: 204. Nobody deletes themselves (409).
func HandleDelete(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := targetRequest(r)
		if err == nil {
			err = Delete(r.Context(), d, req)
		}
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
