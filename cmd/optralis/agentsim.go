package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/optralis/optralis/internal/agentsim"
	"github.com/optralis/optralis/internal/config"
)

// runAgentsim is `optralis agentsim`: enrol -machines agents with an install token (made in
// the database at DATABASE_URL unless -token is given), then send heartbeats.
func runAgentsim(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("agentsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := agentsim.Options{Progress: stderr}
	var token, clientID string
	fs.StringVar(&o.APIURL, "api", "http://127.0.0.1:3000", "public API URL (bootstrap)")
	fs.StringVar(&o.AgentURL, "agent", "https://127.0.0.1:8443", "mutual-TLS agent endpoint")
	fs.IntVar(&o.Machines, "machines", 10, "machines to enrol")
	fs.Float64Var(&o.Rate, "rate", 0, "total heartbeats per second (0: each machine at its dynamic interval)")
	fs.DurationVar(&o.Duration, "duration", time.Minute, "how long to send heartbeats")
	fs.IntVar(&o.Workers, "workers", 64, "concurrent senders at a fixed rate")
	fs.BoolVar(&o.Gzip, "gzip", true, "gzip heartbeat bodies")
	fs.StringVar(&token, "token", "", "install token (default: create one, and a client, in DATABASE_URL)")
	fs.StringVar(&clientID, "client", "", "client for the created token (default: a new Enterprise client)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Machines <= 0 {
		return errors.New("agentsim: -machines must be positive")
	}
	if token == "" {
		url, _, err := config.Database(getenv)
		if err != nil {
			return fmt.Errorf("agentsim: -token or DATABASE_URL is needed: %w", err)
		}
		pool, err := openTool(ctx, url)
		if err != nil {
			return err
		}
		clientID, token, err = agentsim.CreateToken(ctx, pool, clientID, o.Machines)
		pool.Close()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "client %s, install token created (max %d uses)\n", clientID, o.Machines)
	}
	start := time.Now()
	machines, err := agentsim.Enrol(ctx, o, token, o.Machines)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "enrolled %d machines in %s\n", len(machines), time.Since(start).Round(time.Millisecond))
	sum := agentsim.Run(ctx, o, machines)
	fmt.Fprintln(stdout, sum)
	return nil
}
