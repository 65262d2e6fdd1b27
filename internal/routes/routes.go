// Package routes is the route-and-job table as data: every function's routes and scheduled
// jobs, with no handler in sight. internal/app binds handlers to these rows; infra, the
// OpenAPI check, the guard test and the tenant-isolation test read the rows directly, so
// they link no runtime code.
package routes

import "net/http"

// Function names, as in functions/<name>.
const (
	FnStatus     = "status"
	FnAuth       = "auth"
	FnBootstrap  = "bootstrap"
	FnAdmin      = "admin"
	FnHeartbeat  = "heartbeat"
	FnRenew      = "renew"
	FnUptime     = "uptime"
	FnCleanup    = "cleanup"
	FnCertExpiry = "certexpiry"
	FnDrift      = "drift"
	FnReminders  = "reminders"
	FnAlerts     = "alerts"
	FnMigrate    = "migrate"
	// FnHeartbeatWriter consumes the heartbeat queue (ingest mode "queue"): no route, no
	// schedule; infra wires its SQS event source.
	FnHeartbeatWriter = "heartbeatwriter"
)

// Access is what a route demands of its caller. Every route declares one; the guard
// enforces it and fails closed on a level it has no authenticator for.
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

// Dashboard reports whether a is one of the dashboard (access token) levels.
func (a Access) Dashboard() bool {
	return a == User || a == ClientAdmin || a == PlatformAdmin || a == Session
}

func (a Access) String() string {
	switch a {
	case Public:
		return "public"
	case Agent:
		return "agent"
	case User:
		return "user"
	case ClientAdmin:
		return "client-admin"
	case PlatformAdmin:
		return "platform-admin"
	case Session:
		return "session"
	}
	return "unknown"
}

// CertCheck is where an Agent route's certificate is checked against the database
// (revoked, superseded, unknown). The transport has already checked chain and expiry.
type CertCheck int

const (
	// CertInGuard: the guard reads the certificate record before the handler runs.
	CertInGuard CertCheck = iota
	// CertInBatch: the guard checks only what needs no database, and the handler asserts
	// the certificate at the head of its own write batch (one round trip per heartbeat).
	// Such a handler must run that assertion before any effect.
	CertInBatch
)

// Route is one method and path served by a function.
type Route struct {
	Function string // the Lambda serving it (functions/<name>)
	Method   string
	Path     string // ServeMux pattern path, e.g. /api/machines/{id}
	Access   Access
	Cert     CertCheck // Agent routes only
}

