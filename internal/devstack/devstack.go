// Package devstack is `optralis dev`: the whole system in one process on a developer's
// machine, with its own PostgreSQL and Redis under .dev/ when none is configured.
package devstack

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/authfn"
	"github.com/optralis/optralis/internal/app/heartbeatfn"
	"github.com/optralis/optralis/internal/app/migratefn"
	"github.com/optralis/optralis/internal/app/monolith"
	"github.com/optralis/optralis/internal/app/uptimefn"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/localsvc"
	"github.com/optralis/optralis/internal/seed"
	statuspage "github.com/optralis/optralis/web/status"
)

// Options are the local stack's knobs (defaults suit `make run`).
type Options struct {
	Dir       string // state directory, ".dev"
	AgentPort int    // mTLS port for /agent/*, 8443
	PGPort    int    // port of the local PostgreSQL started when DATABASE_URL is unset
	RedisPort int    // port of the local Redis started when REDIS_URL is unset
	// Ready, when set, is called once everything is serving (tests use it).
	Ready func(Stack)
}

// Stack describes the running stack.
type Stack struct {
	APIURL      string
	AgentURL    string
	DatabaseURL string // without its password, as the banner prints it (agentsim needs it)
	CA          *ca.CA
	Core        app.Core
	Auth        *auth.Service
}

