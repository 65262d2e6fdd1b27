// Package heartbeatfn assembles the heartbeat function: agents' heartbeats and collector
// configuration on the agents domain (mutual TLS).
package heartbeatfn

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/awsenv"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/heartbeat"
	"github.com/optralis/optralis/internal/ingestqueue"
	"github.com/optralis/optralis/internal/ratelimit"
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
	return NewServiceWith(core, Settings{GraceDays: graceDays, MachineLimit: config.DefaultMachineLimit, IPLimit: config.DefaultIPLimit})
}

// Settings are the heartbeat service's configuration.
type Settings struct {
	GraceDays int // LICENSE_GRACE_DAYS; 0: none
	// MachineLimit is heartbeats a minute per machine (HEARTBEAT_MACHINE_LIMIT); 0: none.
	MachineLimit int
	// IPLimit is heartbeats a minute per source address (HEARTBEAT_IP_LIMIT); 0: the spec's 3000.
	IPLimit int
	// Group, when set, writes through group committers (the long-running server);
	// nil: each heartbeat is a group of one (Lambda).
	Group *heartbeat.GroupCommit
	// Queue, when set, is the queue ingest (INGEST_MODE=queue): heartbeats are checked,
	// queued and answered, and the heartbeatwriter function writes them.
	Queue heartbeat.Enqueuer
}

// ServerSettings are the long-running server's settings from its configuration.
func ServerSettings(graceDays int, in config.Ingest) Settings {
	s := Settings{GraceDays: graceDays, MachineLimit: in.MachineLimit, IPLimit: in.IPLimit}
	if in.GroupCommit {
		s.Group = &heartbeat.GroupCommit{MaxGroup: in.MaxGroup, Committers: in.Committers}
	}
	return s
}

// NewServiceWith is the heartbeat service with s. A service with committers is stopped
// with its Close.
func NewServiceWith(core app.Core, s Settings) *heartbeat.Service {
	if s.GraceDays == 0 {
		s.GraceDays = -1 // heartbeat.Deps: negative is none, 0 its default
	}
	limit := ratelimit.Limit{Burst: -1}
	if s.MachineLimit > 0 {
		limit = ratelimit.Limit{Burst: s.MachineLimit, Period: time.Minute}
	}
	var ipLimit ratelimit.Limit // zero: heartbeat.RateLimit()
	if s.IPLimit > 0 {
		ipLimit = ratelimit.Limit{Burst: s.IPLimit, Period: time.Minute}
	}
	return heartbeat.New(heartbeat.Deps{Pool: core.Pool, Redis: core.Redis, Clock: core.Clock, Logger: core.Logger,
		RedisPrefix: core.KeyPrefix, LicenceGraceDays: s.GraceDays, Limit: ipLimit, MachineLimit: limit, GroupCommit: s.Group,
		Queue: s.Queue})
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
	var s Settings
	return app.OpenHTTP(ctx, routes.FnHeartbeat, getenv, stdout,
		func(getenv func(string) string) (err error) {
			if s.GraceDays, err = config.LicenceGraceDays(getenv); err != nil {
				return err
			}
			if s.MachineLimit, s.IPLimit, err = config.Limits(getenv); err != nil {
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
			s.Queue = ingestqueue.New(cfg, in.QueueURL)
			return nil
		},
		func(core app.Core) (http.Handler, error) { return New(core, NewServiceWith(core, s)) })
}
