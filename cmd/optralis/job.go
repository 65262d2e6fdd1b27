package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/monolith"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/routes"
)

const jobUsage = `usage: optralis job run <name> [--now <RFC3339 time>]
       optralis job list

Runs one job of the schedule once, as the local stack and the Lambda run it, against
DATABASE_URL (REDIS_URL when set). --now is the instant the job runs at (default: now).
`

// runJob is `optralis job`: list the jobs, or run one once.
func runJob(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, logger *slog.Logger) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, jobUsage)
		return errors.New("job: run or list?")
	}
	switch args[0] {
	case "list":
		for _, j := range routes.Jobs() {
			expr, _ := j.Cadence.Expression()
			fmt.Fprintf(stdout, "%-12s function %-12s %s\n", j.Name, j.Function, expr)
		}
		return nil
	case "run":
	default:
		fmt.Fprint(stderr, jobUsage)
		return fmt.Errorf("job: unknown subcommand %q (run or list)", args[0])
	}
	// The job's name may come before or after the flags.
	fs := flag.NewFlagSet("job run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nowFlag := fs.String("now", "", "the instant the job runs at, RFC 3339 (default: now)")
	rest := args[1:]
	var name string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("job run: unexpected argument %q", fs.Arg(0))
	}
	if name == "" {
		fmt.Fprint(stderr, jobUsage)
		return fmt.Errorf("job run: which job? one of %s", strings.Join(jobNames(), ", "))
	}
	if _, ok := jobNamed(name); !ok {
		return fmt.Errorf("job run: unknown job %q; the jobs are %s", name, strings.Join(jobNames(), ", "))
	}
	now := time.Now().UTC()
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			return fmt.Errorf("job run: --now %q is not an RFC 3339 time (e.g. 2026-11-24T10:00:00Z)", *nowFlag)
		}
		now = t.UTC()
	}

	url, _, err := config.Database(getenv)
	if err != nil {
		return err
	}
	redisURL, err := config.Cache(getenv)
	if err != nil {
		return err
	}
	core, err := app.OpenCore(ctx, url, redisURL, nil, db.ToolProfile(), logger)
	if err != nil {
		return err
	}
	defer core.Close()
	services, err := monolith.JobServices(getenv, nil, logger)
	if err != nil {
		return err
	}
	jobs, err := monolith.Jobs(core, services)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if j.Name != name {
			continue
		}
		start := time.Now()
		if err := j.Run(ctx, now); err != nil {
			return fmt.Errorf("job %s: %w", name, err)
		}
		fmt.Fprintf(stdout, "job %s ran at %s in %s\n", name, now.Format(time.RFC3339), time.Since(start).Round(time.Millisecond))
		return nil
	}
	return fmt.Errorf("job run: job %q has no runner", name)
}

func jobNames() []string {
	var names []string
	for _, j := range routes.Jobs() {
		names = append(names, j.Name)
	}
	return names
}

func jobNamed(name string) (routes.Job, bool) {
	for _, j := range routes.Jobs() {
		if j.Name == name {
			return j, true
		}
	}
	return routes.Job{}, false
}
