package config

import (
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func valid() map[string]string {
	return map[string]string{
		"DATABASE_URL": "postgres://u@localhost/db",
		"JWT_SECRET":   strings.Repeat("s", 32),
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(valid()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 3000 || c.SMTP.Port != 587 || c.TimeseriesMode != "auto" || c.RedisURL != "" || c.SMTP.Enabled() {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if len(c.CORSAllowedOrigins) != 0 {
		t.Fatalf("CORS must default to no origin, got %v", c.CORSAllowedOrigins)
	}
}

func TestLoadRefusals(t *testing.T) {
	cases := []struct {
		name, key, value, want string
	}{
		{"missing database", "DATABASE_URL", "", "DATABASE_URL is required"},
		{"database not a URL", "DATABASE_URL", "host=localhost", "DATABASE_URL must be"},
		{"missing secret", "JWT_SECRET", "", "JWT_SECRET is required"},
		{"short secret", "JWT_SECRET", strings.Repeat("x", 31), "JWT_SECRET is too short: 31"},
		{"bad port", "PORT", "70000", "PORT must be"},
		{"port not a number", "PORT", "abc", "PORT must be"},
		{"bad smtp port", "SMTP_PORT", "-1", "SMTP_PORT must be"},
		{"smtp without from", "SMTP_HOST", "mail.example.com", "SMTP_FROM is required"},
		{"bad redis", "REDIS_URL", "localhost:6379", "REDIS_URL must be"},
		{"bad origin", "CORS_ALLOWED_ORIGINS", "dashboard.example.com", "CORS_ALLOWED_ORIGINS"},
		{"origin with path", "CORS_ALLOWED_ORIGINS", "https://a.example.com/app", "CORS_ALLOWED_ORIGINS"},
		{"wildcard mixed", "CORS_ALLOWED_ORIGINS", "*,https://a.example.com", "cannot be combined"},
		{"bad mode", "TIMESERIES_MODE", "influx", "TIMESERIES_MODE must be"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := valid()
			m[tc.key] = tc.value
			_, err := Load(env(m))
			if err == nil {
				t.Fatalf("accepted %s=%q", tc.key, tc.value)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadValues(t *testing.T) {
	m := valid()
	m["PORT"] = "8080"
	m["CORS_ALLOWED_ORIGINS"] = " https://dash.example.com/ , http://localhost:3001"
	m["REDIS_URL"] = "redis://127.0.0.1:6379/0"
	m["SMTP_HOST"] = "mail.example.com"
	m["SMTP_FROM"] = "noreply@example.com"
	m["TIMESERIES_MODE"] = "postgres"
	c, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.TimeseriesMode != "postgres" || !c.SMTP.Enabled() || string(c.JWTSecret) != m["JWT_SECRET"] {
		t.Fatalf("values not read: %+v", c)
	}
	if got := strings.Join(c.CORSAllowedOrigins, "|"); got != "https://dash.example.com|http://localhost:3001" {
		t.Fatalf("origins = %q", got)
	}
}

func TestAIHealthURL(t *testing.T) {
	for _, c := range []struct {
		env     map[string]string
		want    string
		wantErr string
	}{
		{map[string]string{}, "", ""},
		{map[string]string{"AI_API_URL": "https://ai.example.com/"}, "https://ai.example.com/health", ""},
		{map[string]string{"AI_API_URL": "https://ai.example.com/v1"}, "https://ai.example.com/v1/health", ""},
		{map[string]string{"AI_API_URL": "https://api.example.com", "AI_HEALTH_URL": "http://127.0.0.1:9/status"}, "http://127.0.0.1:9/status", ""},
		{map[string]string{"AI_HEALTH_URL": "ftp://x"}, "", "AI_HEALTH_URL"},
		{map[string]string{"AI_API_URL": "not a url"}, "", "AI_API_URL"},
	} {
		got, err := AIHealthURL(env(c.env))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%v: error %v, want one naming %s", c.env, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%v: %q %v, want %q", c.env, got, err, c.want)
		}
	}
}

func TestNotifyAllowInsecureURLs(t *testing.T) {
	for v, want := range map[string]bool{"": false, "false": false, "true": true, "1": true, " TRUE ": true} {
		got, err := NotifyAllowInsecureURLs(env(map[string]string{"NOTIFY_ALLOW_INSECURE_URLS": v}))
		if err != nil || got != want {
			t.Errorf("%q: %v %v", v, got, err)
		}
	}
	if _, err := NotifyAllowInsecureURLs(env(map[string]string{"NOTIFY_ALLOW_INSECURE_URLS": "yes please"})); err == nil ||
		!strings.Contains(err.Error(), "NOTIFY_ALLOW_INSECURE_URLS") {
		t.Fatalf("refusal: %v", err)
	}
}