// Run starts everything and serves until ctx is cancelled, then stops it all cleanly.
func Run(ctx context.Context, getenv func(string) string, out io.Writer, logger *slog.Logger, o Options) error {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return err
	}
	env := map[string]string{}
	lookup := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return getenv(k)
	}

	if getenv("JWT_SECRET") == "" {
		secret, err := devSecret(filepath.Join(o.Dir, "jwt_secret"))
		if err != nil {
			return err
		}
		env["JWT_SECRET"] = secret
	}
	// Validate the configuration before starting any server: a bad PORT or SMTP_PORT is
	// refused at once, not after PostgreSQL and Redis have started. The local servers'
	// URLs are not known yet; placeholders stand in for them.
	if _, err := config.Load(func(k string) string {
		if v := lookup(k); v != "" || k != "DATABASE_URL" {
			return v
		}
		return "postgres://127.0.0.1/optralis"
	}); err != nil {
		return err
	}

	if getenv("DATABASE_URL") == "" {
		if err := localsvc.EnsurePostgresInstalled(ctx, func(f string, a ...any) { fmt.Fprintf(out, f+"\n", a...) }); err != nil {
			return err
		}
		dataDir, err := filepath.Abs(filepath.Join(o.Dir, "pgdata"))
		if err != nil {
			return err
		}
		pg, err := localsvc.StartPostgres(ctx, dataDir, o.PGPort, false)
		if err != nil {
			return err
		}
		if pg.Recovered != 0 {
			fmt.Fprintf(out, "PostgreSQL: stopped the server (pid %d) a previous run left on %s (it was killed before it could stop it)\n", pg.Recovered, dataDir)
		}
		defer func() {
			if err := pg.Stop(); err != nil {
				logger.Warn("stopping PostgreSQL", "error", err.Error())
			}
		}()
		if err := ensureDatabase(ctx, pg.URL("postgres"), "optralis"); err != nil {
			return err
		}
		env["DATABASE_URL"] = pg.URL("optralis")
		if pg.Timescale {
			// TimescaleDB is installed on this machine and preloaded: TIMESERIES_MODE=auto
			// (the default) finds it usable and a new database gets timescale mode.
			fmt.Fprintf(out, "PostgreSQL: local server on 127.0.0.1:%d with timescaledb preloaded, data in %s\n", pg.Port, dataDir)
		} else {
			fmt.Fprintf(out, "PostgreSQL: local server on 127.0.0.1:%d, data in %s (TimescaleDB not installed: postgres mode)\n", pg.Port, dataDir)
		}
	}
	if getenv("REDIS_URL") == "" {
		if localsvc.RedisAvailable() {
			r, err := localsvc.StartRedisWithPIDFile(ctx, o.RedisPort, filepath.Join(o.Dir, "redis.pid"))
			if err != nil {
				fmt.Fprintf(out, "Redis: could not start (%v); running without the cache\n", err)
			} else {
				defer r.Stop()
				if r.Recovered != 0 {
					fmt.Fprintf(out, "Redis: stopped the server (pid %d) a previous run left running\n", r.Recovered)
				}
				env["REDIS_URL"] = r.URL()
				fmt.Fprintf(out, "Redis: local server on 127.0.0.1:%d\n", r.Port)
			}
		} else {
			fmt.Fprintln(out, "Redis: redis-server not installed; running without the cache (apt-get install redis-server to add it)")
		}
	}
	cfg, err := config.Load(lookup)
	if err != nil {
		return err
	}
	cfg.Dev = true

	core, err := app.OpenCore(ctx, cfg.DatabaseURL, cfg.RedisURL, cfg.CORSAllowedOrigins, db.ServerProfile(), logger)
	if err != nil {
		return err
	}
	defer core.Close()
	now := core.Clock.Now()
	mres, err := migratefn.Migrate(ctx, core.Pool, cfg.TimeseriesMode, now, logger)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Database: schema version %d, time-series mode %s (%d migrations applied now)\n  mode: %s\n", mres.Version, mres.Mode, len(mres.Applied), mres.ModeReason)
	sres, err := seed.Run(ctx, core.Pool, cfg.DefaultAdminPassword, true, now)
	if err != nil {
		return err
	}

	authority, err := ca.LoadOrCreateLocal(filepath.Join(o.Dir, "ca"), now)
	if err != nil {
		return fmt.Errorf("local CA: %w", err)
	}
	serverCert, err := authority.ServerCertificate([]string{"localhost", "127.0.0.1", "::1"}, now)
	if err != nil {
		return err
	}

	apiLn, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("API port %d: %w", cfg.Port, err)
	}
	agentLn, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.AgentPort)))
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("agent port %d: %w", o.AgentPort, err)
	}
	// Enrolment: the local CA signs machine certificates; the URLs default to this stack's.
	enrolment := enrolmentDefaults(cfg.Enrolment, "http://"+apiLn.Addr().String(), "https://"+agentLn.Addr().String())
	uptime, err := uptimefn.Load(lookup)
	if err != nil {
		apiLn.Close()
		agentLn.Close()
		return err
	}
	authSvc := authfn.NewService(core, authfn.Settings{Secret: cfg.JWTSecret, SMTP: cfg.SMTP, Dev: true})
	hb := heartbeatfn.NewServiceWith(core, heartbeatfn.ServerSettings(cfg.LicenceGraceDays, cfg.Ingest))
	// After the servers: their in-flight heartbeats are answered first.
	defer hb.Close()
	m, err := monolith.New(core, monolith.Services{
		Auth: authSvc, Heartbeat: hb, CA: authority, Enrolment: enrolment, AI: cfg.AI, Uptime: uptime,
		Mail: mail.MessageFromConfig(cfg.SMTP, logger), DashboardURL: cfg.DashboardURL,
	})
	if err != nil {
		apiLn.Close()
		agentLn.Close()
		return err
	}
	demo, err := ensureDemoUser(ctx, core, authSvc, sres.DemoClientID)
	if err != nil {
		apiLn.Close()
		agentLn.Close()
		return err
	}

	apiSrv := httpx.NewServer(apiLn.Addr().String(), WithStatusPage(m.API), nil, logger)
	agentSrv := httpx.NewServer(agentLn.Addr().String(), TLSIdentity(m.Agent), AgentTLSConfig(authority, serverCert), logger)

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errc <- ignoreClosed(apiSrv.Serve(apiLn)) }()
	go func() { defer wg.Done(); errc <- ignoreClosed(agentSrv.ServeTLS(agentLn, "", "")) }()

	// One health check before announcing readiness, so the status page has data at once.
	if err := uptimefn.Job(core, uptime)(ctx, core.Clock.Now()); err != nil {
		logger.Warn("initial uptime check failed", "error", err.Error())
	}
	jobsCtx, stopJobs := context.WithCancel(ctx)
	wg.Add(1)
	go func() { defer wg.Done(); runJobs(jobsCtx, m.Jobs, core.Clock, logger) }()

	st := Stack{
		APIURL:      "http://" + apiLn.Addr().String(),
		AgentURL:    "https://" + agentLn.Addr().String(),
		DatabaseURL: RedactURL(cfg.DatabaseURL),
		CA:          authority, Core: core, Auth: authSvc,
	}
	banner(out, st, sres, demo, o.Dir)
	if o.Ready != nil {
		o.Ready(st)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	fmt.Fprintln(out, "\nStopping...")
	stopJobs()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = apiSrv.Shutdown(shutCtx)
	_ = agentSrv.Shutdown(shutCtx)
	wg.Wait()
	return runErr
}

