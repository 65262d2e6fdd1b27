package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/localsvc"
)

// services are the PostgreSQL database and the Redis server the benchmark runs against.
type services struct {
	AdminURL    string // the server's maintenance database
	DatabaseURL string // the benchmark's database
	Database    string // its name
	RedisURL    string
	Describe    []string // how each was obtained, for the report
	Reused      bool     // -reuse: the database was seeded by an earlier run
	stops       []func()
}

// Close drops the throwaway database (unless kept) and stops the servers this run started.
func (s *services) Close() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
}

// setupServices uses DATABASE_URL / REDIS_URL when set, otherwise starts throwaway
// servers as `go run ./internal/testenv/withservices` does (initdb --nosync in a
// temporary directory, run as the postgres user when root; redis-server --save ”).
func setupServices(ctx context.Context, o options) (*services, error) {
	s := &services{}
	if u := strings.TrimSpace(os.Getenv("DATABASE_URL")); u != "" {
		s.AdminURL = u
		s.Describe = append(s.Describe, "PostgreSQL: DATABASE_URL ("+redact(u)+")")
	} else {
		if err := localsvc.EnsurePostgresInstalled(ctx, logf); err != nil {
			return s, err
		}
		dir, err := os.MkdirTemp("", "optralis-bench-dashboard-")
		if err != nil {
			return s, err
		}
		pg, err := localsvc.StartPostgres(ctx, filepath.Join(dir, "pgdata"), 0, true)
		if err != nil {
			os.RemoveAll(dir)
			return s, err
		}
		s.stops = append(s.stops, func() { _ = pg.Stop(); os.RemoveAll(dir) })
		s.AdminURL = pg.URL("postgres")
		s.Describe = append(s.Describe, fmt.Sprintf("PostgreSQL: throwaway server on port %d (initdb --nosync, fsync=off: durability traded for speed; reads are unaffected)", pg.Port))
		o.keep = false // the server goes away with the run
	}
	if u := strings.TrimSpace(os.Getenv("REDIS_URL")); u != "" {
		s.RedisURL = u
		s.Describe = append(s.Describe, "Redis: REDIS_URL ("+redact(u)+"); keys namespaced by a per-run prefix")
	} else {
		if err := localsvc.EnsureRedisInstalled(ctx); err != nil {
			return s, err
		}
		r, err := localsvc.StartRedis(ctx, 0)
		if err != nil {
			return s, err
		}
		s.stops = append(s.stops, r.Stop)
		s.RedisURL = r.URL()
		s.Describe = append(s.Describe, fmt.Sprintf("Redis: throwaway server on port %d (redis-server --save '')", r.Port))
	}

	if o.reuse != "" {
		s.Database, s.Reused = o.reuse, true
		s.DatabaseURL = withDatabase(s.AdminURL, o.reuse)
		s.Describe = append(s.Describe, "Database: `"+o.reuse+"`, seeded by an earlier run (-reuse)")
		return s, nil
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	s.Database = "bench_dashboard_" + hex.EncodeToString(b)
	conn, err := pgx.Connect(ctx, s.AdminURL)
	if err != nil {
		return s, fmt.Errorf("postgres %s: %w", redact(s.AdminURL), err)
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+s.Database)
	conn.Close(ctx)
	if err != nil {
		return s, fmt.Errorf("create database %s: %w", s.Database, err)
	}
	s.DatabaseURL = withDatabase(s.AdminURL, s.Database)
	if o.keep {
		s.Describe = append(s.Describe, "Database: `"+s.Database+"`, kept after the run (-keep)")
	} else {
		s.Describe = append(s.Describe, "Database: `"+s.Database+"`, created for the run and dropped after it")
		admin, name := s.AdminURL, s.Database
		s.stops = append(s.stops, func() { dropDatabase(admin, name) })
	}
	return s, nil
}

func dropDatabase(admin, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err == nil {
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		conn.Close(ctx)
	}
	if err != nil {
		logf("drop database %s: %v (drop it by hand)", name, err)
	}
}

func withDatabase(raw, name string) string {
	u, err := neturl.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + name
	return u.String()
}

// redact drops a URL's password.
func redact(s string) string {
	u, err := neturl.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
