// Package monolith serves every function from one process: the local stack (optralis dev)
// and end-to-end tests. The handlers, guards and jobs are each function's own (app/<name>fn),
// so a route behaves here as it does on Lambda.
package monolith

import (
	"fmt"
	"net/http"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/adminfn"
	"github.com/optralis/optralis/internal/app/authfn"
	"github.com/optralis/optralis/internal/app/bootstrapfn"
	"github.com/optralis/optralis/internal/app/cleanupfn"
	"github.com/optralis/optralis/internal/app/heartbeatfn"
	"github.com/optralis/optralis/internal/app/statusfn"
	"github.com/optralis/optralis/internal/app/uptimefn"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/heartbeat"
	"github.com/optralis/optralis/internal/routes"
)

// Services are the long-lived services the functions share in one process, built by the
// caller (the local stack from its configuration, tests with their own key prefixes).
type Services struct {
	Auth      *auth.Service
	Heartbeat *heartbeat.Service
	CA        *ca.CA // signs machine certificates; nil: the bootstrap answers 503
	Enrolment config.Enrolment
}

// Monolith is every function of the route-and-job table, bound.
type Monolith struct {
	API   http.Handler // every API-domain route (the local server's plain port)
	Agent http.Handler // the agents domain (to be served behind mutual TLS)
	Jobs  []app.Job    // routes.Jobs(), in table order
}

// New binds every route and job of the table to the functions' handlers. It fails when a
// row has no handler or job, or a handler has no row.
func New(core app.Core, s Services) (*Monolith, error) {
	if s.Auth == nil || s.Heartbeat == nil {
		return nil, fmt.Errorf("monolith: the auth and heartbeat services are required")
	}
	enrolment := bootstrapfn.Enrolment(core, s.CA, s.Enrolment)
	api, err := app.Bind(routes.Of(routes.APIFunctions()...), app.Merge(
		statusfn.Handlers(core),
		authfn.Handlers(s.Auth),
		bootstrapfn.Handlers(core, enrolment),
		adminfn.Handlers(core, s.Auth, enrolment, s.Enrolment),
	), app.Guards{Dashboard: s.Auth.Guard}, core)
	if err != nil {
		return nil, err
	}
	agent, err := app.Bind(routes.Of(routes.FnHeartbeat), heartbeatfn.Handlers(s.Heartbeat), heartbeatfn.Guards(core), core)
	if err != nil {
		return nil, err
	}
	runners := map[string]app.JobFunc{
		routes.FnUptime:  uptimefn.Job(core),
		routes.FnCleanup: cleanupfn.Job(core),
	}
	m := &Monolith{API: api, Agent: agent}
	for _, j := range routes.Jobs() {
		run, ok := runners[j.Function]
		if !ok {
			return nil, fmt.Errorf("monolith: job %s (function %s) has no runner", j.Name, j.Function)
		}
		m.Jobs = append(m.Jobs, app.Job{Job: j, Run: run})
	}
	return m, nil
}
