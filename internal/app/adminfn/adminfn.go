// Package adminfn assembles the admin function: the dashboard API of a client's users
// (/api/*) and the platform administration (/api/admin/*).
package adminfn

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/optralis/optralis/internal/agentrelease"
	"github.com/optralis/optralis/internal/agentreq"
	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/authfn"
	"github.com/optralis/optralis/internal/app/bootstrapfn"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/enrol"
	"github.com/optralis/optralis/internal/groups"
	"github.com/optralis/optralis/internal/routes"
	"github.com/optralis/optralis/internal/winbuilds"
)

// Handlers binds the admin function's routes. d is the enrolment service (install tokens),
// e the enrolment settings (the endoflife.date API for Windows builds).
func Handlers(core app.Core, d enrol.Deps, e config.Enrolment) app.Handlers {
	cd := certs.Deps{Pool: core.Pool, Clock: core.Clock, Logger: core.Logger}
	rd := bootstrapfn.Requirements(core)
	wd := winbuilds.Deps{Pool: core.Pool, Logger: core.Logger, Clock: core.Clock, Source: winbuilds.Source{
		BaseURL: e.EndOfLifeAPIURL, Client: &http.Client{Timeout: 10 * time.Second}}}
	return app.Merge(
		// clients and users

		// machines, overview, activity

		// history, inventory, collector configuration

		// groups, agent releases
		groupHandlers(core),

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
func New(core app.Core, a *auth.Service, authority *ca.CA, e config.Enrolment) (http.Handler, error) {
	return app.Bind(routes.Of(routes.FnAdmin), Handlers(core, bootstrapfn.Enrolment(core, authority, e), e),
		app.Guards{Dashboard: a.Guard}, core)
}

// Open is the Lambda's cold start.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	var s authfn.Settings
	var e config.Enrolment
	return app.OpenHTTP(ctx, routes.FnAdmin, getenv, stdout,
		func(getenv func(string) string) (err error) {
			if s.Secret, err = config.JWT(getenv); err != nil {
				return err
			}
			e, err = config.LoadEnrolment(getenv)
			return err
		},
		func(core app.Core) (http.Handler, error) {
			authority, err := bootstrapfn.OpenCA(ctx, getenv, e)
			if err != nil {
				return nil, err
			}
			return New(core, authfn.NewService(core, s), authority, e)
		})
}
