// Command optralis is the local CLI: the development stack, migrations, seeding, the agent
// simulator and running a scheduled job by hand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/app/migratefn"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/devstack"
	"github.com/optralis/optralis/internal/logging"
	"github.com/optralis/optralis/internal/seed"
)

const usage = `usage: optralis <command> [flags]

commands:
  dev       run the whole system locally (own PostgreSQL and Redis when none is configured)
  migrate   apply database migrations (DATABASE_URL; --mode auto|timescale|postgres)
  seed      create the platform admin and a demo client if missing
  agentsim  enrol simulated agents through the bootstrap and send heartbeats over mTLS
  job       run one scheduled job once (job run <name> [--now <RFC3339 time>]; job list)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "optralis:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	logger := logging.New(stderr, slog.LevelInfo)
	switch args[0] {
	case "dev":
		fs := flag.NewFlagSet("dev", flag.ContinueOnError)
		o := devstack.Options{}
		fs.StringVar(&o.Dir, "dir", ".dev", "state directory (database, CA, secrets)")
		fs.IntVar(&o.AgentPort, "agent-port", 8443, "mutual-TLS port for agents")
		fs.IntVar(&o.PGPort, "pg-port", 54329, "port of the local PostgreSQL (when DATABASE_URL is unset)")
		fs.IntVar(&o.RedisPort, "redis-port", 63799, "port of the local Redis (when REDIS_URL is unset)")
		fs.SetOutput(stderr)
		if err := fs.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
			return nil // the flags were printed
		} else if err != nil {
			return err
		}
		return devstack.Run(ctx, getenv, stdout, logger, o)
	case "migrate":
		fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
		url, mode, err := config.Database(getenv)
		if err != nil {
			return err
		}
		fs.StringVar(&mode, "mode", mode, "time-series mode for a new database: auto, timescale or postgres")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		pool, err := openTool(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		res, err := migratefn.Migrate(ctx, pool, mode, clock.System{}.Now(), logger)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "schema version %d, time-series mode %s, %d migration(s) applied\nmode: %s\n", res.Version, res.Mode, len(res.Applied), res.ModeReason)
		if res.Backfilled {
			fmt.Fprintln(stdout, "initial aggregate refresh done")
		}
		return nil
	case "seed":
		cfg, err := config.Load(getenv)
		if err != nil {
			return err
		}
		pool, err := openTool(ctx, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer pool.Close()
		res, err := seed.Run(ctx, pool, cfg.DefaultAdminPassword, true, clock.System{}.Now())
		if err != nil {
			return err
		}
		if res.GeneratedPassword != "" {
			fmt.Fprintf(stdout, "platform admin %s created, password (shown once): %s\n", seed.AdminEmail, res.GeneratedPassword)
		} else if res.AdminCreated {
			fmt.Fprintf(stdout, "platform admin %s created with DEFAULT_ADMIN_PASSWORD\n", seed.AdminEmail)
		}
		fmt.Fprintf(stdout, "demo client %s\n", res.DemoClientID)
		return nil
	case "agentsim":
		return runAgentsim(ctx, args[1:], getenv, stdout, stderr)
	case "job":
		return runJob(ctx, args[1:], getenv, stdout, stderr, logger)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// openTool connects for a one-shot command.
func openTool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := db.Config(url, db.ToolProfile())
	if err != nil {
		return nil, err
	}
	return db.Open(ctx, cfg)
}
