package app

import (
	"context"
	"time"

	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/auth/mail"
)

// AuthService is the process's authentication service: d.Auth, or one built once from the
// configuration (mail through SMTP when configured, reset links to the first dashboard
// origin of CORS_ALLOWED_ORIGINS).
func (d *Deps) AuthService() *auth.Service {
	d.authOnce.Do(func() {
		if d.Auth != nil {
			return
		}
		dashboard := ""
		for _, o := range d.Config.CORSAllowedOrigins {
			if o != "*" {
				dashboard = o
				break
			}
		}
		d.Auth = auth.New(auth.Options{
			Pool: d.Pool, Redis: d.Redis, Secret: d.Config.JWTSecret, Clock: d.Clock, Logger: d.Logger,
			Dev: d.Config.Dev, Mailer: mail.FromConfig(d.Config.SMTP, d.Logger), DashboardURL: dashboard,
		})
	})
	return d.Auth
}

// AuthCleanupJob deletes expired blacklist entries, refresh tokens and reset tokens (hourly).
func (d *Deps) AuthCleanupJob(ctx context.Context, now time.Time) error {
	return d.AuthService().CleanupJob(ctx, now)
}
