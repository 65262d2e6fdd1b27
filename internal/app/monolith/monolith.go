// Package monolith serves every function from one process: the local stack (optralis dev)
// and end-to-end tests. The handlers, guards and jobs are each function's own (app/<name>fn),
// so a route behaves here as it does on Lambda.
package monolith

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/adminfn"
	"github.com/optralis/optralis/internal/app/alertsfn"
	"github.com/optralis/optralis/internal/app/authfn"
	"github.com/optralis/optralis/internal/app/bootstrapfn"
	"github.com/optralis/optralis/internal/app/certexpiryfn"
	"github.com/optralis/optralis/internal/app/cleanupfn"
	"github.com/optralis/optralis/internal/app/driftfn"
	"github.com/optralis/optralis/internal/app/heartbeatfn"
	"github.com/optralis/optralis/internal/app/remindersfn"
	"github.com/optralis/optralis/internal/app/renewfn"
	"github.com/optralis/optralis/internal/app/statusfn"
	"github.com/optralis/optralis/internal/app/uptimefn"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/auth/mail"
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
	AI        config.AI         // the drift job's AI provider; no key: template explanations
	Uptime    uptimefn.Settings // the AI provider's health URL, when one is configured
	// Mail sends the jobs' mails (reminders); nil: mail disabled, logged.
	Mail mail.MessageSender
	// DashboardURL is the base of the links in those mails ("": none).
	DashboardURL string
	// NotifyAllowInsecure lets notification channels post to http and private addresses
	// (NOTIFY_ALLOW_INSECURE_URLS: the local stack's receivers).
	NotifyAllowInsecure bool
	// HTTP delivers the alerts' webhooks (nil: notify's client, which enforces the
	// address policy at dial time).
	HTTP *http.Client
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
		adminfn.Handlers(core, s.Auth, enrolment, s.Enrolment,
			adminfn.Notify{Mail: s.Mail, AllowInsecure: s.NotifyAllowInsecure, DashboardURL: s.DashboardURL}),
	), app.Guards{Dashboard: s.Auth.Guard}, core)
	if err != nil {
		return nil, err
	}
	// The agents domain: heartbeat and renew share the certificate guard.
	agent, err := app.Bind(routes.Of(routes.AgentFunctions()...), app.Merge(
		heartbeatfn.Handlers(s.Heartbeat),
		renewfn.Handlers(core, s.CA),
	), heartbeatfn.Guards(core), core)
	if err != nil {
		return nil, err
	}
	jobs, err := Jobs(core, s)
	if err != nil {
		return nil, err
	}
	return &Monolith{API: api, Agent: agent, Jobs: jobs}, nil
}

// JobServices reads what the jobs need besides the core from the environment, as the
// scheduled functions do: mail (SMTP) and the dashboard URL for the reminders, the AI
// provider for drift and the uptime check. `optralis job run` uses it.
func JobServices(getenv func(string) string, cors []string, logger *slog.Logger) (Services, error) {
	var s Services
	smtp, err := config.LoadSMTP(getenv)
	if err != nil {
		return s, err
	}
	if s.DashboardURL, err = config.Dashboard(getenv, cors); err != nil {
		return s, err
	}
	if s.AI, err = config.LoadAI(getenv); err != nil {
		return s, err
	}
	if s.Uptime, err = uptimefn.Load(getenv); err != nil {
		return s, err
	}
	if s.NotifyAllowInsecure, err = config.NotifyAllowInsecureURLs(getenv); err != nil {
		return s, err
	}
	s.Mail = mail.MessageFromConfig(smtp, logger)
	return s, nil
}

// Jobs binds every job of routes.Jobs() to its function's runner, in table order: the
// local stack's timers and `optralis job run` use them. Jobs need no HTTP service (s may
// leave Auth and Heartbeat nil).
func Jobs(core app.Core, s Services) ([]app.Job, error) {
	mailer := s.Mail
	if mailer == nil {
		mailer = mail.MessageFromConfig(config.SMTP{}, core.Logger)
	}
	runners := map[string]app.JobFunc{
		routes.FnUptime:     uptimefn.Job(core, s.Uptime),
		routes.FnCleanup:    cleanupfn.Job(core),
		routes.FnDrift:      driftfn.Job(core, s.AI),
		routes.FnCertExpiry: certexpiryfn.Job(core, mailer, s.DashboardURL),
		// Reminders: on its daily 09:00 UTC cadence, as on AWS.
		routes.FnReminders: remindersfn.Job(core, mailer, s.DashboardURL),
		// Alerts: every minute, as EventBridge's rate(1 minute) on AWS.
		routes.FnAlerts: alertsfn.Job(core, alertsfn.Deps{Mailer: mailer, HTTP: s.HTTP, DashboardURL: s.DashboardURL,
			AllowInsecure: s.NotifyAllowInsecure}),
	}
	var jobs []app.Job
	for _, j := range routes.Jobs() {
		run, ok := runners[j.Function]
		if !ok {
			return nil, fmt.Errorf("monolith: job %s (function %s) has no runner", j.Name, j.Function)
		}
		jobs = append(jobs, app.Job{Job: j, Run: run})
	}
	return jobs, nil
}
