// Package renewfn assembles the renew function: agent certificate renewal on the agents
// domain (POST /agent/certificate/renew, mutual TLS). It is the agents domain's only
// signer, so the heartbeat function links no KMS client and holds no kms:Sign grant.
package renewfn

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/awsenv"
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

// OpenCA is the machine CA on AWS: its certificate (CA_CERT_PEM) and its KMS key
// (CA_KMS_KEY_ARN), which signs through kms:Sign. Without them there is none (503).
func OpenCA(ctx context.Context, getenv func(string) string, e config.Enrolment) (*ca.CA, error) {
	if e.CAKMSKeyID == "" {
		return nil, nil
	}
	awsCfg, err := awsenv.Config(getenv)
	if err != nil {
		return nil, fmt.Errorf("machine CA: AWS configuration: %w", err)
	}
	authority, err := kmsca.FromKMS(ctx, kms.NewFromConfig(awsCfg), e.CAKMSKeyID, e.CACertPEM)
	if err != nil {
		return nil, fmt.Errorf("machine CA: %w", err)
	}
	return authority, nil
}

// Open is the Lambda's cold start.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	var e config.Enrolment
	return app.OpenHTTP(ctx, routes.FnRenew, getenv, stdout,
		func(getenv func(string) string) (err error) { e, err = config.LoadEnrolment(getenv); return err },
		func(core app.Core) (http.Handler, error) {
			authority, err := OpenCA(ctx, getenv, e)
			if err != nil {
				return nil, err
			}
			return New(core, authority)
		})
}
