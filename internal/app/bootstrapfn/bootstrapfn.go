// Package bootstrapfn assembles the bootstrap function: agent enrolment and installers
// (POST /api/public/bootstrap, GET /install.sh, GET /agent/requirements). It signs machine
// certificates through KMS.
package bootstrapfn

import (
	"context"
	"io"
	"net/http"

	"github.com/optralis/optralis/internal/agentreq"
	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/ca/kmsca"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/enrol"
	"github.com/optralis/optralis/internal/routes"
)

// Enrolment is the enrolment service over core: authority signs machine certificates (nil:
// the bootstrap answers 503), e gives the URLs and options.
func Enrolment(core app.Core, authority *ca.CA, e config.Enrolment) enrol.Deps {
	return enrol.Deps{Pool: core.Pool, Cache: core.Cache(), CA: authority, Clock: core.Clock, Logger: core.Logger,
		AgentEndpoint: e.AgentEndpoint, PublicAPIURL: e.PublicAPIURL, AgentDownloadURL: e.AgentDownloadURL,
		AllowServerKeys: e.AllowServerGeneratedKeys}
}

// Requirements is the agent-requirements service over core.
func Requirements(core app.Core) agentreq.Deps {
	return agentreq.Deps{Pool: core.Pool, Clock: core.Clock, Logger: core.Logger}
}

// Handlers binds the bootstrap function's routes.
func Handlers(core app.Core, d enrol.Deps) app.Handlers {
	return app.Handlers{
		"POST /api/public/bootstrap": enrol.HandleBootstrap(d),
		"GET /install.sh":            enrol.HandleInstallScript(d),
		"GET /agent/requirements":    agentreq.HandleGet(Requirements(core)),
	}
}

// New serves the bootstrap function's routes.
func New(core app.Core, authority *ca.CA, e config.Enrolment) (http.Handler, error) {
	return app.Bind(routes.Of(routes.FnBootstrap), Handlers(core, Enrolment(core, authority, e)), app.Guards{}, core)
}

// Open is the Lambda's cold start.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	var e config.Enrolment
	return app.OpenHTTP(ctx, routes.FnBootstrap, getenv, stdout,
		func(getenv func(string) string) (err error) { e, err = config.LoadEnrolment(getenv); return err },
		func(core app.Core) (http.Handler, error) {
			authority, err := kmsca.Open(ctx, getenv, e.CAKMSKeyID, e.CACertPEM)
			if err != nil {
				return nil, err
			}
			return New(core, authority, e)
		})
}
