// Package config reads the service's environment once, at start-up, into a typed struct.
package config

import (
	"errors"
	"fmt"
	neturl "net/url"
	"strconv"
	"strings"
)

// MinJWTSecretLen is the spec's minimum ("min 32 caractères, pas de fallback").
const MinJWTSecretLen = 32

// Config is everything the functions and the local server read from the environment.
type Config struct {
	LicenceGraceDays     int // LICENSE_GRACE_DAYS: agents of an expired licence are served this long
	DatabaseURL          string
	JWTSecret            []byte
	CORSAllowedOrigins   []string // empty: no cross-origin access
	Port                 int
	DefaultAdminPassword string // empty: the seed generates one and prints it once
	RedisURL             string // empty: run without the cache
	SMTP                 SMTP
	SES                  SES    // mail through the SES API (SES_FROM); empty: SMTP
	DashboardURL         string // links in mails (DASHBOARD_URL, default the first CORS origin)
	// TimeseriesMode is what `migrate` asks for: auto, timescale or postgres.
	TimeseriesMode string
	// Dev marks the local stack: cookies without Secure, permissive defaults.
	Dev bool
	// Enrolment: URLs, the machine CA and options of machine enrolment (enrolment.go).
	Enrolment Enrolment
	// AI is the optional AI provider of drift explanations (ai.go).
	AI AI
	// Ingest: group commit and the per-machine limit of heartbeats (ingest.go).
	Ingest Ingest
}

// SMTP is the outgoing mail server; Host empty means mail is disabled.
type SMTP struct {
	Host string
	Port int
	User string
	Pass string
	From string
}

// Enabled reports whether mail can be sent.
func (s SMTP) Enabled() bool { return s.Host != "" }

// Load reads the whole configuration through getenv (os.Getenv in production, a map in
// tests): what the local stack and the CLI need. A deployed function reads only its own
// parts (Database, Cache, CORS, JWT, LoadSMTP, LoadEnrolment), so a function that verifies
// no token does not require JWT_SECRET. Any missing or invalid value fails with one line
// naming the variable.
func Load(getenv func(string) string) (Config, error) {
	c := Config{DefaultAdminPassword: getenv("DEFAULT_ADMIN_PASSWORD"), Port: 3000}
	var err error
	if c.DatabaseURL, c.TimeseriesMode, err = Database(getenv); err != nil {
		return Config{}, err
	}
	if c.JWTSecret, err = JWT(getenv); err != nil {
		return Config{}, err
	}
	if c.Port, err = port("PORT", getenv("PORT"), c.Port); err != nil {
		return Config{}, err
	}
	if c.SMTP, err = LoadSMTP(getenv); err != nil {
		return Config{}, err
	}
	if c.RedisURL, err = Cache(getenv); err != nil {
		return Config{}, err
	}
	if c.CORSAllowedOrigins, err = CORS(getenv); err != nil {
		return Config{}, err
	}
	if c.DashboardURL, err = Dashboard(getenv, c.CORSAllowedOrigins); err != nil {
		return Config{}, err
	}
	if c.LicenceGraceDays, err = LicenceGraceDays(getenv); err != nil {
		return Config{}, err
	}
	if c.SES, err = LoadSES(getenv); err != nil {
		return Config{}, err
	}
	if c.Enrolment, err = LoadEnrolment(getenv); err != nil {
		return Config{}, err
	}
	if c.AI, err = LoadAI(getenv); err != nil {
		return Config{}, err
	}
	if c.Ingest, err = LoadIngest(getenv); err != nil {
		return Config{}, err
	}
	return c, nil
}

// JWT reads JWT_SECRET: required, at least MinJWTSecretLen characters, no default.
func JWT(getenv func(string) string) ([]byte, error) {
	secret := getenv("JWT_SECRET")
	switch {
	case secret == "":
		return nil, errors.New("JWT_SECRET is required (at least 32 characters); there is no default")
	case len(secret) < MinJWTSecretLen:
		return nil, fmt.Errorf("JWT_SECRET is too short: %d characters, at least %d are required", len(secret), MinJWTSecretLen)
	}
	return []byte(secret), nil
}

// LoadSMTP reads the outgoing mail server (SMTP_*); no SMTP_HOST means mail is disabled.
func LoadSMTP(getenv func(string) string) (SMTP, error) {
	s := SMTP{
		Host: strings.TrimSpace(getenv("SMTP_HOST")),
		Port: 587,
		User: getenv("SMTP_USER"),
		Pass: getenv("SMTP_PASS"),
		From: strings.TrimSpace(getenv("SMTP_FROM")),
	}
	var err error
	if s.Port, err = port("SMTP_PORT", getenv("SMTP_PORT"), s.Port); err != nil {
		return SMTP{}, err
	}
	if s.Host != "" && s.From == "" {
		return SMTP{}, errors.New("SMTP_FROM is required when SMTP_HOST is set")
	}
	return s, nil
}

// Cache reads REDIS_URL; empty means run without the cache.
func Cache(getenv func(string) string) (string, error) {
	url := strings.TrimSpace(getenv("REDIS_URL"))
	if url != "" {
		if u, err := neturl.Parse(url); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			return "", errors.New("REDIS_URL must be a redis:// or rediss:// URL")
		}
	}
	return url, nil
}

// CORS reads CORS_ALLOWED_ORIGINS, the dashboard origins allowed to call the API.
func CORS(getenv func(string) string) ([]string, error) {
	return origins(getenv("CORS_ALLOWED_ORIGINS"))
}

func port(name, v string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%s must be a port number between 1 and 65535, not %q", name, v)
	}
	return p, nil
}

// origins parses a comma-separated whitelist. "*" is accepted only alone (the spec's dev default).
func origins(v string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(v, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o != "*" {
			u, err := neturl.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
				return nil, fmt.Errorf("CORS_ALLOWED_ORIGINS: %q is not an origin like https://dashboard.example.com", o)
			}
			o = strings.TrimSuffix(o, "/")
		}
		out = append(out, o)
	}
	if len(out) > 1 {
		for _, o := range out {
			if o == "*" {
				return nil, errors.New("CORS_ALLOWED_ORIGINS: \"*\" cannot be combined with other origins")
			}
		}
	}
	return out, nil
}

// Database reads only what migrating needs (DATABASE_URL, TIMESERIES_MODE), so the migrate
// command and function do not require the API's secrets.
func Database(getenv func(string) string) (url, mode string, err error) {
	url = strings.TrimSpace(getenv("DATABASE_URL"))
	if url == "" {
		return "", "", errors.New("DATABASE_URL is required (a PostgreSQL connection string); there is no default")
	}
	if u, err := neturl.Parse(url); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", "", errors.New("DATABASE_URL must be a postgres:// or postgresql:// URL")
	}
	mode = "auto"
	if m := strings.TrimSpace(getenv("TIMESERIES_MODE")); m != "" {
		if m != "auto" && m != "timescale" && m != "postgres" {
			return "", "", fmt.Errorf("TIMESERIES_MODE must be auto, timescale or postgres, not %q", m)
		}
		mode = m
	}
	return url, mode, nil
}
