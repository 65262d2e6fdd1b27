package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/rollup"
	"github.com/optralis/optralis/internal/testenv"
)

// Issue 12's drift done-when, through the local stack's job and the dashboard route: a
// machine whose CPU jumps from a steady 20 % to 90 % gets a critical drift with an
// explanation (from a local stand-in for the provider, and from the template without
// one); a steady machine gets none; a second run in the same hour asks nothing again.
func TestDriftJobAndRoute(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("x-api-key") != "local-key" || !strings.Contains(string(body), `"model":"claude-local"`) {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, `{"model":"claude-local","content":[{"type":"text","text":"A process is saturating the CPU."}]}`)
	}))
	t.Cleanup(provider.Close)

	for _, c := range []struct {
		name string
		ai   config.AI
		want string
	}{
		{"provider", config.AI{Key: "local-key", URL: provider.URL + "/v1/messages", Model: "claude-local", MaxCallsPerRun: 20}, "A process is saturating the CPU."},
		{"template", config.AI{}, "CPU averaged 90.0 % over the last hour against a 7-day mean of 20.0 %"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newStack(t, func(_ *auth.Options, d *testDeps) { d.Config.AI = c.ai })
			f := newMDFixture(t, s, "Pro")
			quiet := testenv.Machine(t, s.d.Pool, f.clientID, "steady")
			now := s.clock.Now()
			last := now.Truncate(time.Hour).Add(-time.Hour)
			for m, cpu := range map[string]float64{f.machineID: 90, quiet: 20} {
				// One sample an hour for the 7 days before the last hour (19..21 %), then the last hour.
				if _, err := s.d.Pool.Exec(context.Background(), `
					INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent, disk_latency_ms)
					SELECT $1::uuid, $2::timestamptz + i * INTERVAL '1 hour' + INTERVAL '30 min', 20 + (i % 5 - 2) * 0.5, 50, 2
					FROM generate_series(0, 167) AS i
					UNION ALL SELECT $1, $3::timestamptz + INTERVAL '10 min', $4, 50, 2`, m, last.Add(-7*24*time.Hour), last, cpu); err != nil {
					t.Fatal(err)
				}
			}
			if err := (rollup.Refresher{Pool: s.d.Pool, Mode: migrate.ModePostgres}).Refresh(context.Background(), last.Add(-8*24*time.Hour), last); err != nil {
				t.Fatal(err)
			}
			before := calls.Load()
			for range 2 { // the second run in the same hour does nothing
				for _, j := range s.d.Jobs() {
					if j.Name == "drift" {
						if err := j.Run(context.Background(), now); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			if c.ai.Enabled() && calls.Load()-before != 1 {
				t.Fatalf("%d provider calls, want 1", calls.Load()-before)
			}
			var drift struct {
				Baselines []map[string]any `json:"baselines"`
			}
			if code, body := f.get("/api/machines/"+f.machineID+"/drift", &drift); code != 200 || len(drift.Baselines) != 3 ||
				drift.Baselines[0]["metric_type"] != "cpu_percent" || drift.Baselines[0]["drift_detected"] != true ||
				drift.Baselines[0]["drift_severity"] != "critical" || !strings.HasPrefix(drift.Baselines[0]["drift_explanation"].(string), c.want) {
				t.Fatalf("drift: %d %s", code, body)
			}
			if code, body := f.get("/api/machines/"+quiet+"/drift", &drift); code != 200 || len(drift.Baselines) != 3 ||
				strings.Contains(body, `"drift_detected":true`) || strings.Contains(body, `"drift_explanation":"`) {
				t.Fatalf("steady machine: %d %s", code, body)
			}
		})
	}
}
