// Command withservices runs a command (normally `go test ./...`) with TEST_DATABASE_URL and
// TEST_REDIS_URL pointing at servers: the ones already set in the environment, or throwaway
// servers it starts and stops around the command. `make test` uses it so that every test
// binary shares one pair of servers instead of starting its own.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/optralis/optralis/internal/localsvc"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: withservices command [args...]")
		os.Exit(2)
	}
	code, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "withservices:", err)
	}
	os.Exit(code)
}

func run(argv []string) (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, "withservices: "+f+"\n", a...) }

	if os.Getenv("TEST_DATABASE_URL") == "" {
		if err := localsvc.EnsurePostgresInstalled(ctx, logf); err != nil {
			return 1, err
		}
		dir, err := os.MkdirTemp("", "optralis-test-")
		if err != nil {
			return 1, err
		}
		defer os.RemoveAll(dir)
		pg, err := localsvc.StartPostgres(ctx, dir+"/pgdata", 0, true)
		if err != nil {
			return 1, err
		}
		defer pg.Stop()
		os.Setenv("TEST_DATABASE_URL", pg.URL("postgres"))
		logf("throwaway PostgreSQL on port %d", pg.Port)
	}
	if os.Getenv("TEST_REDIS_URL") == "" {
		if err := localsvc.EnsureRedisInstalled(ctx); err != nil {
			return 1, err
		}
		r, err := localsvc.StartRedis(ctx, 0)
		if err != nil {
			return 1, err
		}
		defer r.Stop()
		os.Setenv("TEST_REDIS_URL", r.URL())
		logf("throwaway Redis on port %d", r.Port)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), nil
		}
		return 1, err
	}
	return 0, nil
}
