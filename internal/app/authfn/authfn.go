// Package authfn assembles the auth function: dashboard sign-in, sessions and passwords
// (/api/auth/*).
package authfn

import (
	"context"
	"io"
	"net/http"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/routes"
)

// Settings are what authenticating dashboard users needs beyond the core.
type Settings struct {
	Secret []byte      // JWT_SECRET
	SMTP   config.SMTP // password-reset mail; Host empty: mail disabled
	Dev    bool        // the local stack: cookies without Secure
}

// LoadSettings reads JWT_SECRET and the SMTP settings.
func LoadSettings(getenv func(string) string) (Settings, error) {
	var s Settings
	var err error
	if s.Secret, err = config.JWT(getenv); err != nil {
		return s, err
	}
	s.SMTP, err = config.LoadSMTP(getenv)
	return s, err
}

// NewService builds the authentication service: mail through SMTP when configured, reset
// links to the first dashboard origin of the CORS whitelist.
func NewService(core app.Core, s Settings) *auth.Service {
	dashboard := ""
	for _, o := range core.CORS {
		if o != "*" {
			dashboard = o
			break
		}
	}
	return auth.New(auth.Options{
		Pool: core.Pool, Redis: core.Redis, Secret: s.Secret, Clock: core.Clock, Logger: core.Logger,
		Dev: s.Dev, Mailer: mail.FromConfig(s.SMTP, core.Logger), DashboardURL: dashboard,
	})
}

// Handlers binds the auth function's routes.
func Handlers(a *auth.Service) app.Handlers {
	return app.Handlers{
		"POST /api/auth/login":           auth.HandleLogin(a),
		"POST /api/auth/refresh":         auth.HandleRefresh(a),
		"POST /api/auth/logout":          auth.HandleLogout(a),
		"GET /api/auth/me":               auth.HandleMe(a),
		"POST /api/auth/password":        auth.HandleChangePassword(a),
		"POST /api/auth/password/forgot": auth.HandleForgotPassword(a),
		"POST /api/auth/password/reset":  auth.HandleResetPassword(a),
	}
}

// New serves the auth function's routes.
func New(core app.Core, a *auth.Service) (http.Handler, error) {
	return app.Bind(routes.Of(routes.FnAuth), Handlers(a), app.Guards{Dashboard: a.Guard}, core)
}

// Open is the Lambda's cold start.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	var s Settings
	return app.OpenHTTP(ctx, routes.FnAuth, getenv, stdout,
		func(getenv func(string) string) (err error) { s, err = LoadSettings(getenv); return err },
		func(core app.Core) (http.Handler, error) { return New(core, NewService(core, s)) })
}
