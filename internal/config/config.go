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
	DatabaseURL          string
	JWTSecret            []byte
	CORSAllowedOrigins   []string // empty: no cross-origin access
	Port                 int
	DefaultAdminPassword string // empty: the seed generates one and prints it once
	RedisURL             string // empty: run without the cache
	SMTP                 SMTP
	// TimeseriesMode is what `migrate` asks for: auto, timescale or postgres.
	TimeseriesMode string
	// Dev marks the local stack: cookies without Secure, permissive defaults.
	Dev bool
	// Enrolment: URLs, the machine CA and options of machine enrolment (enrolment.go).
	Enrolment Enrolment
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

// Load reads the configuration through getenv (os.Getenv in production, a map in tests).
// Any missing or invalid value fails with one line naming the variable.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		DefaultAdminPassword: getenv("DEFAULT_ADMIN_PASSWORD"),
		RedisURL:             strings.TrimSpace(getenv("REDIS_URL")),
		Port:                 3000,
		SMTP: SMTP{
			Host: strings.TrimSpace(getenv("SMTP_HOST")),
			Port: 587,
			User: getenv("SMTP_USER"),
			Pass: getenv("SMTP_PASS"),
			From: strings.TrimSpace(getenv("SMTP_FROM")),
		},
	}
	var err error
	if c.DatabaseURL, c.TimeseriesMode, err = Database(getenv); err != nil {
		return Config{}, err
	}
	secret := getenv("JWT_SECRET")
	switch {
	case secret == "":
		return Config{}, errors.New("JWT_SECRET is required (at least 32 characters); there is no default")
	case len(secret) < MinJWTSecretLen:
		return Config{}, fmt.Errorf("JWT_SECRET is too short: %d characters, at least %d are required", len(secret), MinJWTSecretLen)
	}
	c.JWTSecret = []byte(secret)

	if c.Port, err = port("PORT", getenv("PORT"), c.Port); err != nil {
		return Config{}, err
	}
	if c.SMTP.Port, err = port("SMTP_PORT", getenv("SMTP_PORT"), c.SMTP.Port); err != nil {
		return Config{}, err
	}
	if c.SMTP.Host != "" && c.SMTP.From == "" {
		return Config{}, errors.New("SMTP_FROM is required when SMTP_HOST is set")
	}
	if c.RedisURL != "" {
		if u, err := neturl.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			return Config{}, errors.New("REDIS_URL must be a redis:// or rediss:// URL")
		}
	}
	if c.CORSAllowedOrigins, err = origins(getenv("CORS_ALLOWED_ORIGINS")); err != nil {
		return Config{}, err
	}
	if c.Enrolment, err = loadEnrolment(getenv); err != nil {
		return Config{}, err
	}
	return c, nil
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
