package app_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/adminfn"
	"github.com/optralis/optralis/internal/app/alertsfn"
	"github.com/optralis/optralis/internal/app/authfn"
	"github.com/optralis/optralis/internal/app/bootstrapfn"
	"github.com/optralis/optralis/internal/app/certexpiryfn"
	"github.com/optralis/optralis/internal/app/cleanupfn"
	"github.com/optralis/optralis/internal/app/driftfn"
	"github.com/optralis/optralis/internal/app/heartbeatfn"
	"github.com/optralis/optralis/internal/app/migratefn"
	"github.com/optralis/optralis/internal/app/remindersfn"
	"github.com/optralis/optralis/internal/app/renewfn"
	"github.com/optralis/optralis/internal/app/statusfn"
	"github.com/optralis/optralis/internal/app/uptimefn"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv"
)

type opener func(context.Context, func(string) string, io.Writer) (app.Function, error)

// Each function's cold start reads only its own configuration: a function that verifies
// no token starts without JWT_SECRET, one that does refuses to start without it, and every
// one serves its routes or runs its job on a real database and cache.
func TestFunctionsOpenWithTheirOwnConfiguration(t *testing.T) {
	t.Parallel()
	dbURL := testenv.NewDB(t, migrate.ModePostgres).Config().ConnString()
	base := map[string]string{"DATABASE_URL": dbURL, "REDIS_URL": testenv.RedisURL(t)}
	env := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return base[k]
		}
	}
	withJWT := env(map[string]string{"JWT_SECRET": strings.Repeat("j", 32)})
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		open     opener
		needsJWT bool
		path     string // an HTTP route to call, or "" for a job
		status   int
	}{
		{"status", statusfn.Open, false, "/status", 200},
		{"heartbeat", heartbeatfn.Open, false, "/agent/config/collectors", 401}, // no client certificate
		{"renew", renewfn.Open, false, "/agent/certificate/renew", 405},         // POST only
		{"bootstrap", bootstrapfn.Open, false, "/agent/requirements", 200},
		{"auth", authfn.Open, true, "/api/auth/me", 401},
		{"admin", adminfn.Open, true, "/api/install-tokens", 401},
		{"uptime", uptimefn.Open, false, "", 0},
		{"cleanup", cleanupfn.Open, false, "", 0},
		{"drift", driftfn.Open, false, "", 0},
		{"reminders", remindersfn.Open, false, "", 0},
		{"certexpiry", certexpiryfn.Open, false, "", 0},
		{"alerts", alertsfn.Open, false, "", 0},
	} {
		getenv := env(nil)
		if c.needsJWT {
			if _, err := c.open(ctx, getenv, io.Discard); err == nil || !strings.Contains(err.Error(), "JWT_SECRET") {
				t.Errorf("%s without JWT_SECRET: %v, want a refusal naming it", c.name, err)
			}
			getenv = withJWT
		}
		f, err := c.open(ctx, getenv, io.Discard)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if c.path != "" {
			w := httptest.NewRecorder()
			f.Handler.ServeHTTP(w, httptest.NewRequest("GET", c.path, nil))
			if w.Code != c.status {
				t.Errorf("%s GET %s: %d %s, want %d", c.name, c.path, w.Code, w.Body.String(), c.status)
			}
		} else if err := f.Job(ctx, time.Now().UTC()); err != nil {
			t.Errorf("%s job: %v", c.name, err)
		}
		f.Close()
		if _, err := c.open(ctx, func(string) string { return "" }, io.Discard); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
			t.Errorf("%s without DATABASE_URL: %v", c.name, err)
		}
	}
	// The uptime function reads the AI provider's health URL, and names it when invalid.
	if _, err := uptimefn.Open(ctx, env(map[string]string{"AI_HEALTH_URL": "not-a-url"}), io.Discard); err == nil || !strings.Contains(err.Error(), "AI_HEALTH_URL") {
		t.Errorf("uptime with an invalid AI_HEALTH_URL: %v", err)
	}
	// migrate needs DATABASE_URL only.
	if _, err := migratefn.Open(ctx, func(string) string { return "" }, io.Discard, clock.System{}); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("migrate without DATABASE_URL: %v", err)
	}
	h, err := migratefn.Open(ctx, env(nil), io.Discard, clock.System{})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := h(ctx, nil); err != nil || len(res.Applied) != 0 {
		t.Errorf("migrate on a migrated database: %+v %v", res, err)
	}
}
