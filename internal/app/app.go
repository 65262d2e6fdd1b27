// Package app assembles each function's dependencies, routes and jobs. Lambda mains and the
// local server both build from here, so a route behaves the same on both paths.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/awssecrets"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/heartbeat"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/logging"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/rollup"
	"github.com/optralis/optralis/internal/status"
)

// Deps are the long-lived dependencies, built once per process (per Lambda cold start).
type Deps struct {
	Config config.Config
	Pool   *pgxpool.Pool
	Redis  *redis.Client // nil: no cache
	Logger *slog.Logger
	Clock  clock.Clock
	// Auth authenticates dashboard users; nil: built from the fields above on first use
	// (see AuthService). Tests set it to choose a Redis key prefix, hasher or mailer.
	Auth     *auth.Service
	authOnce sync.Once
	// CA signs machine certificates: KMS-backed when CA_KMS_KEY_ARN/CA_CERT_PEM are set
	// (Open), the local CA in the local stack; nil: enrolment answers 503.
	CA *ca.CA
	// Heartbeat ingests agent heartbeats; nil: built from the fields above on first use
	// (see HeartbeatService). Tests set it to choose a Redis key prefix.
	Heartbeat     *heartbeat.Service
	heartbeatOnce sync.Once
}

// Open connects to the database and the cache. Close releases them.
func Open(ctx context.Context, cfg config.Config, profile db.Profile, logger *slog.Logger) (*Deps, error) {
	pcfg, err := db.Config(cfg.DatabaseURL, profile)
	if err != nil {
		return nil, err
	}
	pool, err := db.Open(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	rc, err := cache.Open(ctx, cfg.RedisURL, logger)
	if err != nil {
		pool.Close()
		return nil, err
	}
	authority, err := openCA(ctx, cfg)
	if err != nil {
		pool.Close()
		if rc != nil {
			_ = rc.Close()
		}
		return nil, err
	}
	return &Deps{Config: cfg, Pool: pool, Redis: rc, Logger: logger, Clock: clock.System{}, CA: authority}, nil
}

// Close releases the connections.
func (d *Deps) Close() {
	if d.Redis != nil {
		_ = d.Redis.Close()
	}
	d.Pool.Close()
}

func (d *Deps) wrap(mux *http.ServeMux) http.Handler {
	return httpx.NewHandler(mux, httpx.Options{Logger: d.Logger, AllowedOrigins: d.Config.CORSAllowedOrigins})
}

func (d *Deps) tracker() status.Tracker {
	return status.Tracker{Pool: d.Pool, Redis: d.Redis, Logger: d.Logger}
}

// Job is a scheduled task: EventBridge on AWS, a ticker in the local server.
type Job struct {
	Name  string
	Every time.Duration
	Run   func(ctx context.Context, now time.Time) error
}

// Jobs are the scheduled tasks with their cadence.
func (d *Deps) Jobs() []Job {
	return []Job{
		{Name: "uptime", Every: 30 * time.Minute, Run: d.UptimeJob},
		{Name: "cleanup", Every: time.Hour, Run: d.CleanupJob},
	}
}

// CleanupJob is the hourly maintenance run by the cleanup function: the postgres-mode
// rollups, expired auth entries and expired install tokens. Each part runs even when an
// earlier one fails; the first error is returned so the run is marked failed.
func (d *Deps) CleanupJob(ctx context.Context, now time.Time) error {
	var first error
	for _, part := range []struct {
		name string
		run  func(context.Context, time.Time) error
	}{
		{"rollups", d.RollupJob},
		{"auth-cleanup", d.AuthCleanupJob},
		{"install-token-cleanup", d.InstallTokenCleanupJob},
	} {
		if err := part.run(ctx, now); err != nil {
			d.Logger.ErrorContext(ctx, "cleanup step failed", "step", part.name, "error", err.Error())
			if first == nil {
				first = fmt.Errorf("%s: %w", part.name, err)
			}
		}
	}
	return first
}

// UptimeJob records the services' health (every 30 minutes).
func (d *Deps) UptimeJob(ctx context.Context, now time.Time) error {
	return d.tracker().Check(ctx, now)
}

// RollupJob refreshes the hourly rollup tables in postgres mode (TimescaleDB refreshes its
// continuous aggregates itself).
func (d *Deps) RollupJob(ctx context.Context, now time.Time) error {
	r, err := d.refresher(ctx)
	if err != nil {
		return err
	}
	return r.Job(ctx, now)
}

func (d *Deps) refresher(ctx context.Context) (rollup.Refresher, error) {
	mode, err := migrate.RecordedMode(ctx, d.Pool)
	if err != nil {
		return rollup.Refresher{}, err
	}
	if mode == "" {
		return rollup.Refresher{}, fmt.Errorf("the database has not been migrated")
	}
	return rollup.Refresher{Pool: d.Pool, Mode: mode}, nil
}

// MigrateResult is what a deploy-time migration reports.
type MigrateResult struct {
	Mode       string   `json:"mode"`
	Version    int64    `json:"version"`
	Applied    []string `json:"applied"`
	Backfilled bool     `json:"aggregates_backfilled"`
}

// Migrate applies pending migrations and, when any were applied, backfills the hourly
// aggregates (the deploy-time "rafraîchissement initial"; never on a cold start).
func Migrate(ctx context.Context, pool *pgxpool.Pool, mode string, now time.Time, logger *slog.Logger) (MigrateResult, error) {
	res, err := migrate.Run(ctx, pool, mode, logger)
	if err != nil {
		return MigrateResult{}, err
	}
	out := MigrateResult{Mode: res.Mode, Version: res.Version, Applied: res.Applied}
	if out.Applied == nil {
		out.Applied = []string{}
	}
	logger.InfoContext(ctx, "migrations done", "mode", res.Mode, "version", res.Version, "applied", len(res.Applied))
	if len(res.Applied) > 0 {
		if err := (rollup.Refresher{Pool: pool, Mode: res.Mode}).Initial(ctx, now); err != nil {
			return out, fmt.Errorf("initial aggregate refresh: %w", err)
		}
		out.Backfilled = true
	}
	return out, nil
}

// LambdaEnv is a function's environment: os.Getenv, with VAR_SECRET_ARN references to
// Secrets Manager resolved on first use (the stack never puts a secret in the template).
func LambdaEnv(ctx context.Context) *awssecrets.Env {
	return awssecrets.New(ctx, os.Getenv, awssecrets.NewSDKClient)
}

// OpenLambda is a function's cold start: configuration from the environment, connections
// sized for one Lambda instance. A bad configuration stops the instance with one line.
// Secrets (DATABASE_URL, JWT_SECRET, SMTP credentials) arrive as Secrets Manager references
// (VAR_SECRET_ARN, see LambdaEnv), fetched once here.
func OpenLambda(name string) *Deps {
	logger := logging.New(os.Stdout, slog.LevelInfo).With("function", name)
	env := LambdaEnv(context.Background())
	cfg, err := config.Load(env.Getenv)
	if serr := env.Err(); serr != nil {
		err = serr // the cause, rather than the "missing variable" it led to
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	deps, err := Open(context.Background(), cfg, db.LambdaProfile(), logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	return deps
}
