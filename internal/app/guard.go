package app

import (
	"net/http"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/identity"
)

// guard enforces a route's Access before its handler runs. It fails closed: an access
// level without an authenticator refuses everyone.
func (d *Deps) guard(r Route) http.Handler {
	switch r.Access {
	case Public:
		return r.Handler
	case Agent:
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if _, ok := identity.ClientCert(req.Context()); !ok {
				httpx.WriteError(w, req, d.Logger, apperr.New(apperr.Unauthenticated, "a client certificate is required"))
				return
			}
			r.Handler.ServeHTTP(w, req)
		})
	}
	// Dashboard access levels: the authentication issue provides the authenticator.
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		httpx.WriteError(w, req, d.Logger, apperr.New(apperr.Unauthenticated, "authentication required"))
	})
}
