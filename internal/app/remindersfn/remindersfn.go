// Package remindersfn assembles the reminders function: the daily (09:00 UTC) licence and
// password expiry reminder mails.
package remindersfn

import (
	"context"
	"io"
	"time"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/auth/mail/sesmail"
	"github.com/optralis/optralis/internal/awsenv"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/reminders"
	"github.com/optralis/optralis/internal/routes"
)

// Settings are what the reminders need beyond the core.
type Settings struct {
	SMTP         config.SMTP // SMTP_*: used when SES is not configured
	SES          config.SES  // SES_FROM, SES_IDENTITY_ARN: the SES API with the function's role
	DashboardURL string      // DASHBOARD_URL, default the first CORS origin
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
	s.SMTP, err = config.LoadSMTP(getenv)
	return s, err
}

// Job runs the reminders at now with mailer (nil: mail disabled, logged).
func Job(core app.Core, mailer mail.MessageSender, dashboardURL string) app.JobFunc {
	if mailer == nil {
		mailer = mail.Disabled{Logger: core.Logger}
	}
	return func(ctx context.Context, now time.Time) error {
		_, err := reminders.Run(ctx, reminders.Deps{Pool: core.Pool, Mailer: mailer, DashboardURL: dashboardURL, Logger: core.Logger}, now)
		return err
	}
}

// Open is the Lambda's cold start: mail through the SES API when SES_FROM is set (the
// execution role's credentials, no SMTP secret), otherwise through SMTP when SMTP_HOST is.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	var s Settings
	var mailer mail.MessageSender
	core, err := app.OpenLambda(ctx, routes.FnReminders, getenv, stdout, func(getenv func(string) string) error {
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
	return app.Function{Job: Job(core, mailer, s.DashboardURL), Logger: core.Logger, Close: core.Close}, nil
}
