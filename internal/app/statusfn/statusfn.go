// Package statusfn assembles the status function: the public status page (GET /status).
package statusfn

import (
	"context"
	"io"
	"net/http"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/routes"
	"github.com/optralis/optralis/internal/status"
)

// Tracker is the service-health tracker over core's database and cache.
func Tracker(core app.Core) status.Tracker {
	return status.Tracker{Pool: core.Pool, Redis: core.Redis, Logger: core.Logger}
}

// Handlers binds the status function's routes.
func Handlers(core app.Core) app.Handlers {
	return app.Handlers{
		"GET /status": status.HandleStatus(Tracker(core), core.Clock),
	}
}

// New serves the status function's routes.
func New(core app.Core) (http.Handler, error) {
	return app.Bind(routes.Of(routes.FnStatus), Handlers(core), app.Guards{}, core)
}

// Open is the Lambda's cold start.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	return app.OpenHTTP(ctx, routes.FnStatus, getenv, stdout, nil, New)
}
