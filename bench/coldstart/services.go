package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// services is what the functions connect to during the benchmark.
type services struct {
	DatabaseURL string // the migrated throwaway database, "" when the server is unreachable
	Database    string // how it was set up, for the report
	RedisURL    string // "" when unreachable or disabled
	Redis       string
	JWTSecret   string
}

// setupServices creates and migrates a throwaway database (cleanup drops it) and checks
// that Redis answers. An unreachable server is reported, not fatal: the functions then
// fail their init, which the report shows.
func setupServices(ctx context.Context) (services, func(), error) {
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	svc := services{JWTSecret: hex.EncodeToString(secret)} // 48 characters

	svc.RedisURL = envOr("COLDSTART_REDIS_URL", defaultRedisURL)
	switch err := pingRedis(svc.RedisURL); {
	case svc.RedisURL == "none":
		svc.RedisURL, svc.Redis = "", "none (COLDSTART_REDIS_URL=none): functions run without the cache"
	case err != nil:
		logf("redis: %v; the functions run without the cache", err)
		svc.Redis = fmt.Sprintf("unreachable (%v): functions ran without the cache", err)
		svc.RedisURL = ""
	default:
		svc.Redis = redact(svc.RedisURL)
	}

	admin := envOr("COLDSTART_DATABASE_URL", defaultDatabaseURL)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		logf("postgres %s: %v", redact(admin), err)
		svc.DatabaseURL, svc.Database = admin, fmt.Sprintf("unreachable at %s (%v)", redact(admin), err)
		return svc, nil, nil
	}
	name := "coldstart_" + hex.EncodeToString(secret[:4])
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	conn.Close(ctx)
	if err != nil {
		return svc, nil, fmt.Errorf("create database %s: %w", name, err)
	}
	logf("database %s created", name)
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err == nil {
			_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(ctx)
		}
		if err != nil {
			logf("drop database %s: %v (drop it by hand)", name, err)
			return
		}
		logf("database %s dropped", name)
	}
	u, err := neturl.Parse(admin)
	if err != nil {
		return svc, drop, err
	}
	u.Path = "/" + name
	svc.DatabaseURL = u.String()

	logf("migrating %s (go run ./cmd/optralis migrate)", name)
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/optralis", "migrate")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+svc.DatabaseURL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return svc, drop, fmt.Errorf("migrate %s: %v\n%s", name, err, out)
	}
	svc.Database = fmt.Sprintf("throwaway database `%s` on %s, migrated with `go run ./cmd/optralis migrate`, dropped after the run", name, redact(admin))
	if mode := migratedMode(out); mode != "" {
		svc.Database += " (" + mode + ")"
	}
	return svc, drop, nil
}

// functionEnv is the environment of the emulator, which passes it on to the function. It is
// built from scratch so that nothing from the caller's shell (GODEBUG, AWS_*) leaks in.
func functionEnv(svc services) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.TempDir(),
		"TZ=UTC",
		"LOG_LEVEL=info", // the emulator's: INIT REPORT and RTDONE lines are info
		"AWS_REGION=eu-west-1",
		"AWS_DEFAULT_REGION=eu-west-1",
		"DATABASE_URL=" + svc.DatabaseURL,
		"REDIS_URL=" + svc.RedisURL,
		"JWT_SECRET=" + svc.JWTSecret,
	}
	for _, kv := range os.Environ() {
		if rest, ok := strings.CutPrefix(kv, "COLDSTART_ENV_"); ok {
			env = append(env, rest)
		}
	}
	return env
}

func pingRedis(url string) error {
	if url == "none" {
		return nil
	}
	u, err := neturl.Parse(url)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return fmt.Errorf("COLDSTART_REDIS_URL %q is not a redis:// URL", redact(url))
	}
	if u.Scheme == "rediss" {
		return nil // TLS: leave the check to the functions
	}
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if pw, ok := u.User.Password(); ok {
		fmt.Fprintf(c, "AUTH %s\r\n", pw)
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			return err
		}
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func migratedMode(out []byte) string {
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "mode=") {
			return strings.Trim(f, `",`)
		}
	}
	return ""
}

func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

// redact drops a URL's password.
func redact(s string) string {
	u, err := neturl.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
