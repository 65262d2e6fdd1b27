package routes

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The spec's cadences ("Système de Cleanup", "Service Uptime Tracking", "Rappels
// Expiration Licence": daily at 9h UTC): the one place a test states them; infra and the
// local stack derive theirs from Jobs().
func TestJobCadencesAreTheSpecs(t *testing.T) {
	spec := map[string]string{"cleanup": "rate(1 hour)", "uptime": "rate(30 minutes)", "drift": "rate(1 hour)", "reminders": "cron(0 9 * * ? *)",
		"alerts": "rate(1 minute)", // issue 13: "EventBridge rate(1 minute)"

		"certexpiry": "cron(0 6 * * ? *)"} // daily (issue 12); 06:00 UTC, before the working day in Europe
	for _, j := range Jobs() {
		expr, err := j.Cadence.Expression()
		if err != nil || expr != spec[j.Name] {
			t.Errorf("%s: %q %v, the spec says %q", j.Name, expr, err, spec[j.Name])
		}
	}
	if len(Jobs()) != len(spec) {
		t.Errorf("%d jobs, %d in the spec map: add the new job's cadence here", len(Jobs()), len(spec))
	}
}

func TestCadence(t *testing.T) {
	for _, c := range []struct {
		c    Cadence
		want string
	}{
		{EveryDuration(time.Minute), "rate(1 minute)"},
		{EveryDuration(5 * time.Minute), "rate(5 minutes)"},
		{EveryDuration(2 * time.Hour), "rate(2 hours)"},
		{EveryDuration(24 * time.Hour), "rate(1 day)"},
		{Daily(9, 0), "cron(0 9 * * ? *)"},
		{Daily(23, 45), "cron(45 23 * * ? *)"},
	} {
		if got, err := c.c.Expression(); err != nil || got != c.want {
			t.Errorf("%+v: %q %v, want %q", c.c, got, err, c.want)
		}
	}
	for _, bad := range []Cadence{{Every: 30 * time.Second}, {Every: 90 * time.Second}, {}} {
		if got, err := bad.Expression(); err == nil {
			t.Errorf("%+v: %q, want an error", bad, got)
		}
	}
	now := time.Date(2026, 12, 1, 8, 59, 0, 0, time.UTC)
	if got := Daily(9, 0).Next(now); !got.Equal(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("daily next before the time: %v", got)
	}
	if got := Daily(9, 0).Next(now.Add(time.Minute)); !got.Equal(time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("daily next at the time: %v", got)
	}
	if got := EveryDuration(time.Hour).Next(now); !got.Equal(now.Add(time.Hour)) {
		t.Errorf("every hour: %v", got)
	}
}

// The table is well formed: known functions, methods and access levels; unique patterns;
// certificate checks only on agent routes; agent routes only on the agents domain.
func TestTableIsWellFormed(t *testing.T) {
	known := map[string]bool{FnStatus: true, FnAuth: true, FnBootstrap: true, FnAdmin: true, FnHeartbeat: true, FnRenew: true}
	seen := map[string]bool{}
	for _, r := range Table() {
		p := r.Pattern()
		switch {
		case !known[r.Function]:
			t.Errorf("%s: unknown function %q", p, r.Function)
		case seen[p]:
			t.Errorf("%s: twice in the table", p)
		case !strings.HasPrefix(r.Path, "/"):
			t.Errorf("%s: not an absolute path", p)
		case r.Access.String() == "unknown":
			t.Errorf("%s: unknown access level", p)
		case r.Cert != CertInGuard && r.Access != Agent:
			t.Errorf("%s: a certificate check on a non-agent route", p)
		case (r.Access == Agent) != AgentFunction(r.Function):
			t.Errorf("%s: agent routes, and only they, belong to the agents-domain function", p)
		}
		switch r.Method {
		case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		default:
			t.Errorf("%s: method %q", p, r.Method)
		}
		seen[p] = true
	}
	if len(Of(FnHeartbeat)) != 2 || len(APIFunctions()) != 4 {
		t.Errorf("Of/APIFunctions: %v %v", Of(FnHeartbeat), APIFunctions())
	}
	if got := AgentFunctions(); len(got) != 2 || got[0] != FnHeartbeat || got[1] != FnRenew {
		t.Errorf("AgentFunctions: %v", got)
	}
}
