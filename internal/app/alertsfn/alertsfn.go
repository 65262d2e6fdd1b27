// Package alertsfn assembles the alerts function: every minute, evaluate the alert rules
// (internal/alerteval), then notify what changed (internal/notify).
package alertsfn

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/optralis/optralis/internal/alerteval"
	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/auth/mail/sesmail"
	"github.com/optralis/optralis/internal/awsenv"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/notify"
	"github.com/optralis/optralis/internal/routes"
)

// Settings are what the alerts need beyond the core: mail, as for the reminders, and
// where webhooks may go.
type Settings struct {
	SMTP          config.SMTP // SMTP_*: used when SES is not configured
	SES           config.SES  // SES_FROM, SES_IDENTITY_ARN: the SES API with the function's role
	DashboardURL  string      // DASHBOARD_URL, default the first CORS origin
	AllowInsecure bool        // NOTIFY_ALLOW_INSECURE_URLS (local stack and tests only)
}

// LoadSettings reads the mail settings and the dashboard URL.
func LoadSettings(getenv func(string) string) (Settings, error) {
	var s Settings
	cors, err := config.CORS(getenv)
	if err != nil {
		return s, err
	}
	if s.DashboardURL, err = config.Dashboard(getenv, cors); err != nil {
		return s, err
	}
	if s.SES, err = config.LoadSES(getenv); err != nil {
		return s, err
	}
	if s.AllowInsecure, err = config.NotifyAllowInsecureURLs(getenv); err != nil {
		return s, err
	}
	s.SMTP, err = config.LoadSMTP(getenv)
	return s, err
}

// Deps are the job's collaborators besides the core: what the notification pipeline
// delivers through.
type Deps struct {
	Mailer       mail.MessageSender // nil: mail disabled, logged
	HTTP         *http.Client       // webhooks, Slack, Teams; nil: notify.NewHTTPClient (address policy at dial time)
	DashboardURL string             // links in notifications ("": none)
	// AllowInsecure lets channels post to http and private addresses (never link-local).
	AllowInsecure bool
	// Notify overrides the pipeline's delivery policy (timeouts, retries) in tests; its
	// Pool, Logger, Mail, HTTP, Policy and DashboardURL are set from the fields above.
	Notify notify.Deps
}

// Job evaluates then notifies at now.
func Job(core app.Core, d Deps) app.JobFunc {
	if d.Mailer == nil {
		d.Mailer = mail.Disabled{Logger: core.Logger}
	}
	return func(ctx context.Context, now time.Time) error { return run(ctx, core, d, now) }
}

// run is the one place the two stages meet. Notification runs even when the evaluation
// failed: events recorded by earlier runs still go out.
func run(ctx context.Context, core app.Core, d Deps, now time.Time) error {
	_, evalErr := alerteval.Run(ctx, alerteval.Deps{Pool: core.Pool, Logger: core.Logger}, now)
	nd := d.Notify
	nd.Pool, nd.Logger, nd.Mail, nd.HTTP, nd.DashboardURL = core.Pool, core.Logger, d.Mailer, d.HTTP, d.DashboardURL
	nd.Policy = notify.Policy{AllowInsecure: d.AllowInsecure}
	_, notifyErr := notify.Run(ctx, nd, now)
	return errors.Join(evalErr, notifyErr)
}

// Open is the Lambda's cold start: mail through the SES API when SES_FROM is set (the
// execution role's credentials, no SMTP secret), otherwise through SMTP when SMTP_HOST is.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	var s Settings
	var mailer mail.MessageSender
	core, err := app.OpenLambda(ctx, routes.FnAlerts, getenv, stdout, func(getenv func(string) string) error {
		var err error
		if s, err = LoadSettings(getenv); err != nil {
			return err
		}
		if s.SES.Enabled() {
			cfg, err := awsenv.Config(getenv)
			if err != nil {
				return err
			}
			mailer = sesmail.New(cfg, s.SES)
		}
		return nil
	})
	if err != nil {
		return app.Function{}, err
	}
	if mailer == nil {
		mailer = mail.MessageFromConfig(s.SMTP, core.Logger)
	}
	return app.Function{Job: Job(core, Deps{Mailer: mailer, DashboardURL: s.DashboardURL, AllowInsecure: s.AllowInsecure}), Logger: core.Logger, Close: core.Close}, nil
}