// WithStatusPage serves the public status page (static files, the CDN's job on AWS) under
// statuspage.Prefix next to the API routes, so a browser opens it from the same origin as
// GET /status. It is not a row of the route table: no function serves it on AWS.
func WithStatusPage(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(statuspage.Prefix, statuspage.Handler())
	mux.Handle("/", api)
	return mux
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// AgentTLSConfig requires a client certificate signed by the CA: the local equivalent of
// API Gateway's mutual TLS truststore.
func AgentTLSConfig(authority *ca.CA, serverCert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    authority.Pool(),
	}
}

// TLSIdentity hands handlers the verified client certificate through the same identity
// context the Lambda adapter fills, so agent handlers cannot tell the two paths apart.
func TLSIdentity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
			r = r.WithContext(identity.WithClientCert(r.Context(), r.TLS.VerifiedChains[0][0]))
		}
		next.ServeHTTP(w, r)
	})
}

// runJobs runs each job on its cadence (routes.Jobs, the same values EventBridge is
// given), first at its first due time after start.
func runJobs(ctx context.Context, jobs []app.Job, clk clock.Clock, logger *slog.Logger) {
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := func() {
				start := time.Now()
				if err := j.Run(ctx, clk.Now()); err != nil && ctx.Err() == nil {
					logger.Error("job failed", "job", j.Name, "error", err.Error())
					return
				}
				logger.Info("job done", "job", j.Name, "duration_ms", time.Since(start).Milliseconds())
			}
			for {
				t := time.NewTimer(j.Cadence.Next(clk.Now()).Sub(clk.Now()))
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
					run()
				}
			}
		}()
	}
	wg.Wait()
}

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	}
	return err
}

// devSecret returns the local stack's JWT secret, generated once and kept in path (0600).
// Production has no such fallback: JWT_SECRET is required there.
func devSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= config.MinJWTSecretLen {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	s := hex.EncodeToString(buf)
	return s, os.WriteFile(path, []byte(s+"\n"), 0o600)
}

// RedactURL is a connection URL without its password (kept out of terminals and logs).
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func banner(out io.Writer, st Stack, s seed.Result, demo demoUser, dir string) {
	fmt.Fprintf(out, `
Optralis is running.
  API (dashboard, auth, bootstrap, status): %s
  Status page:                              %s/status-page/
  Agent endpoint (mutual TLS, CA in %s):    %s
  Database (DATABASE_URL for agentsim, job run): %s
  Demo client id: %s
`, st.APIURL, st.APIURL, filepath.Join(dir, "ca", "ca.crt"), st.AgentURL, st.DatabaseURL, s.DemoClientID)
	switch {
	case s.GeneratedPassword != "":
		fmt.Fprintf(out, "  Platform admin: %s  password: %s   (shown once; change it at first login)\n", seed.AdminEmail, s.GeneratedPassword)
	case s.AdminCreated:
		fmt.Fprintf(out, "  Platform admin: %s with DEFAULT_ADMIN_PASSWORD (change it at first login)\n", seed.AdminEmail)
	default:
		fmt.Fprintf(out, "  Platform admin: %s (existing account)\n", seed.AdminEmail)
	}
	fmt.Fprintf(out, `
Try:
  curl -s %s/status
  curl -s --cacert %s %s/agent/heartbeat   (refused: no client certificate)
`, st.APIURL, filepath.Join(dir, "ca", "ca.crt"), st.AgentURL)
	enrolBanner(out, st, demo)
	fmt.Fprintf(out, "Ctrl-C stops everything; data stays in %s.\n", dir)
}
