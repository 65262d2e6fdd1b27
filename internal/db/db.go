// Package db is the storage toolkit: the connection pool sized for where the code runs,
// the one Querier interface, transactions with one instant (InTx, Tx.Now), and the one
// mapping from SQLSTATEs and no-rows to apperr errors (Error).
package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// StatementTimeout bounds every query (spec "Statement Timeout: 30s max par query").
const StatementTimeout = 30 * time.Second

// Profile sizes the pool for one kind of process.
type Profile struct {
	MaxConns        int32
	MinIdleConns    int32
	MaxConnLifetime time.Duration
	MaxConnIdleTime time.Duration
}

// ServerProfile is the long-running local server: the spec's 25 max / 10 idle / 5 min lifetime.
func ServerProfile() Profile {
	return Profile{MaxConns: 25, MinIdleConns: 10, MaxConnLifetime: 5 * time.Minute, MaxConnIdleTime: 5 * time.Minute}
}

// LambdaProfile is one function instance: it serves one request at a time, and a dashboard
// request runs at most 4 queries in parallel. One idle connection is kept so a warm instance
// skips the TLS and auth handshake; the lifetime recycles connections before the database's
// idle timeouts would cut them.
func LambdaProfile() Profile {
	return Profile{MaxConns: 4, MinIdleConns: 1, MaxConnLifetime: 5 * time.Minute, MaxConnIdleTime: 2 * time.Minute}
}

// ToolProfile is a one-shot command (migrate, seed).
func ToolProfile() Profile {
	return Profile{MaxConns: 2, MaxConnLifetime: time.Hour, MaxConnIdleTime: time.Minute}
}

// Config parses url and applies the profile and the statement timeout.
func Config(url string, p Profile) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message can echo the URL, password included: keep it out.
		return nil, fmt.Errorf("DATABASE_URL cannot be parsed as a PostgreSQL connection string")
	}
	cfg.MaxConns = p.MaxConns
	cfg.MinIdleConns = p.MinIdleConns
	cfg.MaxConnLifetime = p.MaxConnLifetime
	cfg.MaxConnIdleTime = p.MaxConnIdleTime
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(StatementTimeout.Milliseconds())
	cfg.ConnConfig.RuntimeParams["application_name"] = "optralis"
	return cfg, nil
}

// Open connects with cfg and checks the database answers.
func Open(ctx context.Context, cfg *pgxpool.Config) (*pgxpool.Pool, error) {
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database unreachable at %s: %w", cfg.ConnConfig.Host, err)
	}
	return pool, nil
}