// Pattern is the route's ServeMux pattern ("GET /api/machines/{id}"), the key handlers
// are bound by.
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// Table is every route of every function.
func Table() []Route {
	const (
		get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	)
	return []Route{
		{Function: FnStatus, Method: get, Path: "/status", Access: Public},

		{Function: FnAuth, Method: post, Path: "/api/auth/login", Access: Public},
		{Function: FnAuth, Method: post, Path: "/api/auth/refresh", Access: Public},
		{Function: FnAuth, Method: post, Path: "/api/auth/logout", Access: Session},
		{Function: FnAuth, Method: get, Path: "/api/auth/me", Access: Session},
		{Function: FnAuth, Method: post, Path: "/api/auth/password", Access: Session},
		{Function: FnAuth, Method: post, Path: "/api/auth/password/forgot", Access: Public},
		{Function: FnAuth, Method: post, Path: "/api/auth/password/reset", Access: Public},

		{Function: FnBootstrap, Method: post, Path: "/api/public/bootstrap", Access: Public},
		{Function: FnBootstrap, Method: get, Path: "/install.sh", Access: Public},
		{Function: FnBootstrap, Method: get, Path: "/agent/requirements", Access: Public},

		{Function: FnAdmin, Method: post, Path: "/api/install-tokens", Access: User},
		{Function: FnAdmin, Method: get, Path: "/api/install-tokens", Access: User},
		{Function: FnAdmin, Method: del, Path: "/api/install-tokens/{id}", Access: User},
		{Function: FnAdmin, Method: get, Path: "/api/machines/{id}/certificate", Access: User},
		{Function: FnAdmin, Method: post, Path: "/api/machines/{id}/certificate/revoke", Access: User},

		// Clients and users (onboarding, user management).
		{Function: FnAdmin, Method: get, Path: "/api/admin/clients", Access: PlatformAdmin},
		{Function: FnAdmin, Method: post, Path: "/api/admin/clients", Access: PlatformAdmin},
		{Function: FnAdmin, Method: get, Path: "/api/admin/clients/{id}", Access: PlatformAdmin},
		{Function: FnAdmin, Method: http.MethodPatch, Path: "/api/admin/clients/{id}", Access: PlatformAdmin},
		{Function: FnAdmin, Method: post, Path: "/api/admin/clients/{id}/users", Access: PlatformAdmin},
		{Function: FnAdmin, Method: get, Path: "/api/client", Access: User},
		{Function: FnAdmin, Method: http.MethodPatch, Path: "/api/client", Access: ClientAdmin},
		{Function: FnAdmin, Method: get, Path: "/api/users", Access: ClientAdmin},
		{Function: FnAdmin, Method: post, Path: "/api/users", Access: ClientAdmin},
		{Function: FnAdmin, Method: http.MethodPatch, Path: "/api/users/{id}", Access: ClientAdmin},
		{Function: FnAdmin, Method: del, Path: "/api/users/{id}", Access: ClientAdmin},

		// Machines: list, details, edit, delete; fleet overview and audit log.
		{Function: FnAdmin, Method: get, Path: "/api/machines", Access: User},
		{Function: FnAdmin, Method: get, Path: "/api/machines/{id}", Access: User},
		{Function: FnAdmin, Method: http.MethodPatch, Path: "/api/machines/{id}", Access: User},
		{Function: FnAdmin, Method: del, Path: "/api/machines/{id}", Access: ClientAdmin},
		{Function: FnAdmin, Method: get, Path: "/api/overview", Access: User},
		{Function: FnAdmin, Method: get, Path: "/api/activity", Access: User},

		// Machine history and inventory; collector configuration.
		{Function: FnAdmin, Method: get, Path: "/api/machines/{id}/metrics", Access: User},
		{Function: FnAdmin, Method: get, Path: "/api/machines/{id}/network", Access: User},
		{Function: FnAdmin, Method: get, Path: "/api/machines/{id}/disks", Access: User},
		{Function: FnAdmin, Method: get, Path: "/api/machines/{id}/smart", Access: User},
		{Function: FnAdmin, Method: get, Path: "/api/machines/{id}/events", Access: User},
		{Function: FnAdmin, Method: get, Path: "/api/machines/{id}/inventory", Access: User},
		{Function: FnAdmin, Method: get, Path: "/api/machines/{id}/drift", Access: User},
		{Function: FnAdmin, Method: get, Path: "/api/machines/{id}/collector-config", Access: User},
		{Function: FnAdmin, Method: put, Path: "/api/machines/{id}/collector-config", Access: User},
		{Function: FnAdmin, Method: get, Path: "/api/client/collector-config", Access: User},
		{Function: FnAdmin, Method: put, Path: "/api/client/collector-config", Access: ClientAdmin},

		// Groups; agent releases.
		{Function: FnAdmin, Method: get, Path: "/api/groups", Access: User},
		{Function: FnAdmin, Method: post, Path: "/api/groups", Access: ClientAdmin},
		{Function: FnAdmin, Method: http.MethodPatch, Path: "/api/groups/{id}", Access: ClientAdmin},
		{Function: FnAdmin, Method: del, Path: "/api/groups/{id}", Access: ClientAdmin},
		{Function: FnAdmin, Method: put, Path: "/api/groups/{id}/machines", Access: ClientAdmin},
		{Function: FnAdmin, Method: get, Path: "/api/admin/agent-versions", Access: PlatformAdmin},
		{Function: FnAdmin, Method: put, Path: "/api/admin/agent-versions/{channel}", Access: PlatformAdmin},

		// alerting: rules, windows, alerts (issue 13)
		{Function: FnAdmin, Method: get, Path: "/api/alert-rules", Access: User},
		{Function: FnAdmin, Method: post, Path: "/api/alert-rules", Access: ClientAdmin},
		{Function: FnAdmin, Method: get, Path: "/api/alert-rules/{id}", Access: User},
		{Function: FnAdmin, Method: http.MethodPatch, Path: "/api/alert-rules/{id}", Access: ClientAdmin},
		{Function: FnAdmin, Method: del, Path: "/api/alert-rules/{id}", Access: ClientAdmin},
		{Function: FnAdmin, Method: get, Path: "/api/maintenance-windows", Access: User},
		{Function: FnAdmin, Method: post, Path: "/api/maintenance-windows", Access: ClientAdmin},
		{Function: FnAdmin, Method: get, Path: "/api/maintenance-windows/{id}", Access: User},
		{Function: FnAdmin, Method: http.MethodPatch, Path: "/api/maintenance-windows/{id}", Access: ClientAdmin},
		{Function: FnAdmin, Method: del, Path: "/api/maintenance-windows/{id}", Access: ClientAdmin},
		{Function: FnAdmin, Method: get, Path: "/api/alerts", Access: User},
		{Function: FnAdmin, Method: get, Path: "/api/alerts/{id}", Access: User},
		{Function: FnAdmin, Method: post, Path: "/api/alerts/{id}/acknowledge", Access: User},
		// alerting: notification channels (issue 13)
		{Function: FnAdmin, Method: get, Path: "/api/notification-channels", Access: User},
		{Function: FnAdmin, Method: post, Path: "/api/notification-channels", Access: ClientAdmin},
		{Function: FnAdmin, Method: get, Path: "/api/notification-channels/{id}", Access: User},
		{Function: FnAdmin, Method: http.MethodPatch, Path: "/api/notification-channels/{id}", Access: ClientAdmin},
		{Function: FnAdmin, Method: del, Path: "/api/notification-channels/{id}", Access: ClientAdmin},
		{Function: FnAdmin, Method: post, Path: "/api/notification-channels/{id}/test", Access: ClientAdmin},

		{Function: FnAdmin, Method: get, Path: "/api/admin/agent-requirements", Access: PlatformAdmin},
		{Function: FnAdmin, Method: put, Path: "/api/admin/agent-requirements", Access: PlatformAdmin},
		{Function: FnAdmin, Method: get, Path: "/api/admin/windows-builds", Access: PlatformAdmin},
		{Function: FnAdmin, Method: post, Path: "/api/admin/windows-builds/refresh", Access: PlatformAdmin},

		{Function: FnHeartbeat, Method: post, Path: "/agent/heartbeat", Access: Agent, Cert: CertInBatch},
		{Function: FnHeartbeat, Method: get, Path: "/agent/config/collectors", Access: Agent},
		// Renewal asserts the certificate in its own transaction: a retried renewal may
		// present the certificate it just superseded (certs.RenewalGrace).
		{Function: FnRenew, Method: post, Path: "/agent/certificate/renew", Access: Agent, Cert: CertInBatch},
	}
}

// Of returns the routes of the named functions, in table order.
func Of(functions ...string) []Route {
	var out []Route
	for _, r := range Table() {
		for _, fn := range functions {
			if r.Function == fn {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// AgentFunction reports whether fn serves the agents domain (mutual TLS).
func AgentFunction(fn string) bool { return fn == FnHeartbeat || fn == FnRenew }

// AgentFunctions are the functions serving the agents domain, in table order.
func AgentFunctions() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range Table() {
		if AgentFunction(r.Function) && !seen[r.Function] {
			seen[r.Function] = true
			out = append(out, r.Function)
		}
	}
	return out
}

// APIFunctions are the functions serving the API domain, in table order.
func APIFunctions() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range Table() {
		if !AgentFunction(r.Function) && !seen[r.Function] {
			seen[r.Function] = true
			out = append(out, r.Function)
		}
	}
	return out
}
