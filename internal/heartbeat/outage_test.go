package heartbeat_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/heartbeatfn"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/heartbeat"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/localsvc"
	"github.com/optralis/optralis/internal/logging"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/ratelimit"
	"github.com/optralis/optralis/internal/testenv"
)

// syncBuffer is a log destination written by requests and the pool's background work.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(msgPrefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range strings.Split(s.b.String(), "\n") {
		var rec struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(l), &rec) == nil && strings.HasPrefix(rec.Msg, msgPrefix) {
			n++
		}
	}
	return n
}

// TestDatabaseOutage stops and restarts a PostgreSQL server of its own under the real
// heartbeat handler: during the outage every heartbeat is a 503 with a jittered
// Retry-After (not a 500), the log has one line when the database goes and one when it
// comes back (not one per request), and the failed attempts did not use up the address's
// rate limit.
func TestDatabaseOutage(t *testing.T) {
	if err := localsvc.EnsurePostgresInstalled(context.Background(), t.Logf); err != nil {
		t.Skipf("needs a PostgreSQL server of its own to stop: %v", err)
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pg")
	pg, err := localsvc.StartPostgres(ctx, dir, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	running := true
	t.Cleanup(func() {
		if running {
			_ = pg.Stop()
		}
	})

	logs := &syncBuffer{}
	logger := logging.New(logs, slog.LevelInfo)
	cfg, err := db.Config(pg.URL("postgres")+"&connect_timeout=2", db.LambdaProfile())
	if err != nil {
		t.Fatal(err)
	}
	db.WatchOutages(cfg, logger)
	pool, err := db.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := migrate.Run(ctx, pool, migrate.ModePostgres, testenv.Discard()); err != nil {
		t.Fatal(err)
	}

	now := time.Now().UTC().Truncate(time.Microsecond)
	authority, err := ca.LoadOrCreateLocal(t.TempDir(), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	clientID := testenv.Client(t, pool, "Pro")
	machineID := testenv.Machine(t, pool, clientID, "host-outage")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is, err := certs.Issue(ctx, pool, authority, certs.IssueRequest{ClientID: clientID, MachineID: machineID,
		PublicKey: key.Public(), Reason: "test"}, now)
	if err != nil {
		t.Fatal(err)
	}

	// No Redis: the in-process limiter, 3 heartbeats an hour per address.
	limit := ratelimit.Limit{Burst: 3, Period: time.Hour}
	core := app.Core{Pool: pool, Clock: clock.System{}, Logger: logger}
	hb := heartbeat.New(heartbeat.Deps{Pool: pool, Clock: core.Clock, Logger: logger, Limit: limit})
	h, err := heartbeatfn.New(core, hb)
	if err != nil {
		t.Fatal(err)
	}
	seq := 0
	post := func() *httptest.ResponseRecorder {
		seq++
		b, _ := json.Marshal(payload(time.Now().UTC().Add(-time.Duration(100-seq) * time.Second)))
		req := httptest.NewRequest("POST", "/agent/heartbeat", bytes.NewReader(b))
		req.RemoteAddr = "198.51.100.9:50000"
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(identity.WithClientCert(req.Context(), is.Cert))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}

	if w := post(); w.Code != http.StatusOK {
		t.Fatalf("before the outage: %d %s", w.Code, w.Body)
	}
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	running = false
	retryAfters := map[int]bool{}
	for i := 0; i < 12; i++ {
		w := post()
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"unavailable"`) {
			t.Fatalf("heartbeat %d during the outage: %d %s, want 503 unavailable", i, w.Code, w.Body)
		}
		ra, err := strconv.Atoi(w.Header().Get("Retry-After"))
		if err != nil || ra < httpx.RetryAfterMin || ra > httpx.RetryAfterMax {
			t.Fatalf("Retry-After %q, want %d..%d s", w.Header().Get("Retry-After"), httpx.RetryAfterMin, httpx.RetryAfterMax)
		}
		retryAfters[ra] = true
	}
	if len(retryAfters) < 2 {
		t.Errorf("Retry-After is not jittered: always %v", retryAfters)
	}
	if pg, err = localsvc.StartPostgres(ctx, dir, pg.Port, true); err != nil {
		t.Fatal(err)
	}
	running = true

	// The 12 refused attempts were given back: the 2 heartbeats left of the 3 go through,
	// and the limit still bites on the next one.
	for i := 0; i < 2; i++ {
		if w := post(); w.Code != http.StatusOK {
			t.Fatalf("heartbeat %d after the outage: %d %s", i, w.Code, w.Body)
		}
	}
	if w := post(); w.Code != http.StatusTooManyRequests {
		t.Fatalf("past the limit: %d %s, want 429", w.Code, w.Body)
	}

	if n := logs.lines("database unavailable"); n != 1 {
		t.Errorf("%d 'database unavailable' lines, want 1 for one outage:\n%s", n, logs.b.String())
	}
	if n := logs.lines("database available again"); n != 1 {
		t.Errorf("%d 'database available again' lines, want 1:\n%s", n, logs.b.String())
	}
	if n := logs.lines("internal error"); n != 0 {
		t.Errorf("%d 'internal error' lines during a database outage, want 0", n)
	}
	var hbs int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM metrics WHERE machine_id = $1`, machineID).Scan(&hbs); err != nil {
		t.Fatal(err)
	}
	if hbs != 3 {
		t.Errorf("%d heartbeats stored, want the 3 acknowledged", hbs)
	}
}
