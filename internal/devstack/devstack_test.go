package devstack_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/devstack"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/localsvc"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// syncBuffer is a bytes.Buffer safe for the stack's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type running struct {
	stack devstack.Stack
	out   *syncBuffer
	stop  func() error
}

// start runs the stack in-process with the given environment until the test stops it.
func start(t *testing.T, dir string, env map[string]string) running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan devstack.Stack, 1)
	done := make(chan error, 1)
	out := &syncBuffer{}
	apiPort, _ := localsvc.FreePort()
	agentPort, _ := localsvc.FreePort()
	pgPort, _ := localsvc.FreePort()
	if _, ok := env["PORT"]; !ok {
		env["PORT"] = itoa(apiPort)
	}
	go func() {
		done <- devstack.Run(ctx, func(k string) string { return env[k] }, out, testenv.Discard(), devstack.Options{
			Dir: dir, AgentPort: agentPort, PGPort: pgPort, RedisPort: 0,
			Ready: func(s devstack.Stack) { ready <- s },
		})
	}()
	select {
	case s := <-ready:
		var once sync.Once
		var err error
		stop := func() error {
			once.Do(func() { cancel(); err = <-done })
			return err
		}
		t.Cleanup(func() { _ = stop() })
		return running{stack: s, out: out, stop: stop}
	case err := <-done:
		cancel()
		t.Fatalf("stack did not start: %v\n%s", err, out.String())
	case <-time.After(3 * time.Minute):
		cancel()
		t.Fatalf("stack not ready in time\n%s", out.String())
	}
	return running{}
}

func itoa(n int) string { return strconv.Itoa(n) }

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func agentClient(authority *ca.CA, cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: authority.Pool()}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

