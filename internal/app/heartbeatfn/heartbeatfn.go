// Package heartbeatfn assembles the heartbeat function: agents' heartbeats and collector
// configuration on the agents domain (mutual TLS).
package heartbeatfn

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/awsenv"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/heartbeat"
	"github.com/optralis/optralis/internal/ingestqueue"
	"github.com/optralis/optralis/internal/routes"
)

// NewService is the heartbeat ingest over core, built once per process (it holds the rate
// limiter's in-process fallback and the client cache).
func NewService(core app.Core) *heartbeat.Service {
	return NewServiceWithGrace(core, config.DefaultLicenceGraceDays)
}

// NewServiceWithGrace is NewService serving the agents of an expired licence for
// graceDays more days (LICENSE_GRACE_DAYS; 0: not at all).
func NewServiceWithGrace(core app.Core, graceDays int) *heartbeat.Service {
	return NewServiceWith(core, graceDays, nil)
}

// NewServiceWith is NewServiceWithGrace in queue mode when queue is not nil: heartbeats
// are checked, queued and answered, and the writer function writes them.
func NewServiceWith(core app.Core, graceDays int, queue heartbeat.Enqueuer) *heartbeat.Service {
	if graceDays == 0 {
		graceDays = -1 // heartbeat.Deps: negative is none, 0 its default
	}
	return heartbeat.New(heartbeat.Deps{Pool: core.Pool, Redis: core.Redis, Clock: core.Clock, Logger: core.Logger,
		RedisPrefix: core.KeyPrefix, LicenceGraceDays: graceDays, Queue: queue})
}

// Handlers binds the heartbeat function's routes.
func Handlers(hb *heartbeat.Service) app.Handlers {
	return app.Handlers{
		"POST /agent/heartbeat":        hb.HandleHeartbeat(),
		"GET /agent/config/collectors": hb.HandleCollectors(),
	}
}

// Guards checks agents' client certificates; a heartbeat from a certificate or client
// marked refused in Redis is refused before its body is read.
func Guards(core app.Core) app.Guards {
	return app.Guards{Agent: certs.RefusingGuard(core.Pool, certs.Marks{Store: core.Cache()}, core.Clock, core.Logger)}
}

// New serves the heartbeat function's routes.
func New(core app.Core, hb *heartbeat.Service) (http.Handler, error) {
	return app.Bind(routes.Of(routes.FnHeartbeat), Handlers(hb), Guards(core), core)
}

// Open is the Lambda's cold start. With INGEST_MODE=queue heartbeats go to
// HEARTBEAT_QUEUE_URL through SQS (the function's role, AWS_ENDPOINT_URL for a local
// stand-in). AGENTS_ENDPOINT is checked here; main picks its adapter from it.
func Open(ctx context.Context, getenv func(string) string, stdout io.Writer) (app.Function, error) {
	var grace int
	var queue heartbeat.Enqueuer
	return app.OpenHTTP(ctx, routes.FnHeartbeat, getenv, stdout,
		func(getenv func(string) string) (err error) {
			if grace, err = config.LicenceGraceDays(getenv); err != nil {
				return err
			}
			if _, err = config.AgentsEndpoint(getenv); err != nil {
				return err
			}
			in, err := config.IngestMode(getenv)
			if err != nil || in.Mode != config.IngestQueue {
				return err
			}
			cfg, err := awsenv.Config(getenv)
			if err != nil {
				return fmt.Errorf("INGEST_MODE=queue: %w", err)
			}
			queue = ingestqueue.New(cfg, in.QueueURL)
			return nil
		},
		func(core app.Core) (http.Handler, error) { return New(core, NewServiceWith(core, grace, queue)) })
}
