package app

import (
	"context"
	"fmt"
	"net/http"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/optralis/optralis/internal/agentreq"
	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/enrol"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/winbuilds"
)

// openCA is the machine CA of a deployed function: its certificate from CA_CERT_PEM and
// its key in KMS (CA_KMS_KEY_ARN), which signs through kms:Sign without the key ever
// entering the function. Without that configuration there is none (the local stack sets
// Deps.CA from .dev/ca).
func openCA(ctx context.Context, cfg config.Config) (*ca.CA, error) {
	e := cfg.Enrolment
	if e.CAKMSKeyID == "" {
		return nil, nil
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("machine CA: AWS configuration: %w", err)
	}
	authority, err := ca.FromKMS(ctx, kms.NewFromConfig(awsCfg), e.CAKMSKeyID, e.CACertPEM)
	if err != nil {
		return nil, fmt.Errorf("machine CA: %w", err)
	}
	return authority, nil
}

func (d *Deps) enrolDeps() enrol.Deps {
	e := d.Config.Enrolment
	return enrol.Deps{Pool: d.Pool, Redis: d.Redis, CA: d.CA, Clock: d.Clock, Logger: d.Logger,
		AgentEndpoint: e.AgentEndpoint, PublicAPIURL: e.PublicAPIURL, AgentDownloadURL: e.AgentDownloadURL,
		AllowServerKeys: e.AllowServerGeneratedKeys}
}

func (d *Deps) certDeps() certs.Deps {
	return certs.Deps{Pool: d.Pool, Clock: d.Clock, Logger: d.Logger}
}

func (d *Deps) agentreqDeps() agentreq.Deps {
	return agentreq.Deps{Pool: d.Pool, Clock: d.Clock, Logger: d.Logger}
}

func (d *Deps) winbuildsDeps() winbuilds.Deps {
	return winbuilds.Deps{Pool: d.Pool, Logger: d.Logger, Source: winbuilds.Source{
		BaseURL: d.Config.Enrolment.EndOfLifeAPIURL, Client: &http.Client{Timeout: 10 * time.Second}}}
}

// agentGuard admits an agent whose client certificate the transport verified (chain and
// expiry: the local TLS listener, or API Gateway's mutual TLS) and that is still its
// machine's active certificate: revoked, superseded, unknown or mismatched certificates
// are refused from the very next request. Handlers find the machine with certs.AgentFrom.
func (d *Deps) agentGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		cert, ok := identity.ClientCert(req.Context())
		if !ok {
			httpx.WriteError(w, req, d.Logger, apperr.New(apperr.Unauthenticated, "a client certificate is required"))
			return
		}
		var clientID, machineID, serial string
		var err error
		if _, inBatch := next.(certs.CheckInBatch); inBatch {
			// The handler asserts the certificate in its own batch (one round trip).
			clientID, machineID, serial, err = certs.Inspect(cert, d.Clock.Now())
		} else {
			serial = ca.SerialHex(cert.SerialNumber)
			clientID, machineID, err = certs.CheckPresented(req.Context(), d.Pool, cert, d.Clock.Now())
		}
		if err != nil {
			if _, refused := apperr.As(err); refused {
				d.Logger.InfoContext(req.Context(), "agent certificate refused", "reason", err.Error())
			}
			httpx.WriteError(w, req, d.Logger, err)
			return
		}
		next.ServeHTTP(w, req.WithContext(certs.WithAgent(req.Context(), certs.Agent{ClientID: clientID, MachineID: machineID, Serial: serial})))
	})
}

// InstallTokenCleanupJob deletes install tokens expired for more than 24 hours (hourly).
func (d *Deps) InstallTokenCleanupJob(ctx context.Context, now time.Time) error {
	n, err := enrol.CleanupExpiredTokens(ctx, d.Pool, now)
	if err == nil && n > 0 {
		d.Logger.InfoContext(ctx, "expired install tokens deleted", "count", n)
	}
	return err
}
