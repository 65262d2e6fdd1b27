package heartbeat_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/heartbeatfn"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/heartbeat"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

// recordingBody is a request body that counts the bytes the server read from it.
type recordingBody struct {
	r    io.Reader
	read atomic.Int64
}

func (b *recordingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

// bigGzip is a 10 MB (decompressed) gzip heartbeat body: what a refused agent must not
// make the server read, decompress or parse.
func bigGzip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(bytes.Repeat([]byte(" "), 10<<20)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// postBig posts the big gzip body with cert through h and returns the status and the
// bytes the server read of the body.
func postBig(t *testing.T, h http.Handler, cert *x509.Certificate, gz []byte) (int, int64) {
	t.Helper()
	body := &recordingBody{r: bytes.NewReader(gz)}
	req := httptest.NewRequest("POST", "/agent/heartbeat", body)
	req.RemoteAddr = "198.51.100.9:50000"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req = req.WithContext(identity.WithClientCert(req.Context(), cert))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, body.read.Load()
}

// revokeFromDashboard revokes the machine's certificate through the dashboard's handler,
// as a client admin does: the revocation is committed, then marked in Redis.
func (e *env) revokeFromDashboard(rc *redis.Client) {
	e.t.Helper()
	h := certs.HandleRevoke(certs.Deps{Pool: e.pool, Clock: e.core.Clock, Logger: testenv.Discard(),
		Cache: cache.Store{Redis: rc, Prefix: e.prefix}})
	req := httptest.NewRequest("POST", "/api/machines/"+e.machineID+"/certificate/revoke", bytes.NewReader([]byte(`{"reason":"stolen"}`)))
	req.SetPathValue("id", e.machineID)
	var userID string
	if err := e.pool.QueryRow(context.Background(), `INSERT INTO users (client_id, email, password_hash, role)
		VALUES ($1, gen_random_uuid()::text || '@example.com', 'x', 'admin') RETURNING id::text`, e.clientID).Scan(&userID); err != nil {
		e.t.Fatal(err)
	}
	req = req.WithContext(principal.With(req.Context(), principal.Principal{UserID: userID, ClientID: e.clientID, Role: "admin"}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		e.t.Fatalf("revoke: %d %s", w.Code, w.Body.String())
	}
}

// A revoked certificate is refused (401) before the body is read, on this instance and on
// another sharing the Redis, from the very next request; the database stays the
// authority when the mark is lost, and restores it.
func TestRevokedAgentCostsNoWork(t *testing.T) {
	t.Parallel()
	c := &counter{}
	e := setup(t, options{tracer: c})
	rc, _ := testenv.Redis(t)
	gz := bigGzip(t)
	if r := e.post(payload(e.now.Add(-time.Minute))); r.code != 200 {
		t.Fatalf("heartbeat: %d %s", r.code, r.raw)
	}
	// A second instance (another Lambda) sharing the database and Redis, already warm.
	core2 := e.core
	h2, err := heartbeatfn.New(core2, heartbeat.New(heartbeat.Deps{Pool: e.pool, Redis: rc, Clock: core2.Clock,
		Logger: testenv.Discard(), RedisPrefix: e.prefix}))
	if err != nil {
		t.Fatal(err)
	}
	e.revokeFromDashboard(rc)
	for name, h := range map[string]http.Handler{"this instance": e.h, "another instance": h2} {
		c.batches.Store(0)
		c.queries.Store(0)
		code, read := postBig(t, h, e.cert, gz)
		if code != 401 || read != 0 {
			t.Errorf("%s: revoked agent got %d after the server read %d bytes of its body, want 401 and 0", name, code, read)
		}
		if b, q := c.batches.Load(), c.queries.Load(); b != 0 || q != 0 {
			t.Errorf("%s: refused from Redis, yet %d batches and %d queries", name, b, q)
		}
	}

	// The mark lost (Redis flushed, evicted): the batch refuses, and restores the mark.
	if err := rc.Del(context.Background(), e.prefix+certs.RefusedKey(ca.SerialHex(e.cert.SerialNumber))).Err(); err != nil {
		t.Fatal(err)
	}
	if r := e.post(payload(e.now)); r.code != 401 {
		t.Fatalf("revoked, mark lost: %d %s", r.code, r.raw)
	}
	if code, read := postBig(t, e.h, e.cert, gz); code != 401 || read != 0 {
		t.Errorf("mark restored by the refused batch: got %d after reading %d bytes, want 401 and 0", code, read)
	}
	ttl, err := rc.TTL(context.Background(), e.prefix+certs.RefusedKey(ca.SerialHex(e.cert.SerialNumber))).Result()
	if err != nil || ttl <= 0 || ttl > time.Until(e.cert.NotAfter)+2*time.Minute {
		t.Errorf("mark TTL %v (%v), want until the certificate's expiry %v", ttl, err, e.cert.NotAfter)
	}
}

// With Redis down, the guard asks the database (one extra round trip, only then): the
// revoked agent is still refused before its body is read.
func TestRevokedAgentCostsNoWorkWithRedisDown(t *testing.T) {
	t.Parallel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	e := setup(t, options{redis: dead})
	if r := e.post(payload(e.now.Add(-time.Minute))); r.code != 200 {
		t.Fatalf("heartbeat with Redis down: %d %s", r.code, r.raw)
	}
	e.revokeFromDashboard(dead) // the mark cannot be written
	if code, read := postBig(t, e.h, e.cert, bigGzip(t)); code != 401 || read != 0 {
		t.Errorf("Redis down: revoked agent got %d after the server read %d bytes, want 401 and 0", code, read)
	}
	// Without Redis at all, likewise.
	e2 := setup(t, options{noRed: true})
	e2.core.Redis = nil
	h, err := heartbeatfn.New(app.Core{Pool: e2.pool, Logger: testenv.Discard(), Clock: e2.core.Clock}, e2.hb)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := certs.Revoke(context.Background(), e2.pool, certs.RevokeRequest{ClientID: e2.clientID, MachineID: e2.machineID,
		Reason: "test"}, e2.now); err != nil {
		t.Fatal(err)
	}
	if code, read := postBig(t, h, e2.cert, bigGzip(t)); code != 401 || read != 0 {
		t.Errorf("no Redis: revoked agent got %d after the server read %d bytes, want 401 and 0", code, read)
	}
}

// A disabled client's agents are refused (403) before their bodies are read once the
// client is marked; enabling it drops the mark and they are served again.
func TestDisabledClientCostsNoWork(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	rc, _ := testenv.Redis(t)
	ctx := context.Background()
	marks := certs.Marks{Store: cache.Store{Redis: rc, Prefix: e.prefix}}
	if _, err := e.pool.Exec(ctx, `UPDATE clients SET is_active = FALSE WHERE id = $1`, e.clientID); err != nil {
		t.Fatal(err)
	}
	// Not marked yet (as if Redis had missed it): the batch refuses, and marks the client.
	if r := e.post(payload(e.now)); r.code != 403 {
		t.Fatalf("disabled client: %d %s", r.code, r.raw)
	}
	if code, read := postBig(t, e.h, e.cert, bigGzip(t)); code != 403 || read != 0 {
		t.Errorf("disabled client: got %d after reading %d bytes, want 403 and 0", code, read)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE clients SET is_active = TRUE WHERE id = $1`, e.clientID); err != nil {
		t.Fatal(err)
	}
	marks.ClientDisabled(ctx, e.clientID, false)
	if r := e.post(payload(e.now.Add(-time.Second))); r.code != 200 {
		t.Fatalf("enabled again: %d %s", r.code, r.raw)
	}
}

// An expired licence: agents are served for the grace period (the answer says so), then
// refused with 402; renewing the licence takes effect on the next heartbeat.
func TestExpiredLicenceGrace(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	ctx := context.Background()
	setExpiry := func(at time.Time) {
		t.Helper()
		if _, err := e.pool.Exec(ctx, `UPDATE clients SET license_expires_at = $2 WHERE id = $1`, e.clientID, at); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.post(payload(e.now.Add(-time.Minute))); r.code != 200 || r.body["licence_expired"] != nil {
		t.Fatalf("valid licence: %d %s", r.code, r.raw)
	}
	expired := e.now.Add(-24 * time.Hour)
	setExpiry(expired)
	r := e.post(payload(e.now.Add(-50 * time.Second)))
	want := expired.AddDate(0, 0, heartbeat.DefaultLicenceGraceDays).UTC().Format(time.RFC3339Nano)
	if r.code != 200 || r.body["licence_expired"] != true || r.body["licence_grace_until"] != want {
		t.Fatalf("expired, in grace: %d %s, want licence_expired and grace until %s", r.code, r.raw, want)
	}
	setExpiry(e.now.AddDate(0, 0, -heartbeat.DefaultLicenceGraceDays-1))
	r = e.post(payload(e.now.Add(-40 * time.Second)))
	if r.code != 402 || !strings.Contains(r.raw, "renew the licence") {
		t.Fatalf("grace over: %d %s, want 402 with a clear message", r.code, r.raw)
	}
	setExpiry(e.now.AddDate(1, 0, 0))
	if r := e.post(payload(e.now.Add(-30 * time.Second))); r.code != 200 || r.body["licence_expired"] != nil {
		t.Fatalf("licence renewed: %d %s, want 200 at once", r.code, r.raw)
	}
}
