package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/adminfn"
	"github.com/optralis/optralis/internal/app/authfn"
	"github.com/optralis/optralis/internal/app/bootstrapfn"
	"github.com/optralis/optralis/internal/app/heartbeatfn"
	"github.com/optralis/optralis/internal/app/monolith"
	"github.com/optralis/optralis/internal/app/renewfn"
	"github.com/optralis/optralis/internal/app/statusfn"
	"github.com/optralis/optralis/internal/app/uptimefn"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/heartbeat"
	"github.com/optralis/optralis/internal/routes"
)

// testDeps is what a test chooses (database, clock, services with their own key
// prefixes); its methods assemble the functions exactly as the Lambdas and the local stack
// do, through the functions' own packages.
type testDeps struct {
	Config    config.Config
	Pool      *pgxpool.Pool
	Redis     *redis.Client
	Logger    *slog.Logger
	Clock     clock.Clock
	Auth      *auth.Service      // nil: built from Config.JWTSecret
	CA        *ca.CA             // nil: enrolment answers 503
	Heartbeat *heartbeat.Service // nil: built from the core
	KeyPrefix string             // the cache key prefix of this test's services
}

func (d *testDeps) core() app.Core {
	return app.Core{Pool: d.Pool, Redis: d.Redis, Clock: d.Clock, Logger: d.Logger, CORS: d.Config.CORSAllowedOrigins, KeyPrefix: d.KeyPrefix}
}

func (d *testDeps) auth() *auth.Service {
	if d.Auth == nil {
		d.Auth = authfn.NewService(d.core(), authfn.Settings{Secret: d.Config.JWTSecret})
	}
	return d.Auth
}

func (d *testDeps) heartbeat() *heartbeat.Service {
	if d.Heartbeat == nil {
		d.Heartbeat = heartbeatfn.NewService(d.core())
	}
	return d.Heartbeat
}

func (d *testDeps) monolith() *monolith.Monolith {
	m, err := monolith.New(d.core(), monolith.Services{Auth: d.auth(), Heartbeat: d.heartbeat(), CA: d.CA, Enrolment: d.Config.Enrolment, AI: d.Config.AI,
		NotifyAllowInsecure: d.Config.NotifyAllowInsecureURLs})
	if err != nil {
		panic(err)
	}
	return m
}

// Routes is the route table.
func (d *testDeps) Routes() []routes.Route { return routes.Table() }

// PublicHandler serves every API-domain route, as the local server's plain port does.
func (d *testDeps) PublicHandler() http.Handler { return d.monolith().API }

// Jobs are the local stack's jobs.
func (d *testDeps) Jobs() []app.Job { return d.monolith().Jobs }

// UptimeJob is the uptime function's job.
func (d *testDeps) UptimeJob(ctx context.Context, now time.Time) error {
	return uptimefn.Job(d.core(), uptimefn.Settings{})(ctx, now)
}

// FunctionHandler is one function's handler, built by its package as its Lambda builds it.
func (d *testDeps) FunctionHandler(fn string) http.Handler {
	var h http.Handler
	var err error
	switch fn {
	case routes.FnStatus:
		h, err = statusfn.New(d.core())
	case routes.FnAuth:
		h, err = authfn.New(d.core(), d.auth())
	case routes.FnBootstrap:
		h, err = bootstrapfn.New(d.core(), d.CA, d.Config.Enrolment)
	case routes.FnAdmin:
		h, err = adminfn.New(d.core(), d.auth(), d.CA, d.Config.Enrolment, adminfn.Notify{AllowInsecure: d.Config.NotifyAllowInsecureURLs})
	case routes.FnHeartbeat:
		h, err = heartbeatfn.New(d.core(), d.heartbeat())
	case routes.FnRenew:
		h, err = renewfn.New(d.core(), d.CA)
	default:
		err = fmt.Errorf("no function %q", fn)
	}
	if err != nil {
		panic(err)
	}
	return h
}

// testRoute is a route a test adds beside the table's, with its handler.
type testRoute struct {
	routes.Route
	Handler http.Handler
}

// AgentHandler serves the agents domain (heartbeat and renew) plus extra test routes, bound
// and guarded like the table's.
func (d *testDeps) AgentHandler(extra ...testRoute) http.Handler {
	rows := routes.Of(routes.AgentFunctions()...)
	hs := app.Merge(heartbeatfn.Handlers(d.heartbeat()), renewfn.Handlers(d.core(), d.CA))
	for _, r := range extra {
		rows = append(rows, r.Route)
		hs[r.Pattern()] = r.Handler
	}
	h, err := app.Bind(rows, hs, heartbeatfn.Guards(d.core()), d.core())
	if err != nil {
		panic(err)
	}
	return h
}
