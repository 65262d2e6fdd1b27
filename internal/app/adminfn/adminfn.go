// Package adminfn assembles the admin function: the dashboard API of a client's users
// (/api/*) and the platform administration (/api/admin/*).
package adminfn

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/optralis/optralis/internal/activity"
	"github.com/optralis/optralis/internal/agentrelease"
	"github.com/optralis/optralis/internal/agentreq"
	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/authfn"
	"github.com/optralis/optralis/internal/app/bootstrapfn"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/ca/kmsca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/clients"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/enrol"
	"github.com/optralis/optralis/internal/groups"
	"github.com/optralis/optralis/internal/machinedata"
	"github.com/optralis/optralis/internal/machines"
	"github.com/optralis/optralis/internal/routes"
	"github.com/optralis/optralis/internal/users"
	"github.com/optralis/optralis/internal/winbuilds"
)

// Handlers binds the admin function's routes. a is the authentication service (it ends
// sessions and sends invitations), d the enrolment service (install tokens), e the
// enrolment settings (the endoflife.date API for Windows builds), n what the notification
// channels' test action sends with.
func Handlers(core app.Core, a *auth.Service, d enrol.Deps, e config.Enrolment, n Notify) app.Handlers {
	cd := certs.Deps{Pool: core.Pool, Clock: core.Clock, Logger: core.Logger, Cache: core.Cache()}
	rd := bootstrapfn.Requirements(core)
	md := machinedata.Deps{Pool: core.Pool, Clock: core.Clock, Logger: core.Logger, Cache: core.Cache()}
	wd := winbuilds.Deps{Pool: core.Pool, Logger: core.Logger, Clock: core.Clock, Source: winbuilds.Source{
		BaseURL: e.EndOfLifeAPIURL, Client: &http.Client{Timeout: 10 * time.Second}}}
	return app.Merge(
		// clients and users
		clientsAndUsers(core, a),

		// machines, overview, activity
		machineHandlers(core),

		// history, inventory, collector configuration
		app.Handlers{
			"GET /api/machines/{id}/metrics":          machinedata.HandleMetrics(md),
			"GET /api/machines/{id}/network":          machinedata.HandleNetwork(md),
			"GET /api/machines/{id}/disks":            machinedata.HandleDisks(md),
			"GET /api/machines/{id}/smart":            machinedata.HandleSMART(md),
			"GET /api/machines/{id}/events":           machinedata.HandleEvents(md),
			"GET /api/machines/{id}/inventory":        machinedata.HandleInventory(md),
			"GET /api/machines/{id}/drift":            machinedata.HandleDrift(md),
			"GET /api/machines/{id}/collector-config": machinedata.HandleGetMachineConfig(md),
			"PUT /api/machines/{id}/collector-config": machinedata.HandlePutMachineConfig(md),
			"GET /api/client/collector-config":        machinedata.HandleGetClientConfig(md),
			"PUT /api/client/collector-config":        machinedata.HandlePutClientConfig(md),
		},

		// groups, agent releases
		groupHandlers(core),

		// alerting: rules, windows, alerts (issue 13)
		alertingHandlers(core),
		// alerting: notification channels
		channelHandlers(core, n),

		app.Handlers{
			"POST /api/install-tokens":                   enrol.HandleCreateToken(d),
			"GET /api/install-tokens":                    enrol.HandleListTokens(d),
			"DELETE /api/install-tokens/{id}":            enrol.HandleRevokeToken(d),
			"GET /api/machines/{id}/certificate":         certs.HandleGet(cd),
			"POST /api/machines/{id}/certificate/revoke": certs.HandleRevoke(cd),
			"GET /api/admin/agent-requirements":          agentreq.HandleGet(rd),
			"PUT /api/admin/agent-requirements":          agentreq.HandlePut(rd),
			"GET /api/admin/windows-builds":              winbuilds.HandleList(wd),
			"POST /api/admin/windows-builds/refresh":     winbuilds.HandleRefresh(wd),
		})
}

