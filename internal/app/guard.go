package app

import (
	"net/http"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/principal"
)

// guard enforces a route's Access before its handler runs. It fails closed: an access
// level without an authenticator refuses everyone.
func (d *Deps) guard(r Route) http.Handler {
	switch r.Access {
	case Public:
		return r.Handler
	case Agent:
		// A verified client certificate that is still its machine's active one (enrolment.go).
		return d.agentGuard(r.Handler)
	case User, ClientAdmin, PlatformAdmin, Session:
		return d.dashboardGuard(r)
	}
	// An access level without an authenticator refuses everyone.
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		httpx.WriteError(w, req, d.Logger, apperr.New(apperr.Unauthenticated, "authentication required"))
	})
}

// dashboardGuard authenticates the access token (Bearer header, or cookie plus CSRF
// header on unsafe methods), checks the role, then holds back every route but Session
// ones while the password must be changed. Handlers find the caller with principal.From.
func (d *Deps) dashboardGuard(r Route) http.Handler {
	a := d.AuthService()
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		sess, err := a.Authenticate(req)
		if err == nil {
			err = a.CheckCSRF(req, sess)
		}
		if err == nil && !allowed(r.Access, sess.Role, sess.ClientID) {
			err = apperr.New(apperr.Forbidden, "your role does not allow this")
		}
		if err == nil && r.Access != Session && sess.PasswordChangeRequired {
			err = apperr.New(apperr.PasswordChangeRequired, "change your password (POST /api/auth/password) before anything else")
		}
		if err != nil {
			httpx.WriteError(w, req, d.Logger, err)
			return
		}
		r.Handler.ServeHTTP(w, req.WithContext(auth.WithSession(req.Context(), sess)))
	})
}

// allowed tells whether a role may use a route of the given access level. Client routes
// need a client: a platform admin, who has none, is refused there.
func allowed(a Access, role, clientID string) bool {
	switch a {
	case Session:
		return true
	case User:
		return clientID != "" && (role == principal.RoleUser || role == principal.RoleAdmin)
	case ClientAdmin:
		return clientID != "" && role == principal.RoleAdmin
	case PlatformAdmin:
		return clientID == "" && role == principal.RolePlatformAdmin
	}
	return false
}
