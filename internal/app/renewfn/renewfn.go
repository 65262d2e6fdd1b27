// Package renewfn assembles the renew function: agent certificate renewal on the agents
// domain (POST /agent/certificate/renew, mutual TLS). It is the agents domain's only
// signer, so the heartbeat function links no KMS client and holds no kms:Sign grant.
package renewfn

import (
	"context"
	"io"
	"net/http"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/ca/kmsca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/routes"
)

// Handlers binds the renew function's routes; authority signs (nil: 503).
func Handlers(core app.Core, authority *ca.CA) app.Handlers {
	return app.Handlers{
		"POST /agent/certificate/renew": certs.HandleRenew(certs.RenewDeps{Pool: core.Pool, CA: authority, Clock: core.Clock, Logger: core.Logger,
			Cache: core.Cache()}),
	}
}

// Guards checks agents' client certificates (the renewal asserts the record itself:
// routes.CertInBatch).
func Guards(core app.Core) app.Guards {
	return app.Guards{Agent: certs.Guard(core.Pool, core.Clock, core.Logger)}
}

// New serves the renew function's routes.
func New(core app.Core, authority *ca.CA) (http.Handler, error) {
	return app.Bind(routes.Of(routes.FnRenew), Handlers(core, authority), Guards(core), core)
}

// Open is the Lambda's cold start.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	var e config.Enrolment
	return app.OpenHTTP(ctx, routes.FnRenew, getenv, stdout,
		func(getenv func(string) string) (err error) { e, err = config.LoadEnrolment(getenv); return err },
		func(core app.Core) (http.Handler, error) {
			authority, err := kmsca.Open(ctx, getenv, e.CAKMSKeyID, e.CACertPEM)
			if err != nil {
				return nil, err
			}
			return New(core, authority)
		})
}
