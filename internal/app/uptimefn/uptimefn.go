// Package uptimefn assembles the uptime function: the 30-minute health check that feeds
// the status page.
package uptimefn

import (
	"context"
	"io"
	"time"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/statusfn"
	"github.com/optralis/optralis/internal/routes"
)

// Job records the services' health at now.
func Job(core app.Core) app.JobFunc {
	t := statusfn.Tracker(core)
	return func(ctx context.Context, now time.Time) error { return t.Check(ctx, now) }
}

// Open is the Lambda's cold start.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	return app.OpenJob(ctx, routes.FnUptime, getenv, stdout, Job)
}
