// Package certexpiryfn assembles the certexpiry function: the daily digest of machine
// certificates expiring within 30 days, mailed to each client's admins.
package certexpiryfn

import (
	"context"
	"io"
	"time"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/certexpiry"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/routes"
)

// Settings are what the digest needs beyond the core.
type Settings struct {
	SMTP         config.SMTP // Host empty: mail disabled, digests recorded "skipped"
	DashboardURL string      // DASHBOARD_URL (default: the first CORS origin): the link in the mail
}

// LoadSettings reads the SMTP settings and DASHBOARD_URL.
func LoadSettings(getenv func(string) string) (Settings, error) {
	var s Settings
	var err error
	if s.SMTP, err = config.LoadSMTP(getenv); err != nil {
		return s, err
	}
	cors, err := config.CORS(getenv)
	if err != nil {
		return s, err
	}
	s.DashboardURL, err = config.Dashboard(getenv, cors)
	return s, err
}

// Job sends today's digests that have not been sent yet, through mailer.
func Job(core app.Core, mailer mail.MessageSender, dashboardURL string) app.JobFunc {
	d := certexpiry.Deps{Pool: core.Pool, Mailer: mailer, Logger: core.Logger, DashboardURL: dashboardURL}
	return func(ctx context.Context, now time.Time) error {
		_, err := certexpiry.Run(ctx, d, now)
		return err
	}
}

// Open is the Lambda's cold start.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	var s Settings
	core, err := app.OpenLambda(ctx, routes.FnCertExpiry, getenv, stdout,
		func(getenv func(string) string) (err error) { s, err = LoadSettings(getenv); return err })
	if err != nil {
		return app.Function{}, err
	}
	return app.Function{Job: Job(core, mail.MessageFromConfig(s.SMTP, core.Logger), s.DashboardURL), Logger: core.Logger, Close: core.Close}, nil
}