func clientCert(t *testing.T, authority *ca.CA, cn string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert, err := authority.IssueClient(&key.PublicKey, cn, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

func TestStackWithConfiguredDatabase(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"DATABASE_URL":           testenv.EmptyDatabase(t),
		"REDIS_URL":              testenv.RedisURL(t),
		"JWT_SECRET":             strings.Repeat("k", 40),
		"DEFAULT_ADMIN_PASSWORD": "Initial-Passw0rd!",
	}
	r := start(t, dir, env)
	if !strings.Contains(r.out.String(), "admin@optralis.local with DEFAULT_ADMIN_PASSWORD") {
		t.Fatalf("banner: %s", r.out.String())
	}
	code, body := get(t, http.DefaultClient, r.stack.APIURL+"/status")
	if code != 200 || !strings.Contains(body, `"name":"database"`) {
		t.Fatalf("/status: %d %s", code, body)
	}
	// The public status page is served next to the API (same origin as GET /status).
	if code, body := get(t, http.DefaultClient, r.stack.APIURL+"/status-page/"); code != 200 || !strings.Contains(body, "<title>Optralis status</title>") {
		t.Fatalf("/status-page/: %d %s", code, body)
	}
	if code, body := get(t, http.DefaultClient, r.stack.APIURL+"/status-page/config.js"); code != 200 || !strings.Contains(body, `apiUrl: ""`) {
		t.Fatalf("/status-page/config.js: %d %s", code, body)
	}
	if code, body := get(t, http.DefaultClient, r.stack.APIURL+"/nowhere"); code != 404 || !strings.Contains(body, `"not_found"`) {
		t.Fatalf("unknown route: %d %s", code, body)
	}

	// The agent port demands a certificate from our CA.
	cert := clientCert(t, r.stack.CA, "11111111-1111-1111-1111-111111111111:22222222-2222-2222-2222-222222222222")
	if code, body := get(t, agentClient(r.stack.CA, &cert), r.stack.AgentURL+"/agent/nothing"); code != 404 || !strings.Contains(body, "not_found") {
		t.Fatalf("agent port with a valid certificate: %d %s", code, body)
	}
	if _, err := agentClient(r.stack.CA, nil).Get(r.stack.AgentURL + "/agent/nothing"); err == nil {
		t.Fatal("agent port accepted a client without a certificate")
	}
	other, err := ca.LoadOrCreateLocal(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	foreign := clientCert(t, other, "x:y")
	if _, err := agentClient(r.stack.CA, &foreign).Get(r.stack.AgentURL + "/agent/nothing"); err == nil {
		t.Fatal("agent port accepted a certificate from another CA")
	}
	if err := r.stop(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}

	// A second run reuses the database: nothing migrated, the admin already exists.
	r2 := start(t, dir, env)
	if !strings.Contains(r2.out.String(), "(0 migrations applied now)") || !strings.Contains(r2.out.String(), "(existing account)") {
		t.Fatalf("second run did not reuse the data:\n%s", r2.out.String())
	}
}

// TestStackWithoutConfiguration is `make run` on a machine with nothing configured: the
// stack starts its own PostgreSQL under the state directory and keeps the data across runs.
func TestStackWithoutConfiguration(t *testing.T) {
	if _, err := localsvc.PostgresBinDir(); err != nil {
		t.Skip("PostgreSQL server binaries not installed: ", err)
	}
	dir := t.TempDir()
	r := start(t, dir, map[string]string{})
	out := r.out.String()
	if !strings.Contains(out, "PostgreSQL: local server") || !strings.Contains(out, "password: ") {
		t.Fatalf("first run:\n%s", out)
	}
	// agentsim and `job run` need the database URL: the banner prints it.
	if !strings.Contains(out, "Database (DATABASE_URL for agentsim, job run): postgres://postgres@127.0.0.1:") {
		t.Fatalf("banner has no database URL:\n%s", out)
	}
	// The time-series mode comes with its reason (timescaledb is usable or why not).
	if !strings.Contains(out, "  mode: TIMESERIES_MODE=auto: the timescaledb extension") {
		t.Fatalf("banner does not say why the time-series mode was chosen:\n%s", out)
	}
	if code, _ := get(t, http.DefaultClient, r.stack.APIURL+"/status"); code != 200 {
		t.Fatalf("/status: %d", code)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	r2 := start(t, dir, map[string]string{})
	out2 := r2.out.String()
	if !strings.Contains(out2, "(0 migrations applied now)") || !strings.Contains(out2, "(existing account)") || strings.Contains(out2, "password: ") {
		t.Fatalf("second run did not reuse .dev data:\n%s", out2)
	}
	if err := r2.stop(); err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	// A clean stop leaves no server of ours running: no pid file, no postmaster.pid.
	for _, f := range []string{filepath.Join(dir, "redis.pid"), filepath.Join(dir, "pgdata", "postmaster.pid")} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left after a clean stop", f)
		}
	}
}

// TestInvalidConfigRefusedBeforeServers: a bad PORT is refused before any server starts.
func TestInvalidConfigRefusedBeforeServers(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PORT": "70000"}
	out := &syncBuffer{}
	err := devstack.Run(context.Background(), func(k string) string { return env[k] }, out, testenv.Discard(), devstack.Options{Dir: dir, AgentPort: 1, PGPort: 1})
	if err == nil || !strings.Contains(err.Error(), "PORT must be") {
		t.Fatalf("err = %v, want the PORT refused", err)
	}
	if strings.Contains(out.String(), "PostgreSQL") || strings.Contains(out.String(), "Redis") {
		t.Fatalf("servers started before the configuration was checked:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "pgdata")); !os.IsNotExist(err) {
		t.Fatal("a PostgreSQL data directory was created before the configuration was checked")
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://postgres@127.0.0.1:54329/optralis?sslmode=disable": "postgres://postgres@127.0.0.1:54329/optralis?sslmode=disable",
		"postgres://app:s3cret@db:5432/optralis":                       "postgres://app:xxxxx@db:5432/optralis",
		"postgres://db/optralis?password=s3cret&sslmode=require":       "postgres://db/optralis?password=xxxxx&sslmode=require",
	} {
		if got := devstack.RedactURL(in); got != want || strings.Contains(got, "s3cret") {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTLSIdentityReachesHandlers(t *testing.T) {
	authority, err := ca.LoadOrCreateLocal(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := authority.ServerCertificate([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(devstack.TLSIdentity(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := identity.ClientCert(r.Context())
		if !ok {
			http.Error(w, "none", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, c.Subject.CommonName)
	})))
	srv.TLS = devstack.AgentTLSConfig(authority, serverCert)
	srv.StartTLS()
	defer srv.Close()
	cert := clientCert(t, authority, "client-a:machine-b")
	code, body := get(t, agentClient(authority, &cert), srv.URL)
	if code != 200 || body != "client-a:machine-b" {
		t.Fatalf("%d %q", code, body)
	}
}
