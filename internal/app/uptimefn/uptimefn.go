// Package uptimefn assembles the uptime function: the 30-minute health check that feeds
// the status page.
package uptimefn

import (
	"context"
	"io"
	"time"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/statusfn"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/routes"
)

// Settings are the uptime function's own settings.
type Settings struct {
	// AIHealthURL is the AI provider's health endpoint (config.AIHealthURL); empty: no
	// provider, the ai service is not checked.
	AIHealthURL string
}

// Load reads the settings from the environment.
func Load(getenv func(string) string) (Settings, error) {
	u, err := config.AIHealthURL(getenv)
	return Settings{AIHealthURL: u}, err
}

// Job records the services' health at now.
func Job(core app.Core, s Settings) app.JobFunc {
	t := statusfn.Tracker(core)
	t.AIHealthURL = s.AIHealthURL
	return func(ctx context.Context, now time.Time) error { return t.Check(ctx, now) }
}

// Open is the Lambda's cold start.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	var s Settings
	core, err := app.OpenLambda(ctx, routes.FnUptime, getenv, stdout, func(getenv func(string) string) (err error) {
		s, err = Load(getenv)
		return err
	})
	if err != nil {
		return app.Function{}, err
	}
	return app.Function{Job: Job(core, s), Logger: core.Logger, Close: core.Close}, nil
}
