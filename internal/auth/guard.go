package auth

import (
	"net/http"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/routes"
)

// Guard admits the callers of a dashboard route: it authenticates the access token
// (Bearer header, or cookie plus CSRF header on unsafe methods), checks the role against
// the route's access level, then holds back every route but Session ones while the
// password must be changed. Handlers find the caller with principal.From.
func (s *Service) Guard(r routes.Route, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		sess, err := s.Authenticate(req)
		if err == nil {
			err = s.CheckCSRF(req, sess)
		}
		if err == nil && !Allowed(r.Access, sess.Role, sess.ClientID) {
			err = apperr.New(apperr.Forbidden, "your role does not allow this")
		}
		if err == nil && r.Access != routes.Session && sess.PasswordChangeRequired {
			err = apperr.New(apperr.PasswordChangeRequired, "change your password (POST /api/auth/password) before anything else")
		}
		if err != nil {
			httpx.WriteError(w, req, s.logger, err)
			return
		}
		next.ServeHTTP(w, req.WithContext(WithSession(req.Context(), sess)))
	})
}

// Allowed tells whether a role may use a route of the given access level. Client routes
// need a client: a platform admin, who has none, is refused there. Any other level
// (including one added later and not handled here) is refused.
func Allowed(a routes.Access, role, clientID string) bool {
	switch a {
	case routes.Session:
		return true
	case routes.User:
		return clientID != "" && (role == principal.RoleUser || role == principal.RoleAdmin)
	case routes.ClientAdmin:
		return clientID != "" && role == principal.RoleAdmin
	case routes.PlatformAdmin:
		return clientID == "" && role == principal.RolePlatformAdmin
	}
	return false
}