// clientsAndUsers binds customer onboarding (platform admin) and user management (client
// admins).
func clientsAndUsers(core app.Core, a *auth.Service) app.Handlers {
	d := clients.Deps{Pool: core.Pool, Clock: core.Clock, Logger: core.Logger, Cache: core.Cache(), Auth: a}
	return app.Handlers{
		"GET /api/admin/clients":             clients.HandleList(d),
		"POST /api/admin/clients":            clients.HandleCreate(d),
		"GET /api/admin/clients/{id}":        clients.HandleGet(d),
		"PATCH /api/admin/clients/{id}":      clients.HandlePatch(d),
		"POST /api/admin/clients/{id}/users": clients.HandleInviteAdmin(d),
		"GET /api/client":                    clients.HandleGetOwn(d),
		"PATCH /api/client":                  clients.HandlePatchOwn(d),
		"GET /api/users":                     users.HandleList(d),
		"POST /api/users":                    users.HandleCreate(d),
		"PATCH /api/users/{id}":              users.HandlePatch(d),
		"DELETE /api/users/{id}":             users.HandleDelete(d),
	}
}

// machineHandlers are the fleet's routes: machines, overview and the audit log.
func machineHandlers(core app.Core) app.Handlers {
	md := machines.Deps{Pool: core.Pool, Cache: core.Cache(), Clock: core.Clock, Logger: core.Logger}
	return app.Handlers{
		"GET /api/machines":         machines.HandleList(md),
		"GET /api/machines/{id}":    machines.HandleGet(md),
		"PATCH /api/machines/{id}":  machines.HandlePatch(md),
		"DELETE /api/machines/{id}": machines.HandleDelete(md),
		"GET /api/overview":         machines.HandleOverview(md),
		"GET /api/activity":         activity.HandleList(activity.Deps{Pool: core.Pool, Logger: core.Logger}),
	}
}

// groupHandlers binds the groups and agent-release routes.
func groupHandlers(core app.Core) app.Handlers {
	gd := groups.Deps{Pool: core.Pool, Cache: core.Cache(), Clock: core.Clock, Logger: core.Logger}
	ad := agentrelease.Deps{Pool: core.Pool, Cache: core.Cache(), Clock: core.Clock, Logger: core.Logger}
	return app.Handlers{
		"GET /api/groups":                         groups.HandleList(gd),
		"POST /api/groups":                        groups.HandleCreate(gd),
		"PATCH /api/groups/{id}":                  groups.HandleUpdate(gd),
		"DELETE /api/groups/{id}":                 groups.HandleDelete(gd),
		"PUT /api/groups/{id}/machines":           groups.HandleSetMembers(gd),
		"GET /api/admin/agent-versions":           agentrelease.HandleList(ad),
		"PUT /api/admin/agent-versions/{channel}": agentrelease.HandlePublish(ad),
	}
}

// New serves the admin function's routes; a checks the callers' access tokens.
func New(core app.Core, a *auth.Service, authority *ca.CA, e config.Enrolment, n Notify) (http.Handler, error) {
	return app.Bind(routes.Of(routes.FnAdmin), Handlers(core, a, bootstrapfn.Enrolment(core, authority, e), e, n),
		app.Guards{Dashboard: a.Guard}, core)
}

// Open is the Lambda's cold start.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	var s authfn.Settings
	var e config.Enrolment
	var n NotifySettings
	return app.OpenHTTP(ctx, routes.FnAdmin, getenv, stdout,
		func(getenv func(string) string) (err error) {
			// JWT_SECRET and SMTP: invitations are mailed like reset links, to the same
			// dashboard (authfn.NewService).
			if s, err = authfn.LoadSettings(getenv); err != nil {
				return err
			}
			if n, err = LoadNotify(getenv); err != nil {
				return err
			}
			e, err = config.LoadEnrolment(getenv)
			return err
		},
		func(core app.Core) (http.Handler, error) {
			authority, err := kmsca.Open(ctx, getenv, e.CAKMSKeyID, e.CACertPEM)
			if err != nil {
				return nil, err
			}
			return New(core, authfn.NewService(core, s), authority, e, n.Notify(core, s.SMTP))
		})
}
