package app

import (
	"net/http"

	"github.com/optralis/optralis/internal/agentreq"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/enrol"
	"github.com/optralis/optralis/internal/status"
	"github.com/optralis/optralis/internal/winbuilds"
)

// Access is what a route demands of its caller. Every route declares one; guard enforces it.
type Access int

const (
	Public        Access = iota // anyone (status page, bootstrap with its own token check)
	Agent                       // an agent's verified client certificate (agents domain, mTLS)
	User                        // a dashboard user; handlers scope everything to their client
	ClientAdmin                 // a dashboard admin of their client
	PlatformAdmin               // an Optralis platform administrator (/api/admin/*)
	// Session is any signed-in user or platform admin, including one who must still change
	// the password: only /api/auth/me, /api/auth/logout and /api/auth/password use it.
	Session
)

// Route is one method and path served by a function.
type Route struct {
	Function string // the Lambda serving it (functions/<name>)
	Method   string
	Path     string // ServeMux pattern path, e.g. /api/machines/{id}
	Access   Access
	Handler  http.Handler
}

// Function names, as in functions/<name>.
const (
	FnStatus    = "status"
	FnAuth      = "auth"
	FnBootstrap = "bootstrap"
	FnAdmin     = "admin"
	FnHeartbeat = "heartbeat"
)

// Routes is every route of every function: the one table the local server, the Lambdas,
// the OpenAPI check and the tenant-isolation test all read.
func (d *Deps) Routes() []Route {
	return []Route{
		{FnStatus, http.MethodGet, "/status", Public, status.HandleStatus(d.tracker(), d.Clock)},

		{FnAuth, http.MethodPost, "/api/auth/login", Public, auth.HandleLogin(d.AuthService())},
		{FnAuth, http.MethodPost, "/api/auth/refresh", Public, auth.HandleRefresh(d.AuthService())},
		{FnAuth, http.MethodPost, "/api/auth/logout", Session, auth.HandleLogout(d.AuthService())},
		{FnAuth, http.MethodGet, "/api/auth/me", Session, auth.HandleMe(d.AuthService())},
		{FnAuth, http.MethodPost, "/api/auth/password", Session, auth.HandleChangePassword(d.AuthService())},
		{FnAuth, http.MethodPost, "/api/auth/password/forgot", Public, auth.HandleForgotPassword(d.AuthService())},
		{FnAuth, http.MethodPost, "/api/auth/password/reset", Public, auth.HandleResetPassword(d.AuthService())},

		{FnBootstrap, http.MethodPost, "/api/public/bootstrap", Public, enrol.HandleBootstrap(d.enrolDeps())},
		{FnBootstrap, http.MethodGet, "/install.sh", Public, enrol.HandleInstallScript(d.enrolDeps())},
		{FnBootstrap, http.MethodGet, "/agent/requirements", Public, agentreq.HandleGet(d.agentreqDeps())},

		{FnAdmin, http.MethodPost, "/api/install-tokens", User, enrol.HandleCreateToken(d.enrolDeps())},
		{FnAdmin, http.MethodGet, "/api/install-tokens", User, enrol.HandleListTokens(d.enrolDeps())},
		{FnAdmin, http.MethodDelete, "/api/install-tokens/{id}", User, enrol.HandleRevokeToken(d.enrolDeps())},
		{FnAdmin, http.MethodGet, "/api/machines/{id}/certificate", User, certs.HandleGet(d.certDeps())},
		{FnAdmin, http.MethodPost, "/api/machines/{id}/certificate/revoke", User, certs.HandleRevoke(d.certDeps())},
		{FnAdmin, http.MethodGet, "/api/admin/agent-requirements", PlatformAdmin, agentreq.HandleGet(d.agentreqDeps())},
		{FnAdmin, http.MethodPut, "/api/admin/agent-requirements", PlatformAdmin, agentreq.HandlePut(d.agentreqDeps())},
		{FnAdmin, http.MethodGet, "/api/admin/windows-builds", PlatformAdmin, winbuilds.HandleList(d.winbuildsDeps())},
		{FnAdmin, http.MethodPost, "/api/admin/windows-builds/refresh", PlatformAdmin, winbuilds.HandleRefresh(d.winbuildsDeps())},

		{FnHeartbeat, http.MethodPost, "/agent/heartbeat", Agent, certs.CheckInBatch{Handler: d.HeartbeatService().HandleHeartbeat()}},
		{FnHeartbeat, http.MethodGet, "/agent/config/collectors", Agent, d.HeartbeatService().HandleCollectors()},
	}
}

// agentFunction tells whether fn serves the agents domain (mutual TLS).
func agentFunction(fn string) bool { return fn == FnHeartbeat }

func (d *Deps) handlerFor(keep func(fn string) bool, extra ...Route) http.Handler {
	mux := http.NewServeMux()
	for _, r := range d.Routes() {
		if keep(r.Function) {
			mux.Handle(r.Method+" "+r.Path, d.guard(r))
		}
	}
	for _, r := range extra {
		mux.Handle(r.Method+" "+r.Path, d.guard(r))
	}
	return d.wrap(mux)
}

// FunctionHandler serves one function's routes (a Lambda).
func (d *Deps) FunctionHandler(fn string) http.Handler {
	return d.handlerFor(func(f string) bool { return f == fn })
}

// PublicHandler serves every API-domain route (the local server's plain port).
func (d *Deps) PublicHandler() http.Handler {
	return d.handlerFor(func(f string) bool { return !agentFunction(f) })
}

// AgentHandler serves the agents domain (the local server's mutual-TLS port). Extra routes
// (tests) are served and guarded like the table's.
func (d *Deps) AgentHandler(extra ...Route) http.Handler {
	return d.handlerFor(agentFunction, extra...)
}
