package agentsim_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/agentsim"
	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/authfn"
	"github.com/optralis/optralis/internal/app/heartbeatfn"
	"github.com/optralis/optralis/internal/app/monolith"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/devstack"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The simulator against the real handlers: the public API over HTTP, the agent routes
// over mutual TLS with the local CA, as in the local stack.
func TestEnrolAndHeartbeat(t *testing.T) {
	pool := testenv.NewDB(t, migrate.ModePostgres)
	rc, _ := testenv.Redis(t)
	now := time.Now().UTC()
	authority, err := ca.LoadOrCreateLocal(t.TempDir(), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Config{Dev: true}
	cfg.Enrolment.AgentEndpoint = "https://127.0.0.1"
	core := app.Core{Pool: pool, Redis: rc, Logger: testenv.Discard(), Clock: clock.System{}}
	m, err := monolith.New(core, monolith.Services{Auth: authfn.NewService(core, authfn.Settings{Secret: []byte(strings.Repeat("s", 32)), Dev: true}),
		Heartbeat: heartbeatfn.NewService(core), CA: authority, Enrolment: cfg.Enrolment})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(m.API)
	t.Cleanup(api.Close)
	serverCert, err := authority.ServerCertificate([]string{"127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	agent := httptest.NewUnstartedServer(devstack.TLSIdentity(m.Agent))
	agent.TLS = devstack.AgentTLSConfig(authority, serverCert)
	agent.StartTLS()
	t.Cleanup(agent.Close)

	ctx := context.Background()
	const n = 5
	_, token, err := agentsim.CreateToken(ctx, pool, "", n)
	if err != nil {
		t.Fatal(err)
	}
	o := agentsim.Options{APIURL: api.URL, AgentURL: agent.URL, Machines: n, Rate: 50, Duration: time.Second, Workers: 4, Gzip: true}
	machines, err := agentsim.Enrol(ctx, o, token, n)
	if err != nil {
		t.Fatal(err)
	}
	sum := agentsim.Run(ctx, o, machines)
	t.Log(sum)
	if sum.Acked < 10 || len(sum.Errors) > 0 {
		t.Fatalf("summary: %s", sum)
	}
	var rows int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM metrics`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != sum.Acked {
		t.Errorf("%d metrics rows for %d acknowledged heartbeats", rows, sum.Acked)
	}
}
