package heartbeat_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/klauspost/compress/gzip"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/agentrelease"
	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/heartbeatfn"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/heartbeat"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/ratelimit"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is a migrated database, Redis, a CA and one enrolled machine with its certificate,
// served by the real agent handler (guard included). The service's clock is stopped at
// env.now (a real instant, so the database's own now() stays close to it): what a test
// dates relative to e.now is judged at exactly e.now.
type env struct {
	t                   testing.TB
	pool                *pgxpool.Pool
	core                app.Core
	hb                  *heartbeat.Service
	authority           *ca.CA
	clientID, machineID string
	cert                *x509.Certificate
	now                 time.Time
	prefix              string
	h                   http.Handler
}

type options struct {
	tier  string
	redis *redis.Client // nil: the test Redis
	noRed bool
	limit ratelimit.Limit
	// machineLimit is the per-machine limit; zero: none (tests send many heartbeats).
	machineLimit ratelimit.Limit
	// group turns group commit on.
	group  *heartbeat.GroupCommit
	tracer pgx.QueryTracer
	// asyncCommit turns synchronous_commit off (benchmark diagnostic: the WAL flush share).
	asyncCommit bool
	// clock is the service's and the guard's clock; nil: the system clock.
	clock clock.Clock
	// timescale migrates the database in timescale mode (testenv.Timescale).
	timescale bool
}

func setup(t testing.TB, o options) *env {
	t.Helper()
	if o.tier == "" {
		o.tier = "Pro"
	}
	var pool *pgxpool.Pool
	if o.timescale {
		pool = testenv.Timescale(t)
	} else {
		pool = testenv.NewDB(t, migrate.ModePostgres)
	}
	if o.tracer != nil || o.asyncCommit {
		cfg := pool.Config()
		if o.tracer != nil {
			cfg.ConnConfig.Tracer = o.tracer
		}
		if o.asyncCommit {
			cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
		}
		p2, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p2.Close)
		pool = p2
	}
	rc, prefix := o.redis, "t"+strconv.FormatInt(time.Now().UnixNano(), 36)+":"
	if rc == nil && !o.noRed {
		rc, prefix = testenv.Redis(t)
	}
	now := time.Now().UTC().Truncate(time.Microsecond) // PostgreSQL's precision
	var clk clock.Clock = clock.Fixed(now)
	authority, err := ca.LoadOrCreateLocal(t.TempDir(), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, pool: pool, authority: authority, now: now, prefix: prefix}
	if o.clock != nil {
		clk = o.clock
	}
	if o.machineLimit.Burst == 0 {
		o.machineLimit.Burst = -1
	}
	e.hb = heartbeat.New(heartbeat.Deps{Pool: pool, Redis: rc, Clock: clk, Logger: testenv.Discard(),
		RedisPrefix: prefix, Limit: o.limit, MachineLimit: o.machineLimit, GroupCommit: o.group})
	t.Cleanup(e.hb.Close)
	e.core = app.Core{Pool: pool, Redis: rc, Logger: testenv.Discard(), Clock: clk, KeyPrefix: prefix}
	h, err := heartbeatfn.New(e.core, e.hb)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	e.clientID = testenv.Client(t, pool, o.tier)
	e.machineID, e.cert = e.enrol(e.clientID, "host-1")
	return e
}

// publish makes version the channel's latest agent release, stamped at, as a platform
// admin does; rc (nil: none) is the Redis whose cached version it drops.
func (e *env) publish(rc *redis.Client, channel, version string, at time.Time) {
	e.t.Helper()
	rel := agentrelease.Release{Channel: channel, Version: version, Downloads: map[string]agentrelease.Download{
		"amd64": {URL: "https://downloads.example.test/agent-amd64", SHA256: strings.Repeat("ab", 32)}}}
	if _, err := agentrelease.Publish(context.Background(), e.pool, cache.Store{Redis: rc, Prefix: e.prefix}, rel, "", "", at); err != nil {
		e.t.Fatal(err)
	}
}

// enrol creates a machine of the client with an active certificate.
func (e *env) enrol(clientID, host string) (string, *x509.Certificate) {
	e.t.Helper()
	id := testenv.Machine(e.t, e.pool, clientID, host)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is, err := certs.Issue(context.Background(), e.pool, e.authority, certs.IssueRequest{ClientID: clientID, MachineID: id,
		PublicKey: key.Public(), Reason: "test"}, e.now)
	if err != nil {
		e.t.Fatal(err)
	}
	return id, is.Cert
}

type response struct {
	code int
	body map[string]any
	raw  string
	hdr  http.Header
}

func (r response) fields() map[string]any {
	errObj, _ := r.body["error"].(map[string]any)
	f, _ := errObj["fields"].(map[string]any)
	return f
}

func (e *env) do(method, path string, cert *x509.Certificate, body []byte, hdr map[string]string) response {
	e.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.RemoteAddr = "198.51.100.7:50000"
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if cert != nil {
		req = req.WithContext(identity.WithClientCert(req.Context(), cert))
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	out := response{code: w.Code, raw: w.Body.String(), hdr: w.Header()}
	_ = json.Unmarshal(w.Body.Bytes(), &out.body)
	return out
}

func (e *env) post(p map[string]any) response {
	e.t.Helper()
	b, _ := json.Marshal(p)
	return e.do("POST", "/agent/heartbeat", e.cert, b, nil)
}

func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table+" WHERE machine_id = $1", e.machineID).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// payload is a complete heartbeat: metrics, 2 disks, 3 events, SMART and all collectors.
func payload(at time.Time) map[string]any {
	return map[string]any{
		"recorded_at":   at.Format(time.RFC3339Nano),
		"agent_version": "1.4.2",
		"metrics": map[string]any{"cpu_percent": 42.5, "ram_percent": 61.0, "ram_used_bytes": 5 << 30, "ram_total_bytes": 8 << 30,
			"cpu_temp": 55.0, "bytes_recv": 123456, "bytes_sent": 65432, "packet_loss": 0.5, "latency_ms": 12.3,
			"disk_latency_ms": 1.2, "uptime_seconds": 86400, "process_count": 213},
		"disks": []any{
			map[string]any{"mount_point": `C:\`, "device": `\\.\PHYSICALDRIVE0`, "fs_type": "NTFS", "total_gb": 476.3, "used_gb": 210.1,
				"used_percent": 44.11, "model": "Samsung 980", "interface": "NVMe"},
			map[string]any{"mount_point": `D:\`, "fs_type": "NTFS", "total_gb": 931.5, "used_gb": 700, "used_percent": 75.15},
		},
		"events": []any{
			map[string]any{"event_time": at.Add(-time.Minute).Format(time.RFC3339), "log_name": "System", "source": "Disk", "event_id": 7, "level": "error", "message": "bad block"},
			map[string]any{"event_time": at.Add(-2 * time.Minute).Format(time.RFC3339), "log_name": "Application", "source": "MsiInstaller", "event_id": 11707, "message": "installed"},
			map[string]any{"event_time": at.Add(-3 * time.Minute).Format(time.RFC3339), "log_name": "System", "level": "warning"},
		},
		"smart": []any{map[string]any{"device": "/dev/nvme0", "model": "Samsung 980", "serial_number": "S123", "health_status": "passed",
			"temperature_c": 41, "power_on_hours": 5000, "reallocated_sectors": 0, "pending_sectors": 0, "uncorrectable_errors": 0,
			"wear_level_percent": 3, "attributes": map[string]any{"5": 0}}},
		"collectors": map[string]any{
			"metrics":        map[string]any{"cpu": 42.5},
			"storage":        map[string]any{"disks": 2},
			"storage_health": map[string]any{"ok": true},
			"network":        map[string]any{"interfaces": []any{map[string]any{"name": "eth0", "mac": "00:11:22:33:44:55"}}},
			"services": map[string]any{"services": []any{map[string]any{"name": "a", "status": "running"},
				map[string]any{"name": "b", "status": "failed"}, map[string]any{"name": "c", "status": "stopped"}}},
			"security": map[string]any{"antivirus_name": "Defender", "antivirus_version": "4.18", "antivirus_enabled": true,
				"antivirus_updated": true, "firewall_enabled": true, "bitlocker_enabled": false, "secure_boot_enabled": true,
				"ports": []any{map[string]any{"port": 22}, map[string]any{"port": 3389}}, "risky_ports": []any{map[string]any{"port": 3389}}},
			"software": map[string]any{"software": []any{map[string]any{"name": "7-Zip"}}, "users": []any{map[string]any{"name": "bob", "admin": true},
				map[string]any{"name": "eve", "admin": false}}},
			"patches": map[string]any{"pending_updates": 4, "security_updates": 1, "reboot_required": true, "auto_update": true,
				"last_check": at.Add(-time.Hour).Format(time.RFC3339)},
		},
	}
}

func TestHeartbeatWritesEverythingAndRetryIsIdempotent(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	at := e.now.Add(-10 * time.Second)
	first := e.post(payload(at))
	if first.code != 200 {
		t.Fatalf("heartbeat: %d %s", first.code, first.raw)
	}
	want := map[string]int{"metrics": 1, "disk_info": 2, "event_logs": 3, "smart_data": 1, "machine_collector_data": 8, "machine_inventory": 1}
	for table, n := range want {
		if got := e.count(table); got != n {
			t.Errorf("%s: %d rows, want %d", table, got, n)
		}
	}
	ctx := context.Background()
	var av, ip, serial *string
	var lastSeen *time.Time
	if err := e.pool.QueryRow(ctx, `SELECT agent_version, ip_address, last_seen, cert_serial FROM machines WHERE id = $1`, e.machineID).
		Scan(&av, &ip, &lastSeen, &serial); err != nil {
		t.Fatal(err)
	}
	if av == nil || *av != "1.4.2" || ip == nil || *ip != "198.51.100.7" || lastSeen == nil || serial == nil || *serial != ca.SerialHex(e.cert.SerialNumber) {
		t.Errorf("machine row: version %v ip %v last_seen %v serial %v", av, ip, lastSeen, serial)
	}
	var svcTotal, svcRunning, svcFailed, ports, risky, swCount, users, admins, pending int
	var av2 string
	var reboot bool
	if err := e.pool.QueryRow(ctx, `SELECT services_total, services_running, services_failed, ports_open, ports_risky_open,
		software_count, users_total, users_admin, pending_updates, antivirus_name, reboot_required FROM machine_inventory WHERE machine_id = $1`,
		e.machineID).Scan(&svcTotal, &svcRunning, &svcFailed, &ports, &risky, &swCount, &users, &admins, &pending, &av2, &reboot); err != nil {
		t.Fatal(err)
	}
	if svcTotal != 3 || svcRunning != 1 || svcFailed != 1 || ports != 2 || risky != 1 || swCount != 1 || users != 2 || admins != 1 ||
		pending != 4 || av2 != "Defender" || !reboot {
		t.Errorf("inventory: services %d/%d/%d ports %d/%d software %d users %d/%d pending %d av %q reboot %v",
			svcTotal, svcRunning, svcFailed, ports, risky, swCount, users, admins, pending, av2, reboot)
	}

	// The retry: same machine, same recorded_at. Nothing new, same answer.
	again := e.post(payload(at))
	if again.code != 200 || again.raw != first.raw {
		t.Fatalf("retry: %d %s, first answered %s", again.code, again.raw, first.raw)
	}
	for table, n := range want {
		if got := e.count(table); got != n {
			t.Errorf("after retry %s: %d rows, want %d", table, got, n)
		}
	}
	// The next heartbeat adds its own rows.
	if r := e.post(payload(at.Add(time.Second))); r.code != 200 {
		t.Fatal(r.raw)
	}
	if got := e.count("metrics"); got != 2 {
		t.Errorf("metrics after a second heartbeat: %d", got)
	}
}

func TestDynamicInterval(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	for i, c := range []struct {
		cpu, ram float64
		want     float64
	}{{50, 50, 60}, {80, 85, 60}, {80.1, 10, 30}, {10, 85.1, 30}, {95, 95, 30}} {
		p := payload(e.now.Add(-time.Duration(i+1) * time.Second))
		m := p["metrics"].(map[string]any)
		m["cpu_percent"], m["ram_percent"] = c.cpu, c.ram
		r := e.post(p)
		if r.code != 200 || r.body["next_interval_seconds"] != c.want {
			t.Errorf("cpu %v ram %v: %d %s, want interval %v", c.cpu, c.ram, r.code, r.raw, c.want)
		}
	}
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func TestGzipBodies(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	for i, c := range []struct {
		name string
		gzip bool
		hdr  map[string]string
	}{
		{"gzip with header", true, map[string]string{"Content-Encoding": "gzip"}},
		{"gzip without header", true, nil},
		{"plain with a stale gzip header (proxy decompressed)", false, map[string]string{"Content-Encoding": "gzip"}},
		{"plain", false, nil},
	} {
		b, _ := json.Marshal(payload(e.now.Add(-time.Duration(i+1) * time.Second)))
		if c.gzip {
			b = gz(b)
		}
		if r := e.do("POST", "/agent/heartbeat", e.cert, b, c.hdr); r.code != 200 {
			t.Errorf("%s: %d %s", c.name, r.code, r.raw)
		}
	}
	if got := e.count("metrics"); got != 4 {
		t.Errorf("metrics rows: %d, want 4", got)
	}
	// Broken gzip: 400.
	if r := e.do("POST", "/agent/heartbeat", e.cert, []byte{0x1f, 0x8b, 1, 2, 3}, nil); r.code != 400 {
		t.Errorf("broken gzip: %d %s", r.code, r.raw)
	}
}

// A real bomb: 1 GB of zeros compress to about 1 MB; the decompressed limit stops it at
// 10 MB + 1 with 413, and the process never holds more than that.
func TestGzipBomb(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 1024 {
		_, _ = zw.Write(zeros)
	}
	_ = zw.Close()
	if buf.Len() > 10<<20 {
		t.Fatalf("the bomb is %d bytes compressed, over the raw limit", buf.Len())
	}
	e := setup(t, options{})
	if r := e.do("POST", "/agent/heartbeat", e.cert, buf.Bytes(), map[string]string{"Content-Encoding": "gzip"}); r.code != 413 {
		t.Fatalf("gzip bomb (%d bytes): %d %s", buf.Len(), r.code, r.raw)
	}
	if got := e.count("metrics"); got != 0 {
		t.Errorf("metrics rows: %d", got)
	}
}

func TestValidationNamesEachFieldAndWritesNothing(t *testing.T) {
	t.Parallel()
	e := setup(t, options{tier: "Trial"}) // 7 days of retention
	long := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		field  string
		mutate func(p map[string]any)
	}{
		{"recorded_at", func(p map[string]any) { p["recorded_at"] = e.now.Add(6 * time.Minute).Format(time.RFC3339) }},
		{"recorded_at", func(p map[string]any) { p["recorded_at"] = e.now.AddDate(0, 0, -8).Format(time.RFC3339) }},
		{"recorded_at", func(p map[string]any) { delete(p, "recorded_at") }},
		{"agent_version", func(p map[string]any) { p["agent_version"] = long(51) }},
		{"metrics", func(p map[string]any) { delete(p, "metrics") }},
		{"metrics.cpu_percent", func(p map[string]any) { p["metrics"].(map[string]any)["cpu_percent"] = 100.5 }},
		{"metrics.ram_percent", func(p map[string]any) { p["metrics"].(map[string]any)["ram_percent"] = -1 }},
		{"metrics.cpu_percent", func(p map[string]any) { delete(p["metrics"].(map[string]any), "cpu_percent") }},
		{"metrics.packet_loss", func(p map[string]any) { p["metrics"].(map[string]any)["packet_loss"] = 101 }},
		{"metrics.bytes_sent", func(p map[string]any) { p["metrics"].(map[string]any)["bytes_sent"] = -5 }},
		{"metrics.latency_ms", func(p map[string]any) { p["metrics"].(map[string]any)["latency_ms"] = -5 }},
		{"disks[1].used_percent", func(p map[string]any) { p["disks"].([]any)[1].(map[string]any)["used_percent"] = 100.01 }},
		{"disks[0].mount_point", func(p map[string]any) { p["disks"].([]any)[0].(map[string]any)["mount_point"] = long(256) }},
		{"disks[0].mount_point", func(p map[string]any) { delete(p["disks"].([]any)[0].(map[string]any), "mount_point") }},
		{"disks[1].mount_point", func(p map[string]any) { p["disks"].([]any)[1].(map[string]any)["mount_point"] = `C:\` }},
		{"disks[0].fs_type", func(p map[string]any) { p["disks"].([]any)[0].(map[string]any)["fs_type"] = long(51) }},
		{"disks[0].interface", func(p map[string]any) { p["disks"].([]any)[0].(map[string]any)["interface"] = long(51) }},
		{"disks[0].total_gb", func(p map[string]any) { p["disks"].([]any)[0].(map[string]any)["total_gb"] = 1e9 }},
		{"events[2].level", func(p map[string]any) { p["events"].([]any)[2].(map[string]any)["level"] = "panic" }},
		{"events[0].event_time", func(p map[string]any) {
			p["events"].([]any)[0].(map[string]any)["event_time"] = e.now.Add(time.Hour).Format(time.RFC3339)
		}},
		{"events[1].log_name", func(p map[string]any) { p["events"].([]any)[1].(map[string]any)["log_name"] = long(101) }},
		{"events[1].source", func(p map[string]any) { p["events"].([]any)[1].(map[string]any)["source"] = "a\x00b" }},
		{"smart[0].wear_level_percent", func(p map[string]any) { p["smart"].([]any)[0].(map[string]any)["wear_level_percent"] = 120 }},
		{"smart[0].serial_number", func(p map[string]any) { p["smart"].([]any)[0].(map[string]any)["serial_number"] = long(101) }},
		{"smart[0].attributes", func(p map[string]any) { p["smart"].([]any)[0].(map[string]any)["attributes"] = []any{1} }},
		{"collectors.telemetry", func(p map[string]any) { p["collectors"].(map[string]any)["telemetry"] = map[string]any{} }},
		{"collectors.storage", func(p map[string]any) { p["collectors"].(map[string]any)["storage"] = "full" }},
		{"collectors.services", func(p map[string]any) { p["collectors"].(map[string]any)["services"] = map[string]any{"services": 3} }},
		{"collectors.security.antivirus_name", func(p map[string]any) {
			p["collectors"].(map[string]any)["security"].(map[string]any)["antivirus_name"] = long(256)
		}},
	}
	for i, c := range cases {
		p := payload(e.now.Add(-time.Duration(i+1) * time.Second))
		c.mutate(p)
		r := e.post(p)
		if r.code != 400 {
			t.Errorf("case %d (%s): %d %s", i, c.field, r.code, r.raw)
			continue
		}
		if _, ok := r.fields()[c.field]; !ok {
			t.Errorf("case %d: the 400 does not name %q: %s", i, c.field, r.raw)
		}
	}
	// Several bad fields at once are all named.
	p := payload(e.now)
	p["metrics"].(map[string]any)["cpu_percent"] = 101
	p["disks"].([]any)[1].(map[string]any)["used_percent"] = -3
	if r := e.post(p); len(r.fields()) != 2 {
		t.Errorf("two bad fields: %s", r.raw)
	}
	// A malformed body and an unknown top-level field are 400 too.
	if r := e.do("POST", "/agent/heartbeat", e.cert, []byte(`{"recorded_at":`), nil); r.code != 400 {
		t.Errorf("truncated JSON: %d", r.code)
	}
	if r := e.do("POST", "/agent/heartbeat", e.cert, []byte(`{"bogus":1}`), nil); r.code != 400 {
		t.Errorf("unknown field: %d", r.code)
	}
	for _, table := range []string{"metrics", "disk_info", "event_logs", "smart_data", "machine_collector_data", "machine_inventory"} {
		if n := e.count(table); n != 0 {
			t.Errorf("%s has %d rows after refused heartbeats", table, n)
		}
	}
	var lastSeen *time.Time
	if err := e.pool.QueryRow(context.Background(), `SELECT last_seen FROM machines WHERE id = $1`, e.machineID).Scan(&lastSeen); err != nil {
		t.Fatal(err)
	}
	if lastSeen != nil {
		t.Error("last_seen was written by a refused heartbeat")
	}
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	body, _ := json.Marshal(payload(e.now))
	expect401 := func(name string, cert *x509.Certificate) {
		t.Helper()
		for _, path := range []string{"/agent/heartbeat", "/agent/config/collectors"} {
			method := "POST"
			if strings.HasSuffix(path, "collectors") {
				method = "GET"
			}
			if r := e.do(method, path, cert, body, nil); r.code != 401 {
				t.Errorf("%s on %s: %d %s", name, path, r.code, r.raw)
			}
		}
	}
	expect401("no certificate", nil)

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign := func(cn string) *x509.Certificate {
		c, err := e.authority.IssueClient(key.Public(), cn, e.now, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	expect401("unknown machine", sign(certs.CommonName(e.clientID, "6a1f3c9e-0000-4000-8000-000000000001")))
	otherClient := testenv.Client(t, e.pool, "Pro")
	expect401("client/machine mismatch", sign(certs.CommonName(otherClient, e.machineID)))
	otherMachine, otherCert := e.enrol(otherClient, "host-2")
	_ = otherMachine
	// A genuine certificate of another machine, presented with this machine's CN: a
	// different serial, so it is not this machine's record.
	expect401("CN of another machine", sign(certs.CommonName(otherClient, otherMachine)))

	if r := e.post(payload(e.now)); r.code != 200 {
		t.Fatalf("active certificate: %d %s", r.code, r.raw)
	}
	if r := e.do("POST", "/agent/heartbeat", otherCert, body, nil); r.code != 200 {
		t.Fatalf("the other machine's own certificate: %d %s", r.code, r.raw)
	}
	// Revoked: refused from the very next request.
	if _, _, err := certs.Revoke(context.Background(), e.pool, certs.RevokeRequest{ClientID: e.clientID, MachineID: e.machineID,
		Reason: "test"}, e.now); err != nil {
		t.Fatal(err)
	}
	expect401("revoked certificate", e.cert)
	// Superseded: a new certificate for the machine retires the old one.
	_, newCert := e.reissue(otherClient, otherMachine)
	expect401("superseded certificate", otherCert)
	if r := e.do("POST", "/agent/heartbeat", newCert, mustJSON(payload(e.now.Add(-time.Second))), nil); r.code != 200 {
		t.Errorf("renewed certificate: %d %s", r.code, r.raw)
	}
}

// A disabled client's agents are refused with 403 from their next request, and nothing of
// the refused heartbeat is written; a deleted machine is refused like an unknown one.
func TestDisabledClientAndDeletedMachine(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	ctx := context.Background()
	if r := e.post(payload(e.now.Add(-time.Minute))); r.code != 200 {
		t.Fatalf("heartbeat: %d %s", r.code, r.raw)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE clients SET is_active = FALSE WHERE id = $1`, e.clientID); err != nil {
		t.Fatal(err)
	}
	if r := e.post(payload(e.now)); r.code != 403 || !strings.Contains(r.raw, `"forbidden"`) {
		t.Errorf("disabled client's heartbeat: %d %s, want 403", r.code, r.raw)
	}
	if r := e.do("GET", "/agent/config/collectors", e.cert, nil, nil); r.code != 403 {
		t.Errorf("disabled client's config fetch: %d %s, want 403", r.code, r.raw)
	}
	var n int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM metrics WHERE machine_id = $1`, e.machineID).Scan(&n); err != nil || n != 1 {
		t.Errorf("metrics rows after the refused heartbeat: %d (%v), want 1", n, err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE clients SET is_active = TRUE WHERE id = $1`, e.clientID); err != nil {
		t.Fatal(err)
	}
	// As clients.Update does after enabling: the refused heartbeat marked the client
	// disabled for the guard (certs.Marks); enabling drops the mark.
	certs.Marks{Store: cache.Store{Redis: e.core.Redis, Prefix: e.prefix}}.ClientDisabled(ctx, e.clientID, false)
	if r := e.post(payload(e.now)); r.code != 200 {
		t.Errorf("re-enabled client's heartbeat: %d %s", r.code, r.raw)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE machines SET deleted_at = $2 WHERE id = $1`, e.machineID, e.now); err != nil {
		t.Fatal(err)
	}
	if r := e.post(payload(e.now.Add(time.Second))); r.code != 401 {
		t.Errorf("deleted machine's heartbeat: %d %s, want 401", r.code, r.raw)
	}
}

func (e *env) reissue(clientID, machineID string) (string, *x509.Certificate) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is, err := certs.Issue(context.Background(), e.pool, e.authority, certs.IssueRequest{ClientID: clientID, MachineID: machineID,
		PublicKey: key.Public(), Reason: "renewal"}, e.now)
	if err != nil {
		e.t.Fatal(err)
	}
	return machineID, is.Cert
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := setup(t, options{limit: ratelimit.Limit{Burst: 2, Period: time.Minute}})
	for i := range 2 {
		if r := e.post(payload(e.now.Add(-time.Duration(i+1) * time.Second))); r.code != 200 {
			t.Fatalf("heartbeat %d: %d %s", i, r.code, r.raw)
		}
	}
	r := e.post(payload(e.now))
	if r.code != 429 || r.hdr.Get("Retry-After") == "" {
		t.Fatalf("third heartbeat: %d Retry-After %q %s", r.code, r.hdr.Get("Retry-After"), r.raw)
	}
	if got := e.count("metrics"); got != 2 {
		t.Errorf("metrics rows: %d", got)
	}
	if got := heartbeat.RateLimit(); got.Burst != 3000 || got.Period != time.Minute {
		t.Errorf("default limit %+v", got)
	}
}

// Redis down: the limiter falls back in process, the agent version comes from the
// database, and the heartbeat succeeds.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	e := setup(t, options{redis: dead, limit: ratelimit.Limit{Burst: 3, Period: time.Minute}})
	e.publish(nil, "stable", "1.5.0", e.now)
	for i := range 3 {
		r := e.post(payload(e.now.Add(-time.Duration(i+1) * time.Second)))
		if r.code != 200 || r.body["latest_agent_version"] != "1.5.0" {
			t.Fatalf("heartbeat %d with Redis down: %d %s", i, r.code, r.raw)
		}
	}
	if r := e.post(payload(e.now)); r.code != 429 {
		t.Errorf("the in-process limiter did not limit: %d", r.code)
	}
}

func TestAgentVersionFromRedisThenDatabase(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	rc := e.core.Redis
	ctx := context.Background()
	// No version anywhere: the field is omitted.
	if r := e.post(payload(e.now.Add(-3 * time.Second))); r.code != 200 || r.body["latest_agent_version"] != nil {
		t.Fatalf("no version: %s", r.raw)
	}
	_ = rc.Del(ctx, e.prefix+"agent:version:stable")
	e.publish(rc, "stable", "2.0.0", e.now)
	if r := e.post(payload(e.now.Add(-2 * time.Second))); r.body["latest_agent_version"] != "2.0.0" {
		t.Fatalf("version from the database: %s", r.raw)
	}
	ttl := rc.TTL(ctx, e.prefix+"agent:version:stable").Val()
	if ttl <= 4*time.Minute || ttl > 5*time.Minute {
		t.Errorf("Redis TTL %v, want 5 min", ttl)
	}
	// Served from Redis: a value only Redis has wins.
	rc.Set(ctx, e.prefix+"agent:version:stable", "2.0.1-cached", time.Minute)
	if r := e.post(payload(e.now.Add(-time.Second))); r.body["latest_agent_version"] != "2.0.1-cached" {
		t.Errorf("version from Redis: %s", r.raw)
	}
}

func TestCollectorConfigAndConfigChanged(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	ctx := context.Background()
	// Never synced: the configuration counts as changed.
	if r := e.post(payload(e.now.Add(-3 * time.Second))); r.body["config_changed"] != true {
		t.Fatalf("before any sync: %s", r.raw)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE machines SET collector_config = '{"software":{"enabled":false}}', collector_config_updated_at = now() - interval '1 minute' WHERE id = $1`, e.machineID); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/agent/config/collectors", e.cert, nil, nil)
	if r.code != 200 {
		t.Fatalf("collectors: %d %s", r.code, r.raw)
	}
	cfg, _ := r.body["collector_config"].(map[string]any)
	if sw, _ := cfg["software"].(map[string]any); sw["enabled"] != false {
		t.Errorf("config: %s", r.raw)
	}
	var synced *time.Time
	if err := e.pool.QueryRow(ctx, `SELECT last_config_sync FROM machines WHERE id = $1`, e.machineID).Scan(&synced); err != nil {
		t.Fatal(err)
	}
	if synced == nil {
		t.Fatal("last_config_sync not set")
	}
	if r := e.post(payload(e.now.Add(-2 * time.Second))); r.body["config_changed"] != false {
		t.Errorf("after the sync: %s", r.raw)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE machines SET collector_config_updated_at = now() + interval '1 second' WHERE id = $1`, e.machineID); err != nil {
		t.Fatal(err)
	}
	if r := e.post(payload(e.now.Add(-time.Second))); r.body["config_changed"] != true {
		t.Errorf("after a change: %s", r.raw)
	}
}

// counter counts what pgx sends: each batch is one pipeline ending in one Sync, each
// query one round trip.
type counter struct{ batches, queries atomic.Int64 }

func (c *counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	return ctx
}
func (c *counter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *counter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.batches.Add(1)
	return ctx
}
func (c *counter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *counter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

func TestOneRoundTripPerHeartbeat(t *testing.T) {
	t.Parallel()
	c := &counter{}
	e := setup(t, options{tracer: c})
	// Warm up: the first heartbeat loads the client into the instance cache (one query)
	// and prepares the statements on this connection.
	if r := e.post(payload(e.now.Add(-10 * time.Second))); r.code != 200 {
		t.Fatal(r.raw)
	}
	// The handler alone (the guard's revocation check is measured separately below).
	h := e.hb.HandleHeartbeat()
	for i := range 5 {
		c.batches.Store(0)
		c.queries.Store(0)
		req := httptest.NewRequest("POST", "/agent/heartbeat", bytes.NewReader(mustJSON(payload(e.now.Add(-time.Duration(i+1)*time.Second)))))
		req.RemoteAddr = "198.51.100.8:1"
		req = req.WithContext(certs.WithAgent(req.Context(), certs.Agent{ClientID: e.clientID, MachineID: e.machineID, Serial: ca.SerialHex(e.cert.SerialNumber)}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatal(w.Body.String())
		}
		if b, q := c.batches.Load(), c.queries.Load(); b != 1 || q != 0 {
			t.Errorf("heartbeat %d: %d batches and %d queries, want exactly 1 round trip", i, b, q)
		}
	}
	// Through the whole agent handler, guard included: the certificate check heads the
	// batch, so the request is still exactly one round trip.
	c.batches.Store(0)
	c.queries.Store(0)
	if r := e.post(payload(e.now.Add(-20 * time.Second))); r.code != 200 {
		t.Fatal(r.raw)
	}
	if b, q := c.batches.Load(), c.queries.Load(); b != 1 || q != 0 {
		t.Errorf("whole handler: %d batches and %d queries, want exactly 1 round trip", b, q)
	}
}

// The batch is one transaction: a failure after every statement has run — here a deferred
// constraint trigger on the machine row, which fires at the batch's commit — leaves
// nothing, not even the machine row's update.
func TestBatchIsOneTransaction(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	for _, sql := range []string{
		`CREATE FUNCTION test_fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN RAISE EXCEPTION 'injected failure at commit'; END $$`,
		`CREATE CONSTRAINT TRIGGER test_fail_at_commit AFTER UPDATE ON machines
		 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
		 WHEN (NEW.last_seen IS DISTINCT FROM OLD.last_seen) EXECUTE FUNCTION test_fail_at_commit()`,
	} {
		if _, err := e.pool.Exec(context.Background(), sql); err != nil {
			t.Fatal(err)
		}
	}
	r := e.post(payload(e.now))
	if r.code != 500 {
		t.Fatalf("failing batch: %d %s", r.code, r.raw)
	}
	for _, table := range []string{"metrics", "disk_info", "event_logs", "smart_data", "machine_collector_data", "machine_inventory"} {
		if n := e.count(table); n != 0 {
			t.Errorf("%s kept %d rows from a failed batch", table, n)
		}
	}
	var lastSeen *time.Time
	if err := e.pool.QueryRow(context.Background(), `SELECT last_seen FROM machines WHERE id = $1`, e.machineID).Scan(&lastSeen); err != nil {
		t.Fatal(err)
	}
	if lastSeen != nil {
		t.Error("machines.last_seen kept from a failed batch")
	}
}

func TestNextInterval(t *testing.T) {
	for _, c := range []struct {
		cpu, ram float64
		want     int
	}{{80, 85, 60}, {80.01, 0, 30}, {0, 85.01, 30}, {0, 0, 60}} {
		if got := heartbeat.NextInterval(c.cpu, c.ram); got != c.want {
			t.Errorf("NextInterval(%v, %v) = %d", c.cpu, c.ram, got)
		}
	}
	_ = fmt.Sprint()
}

// One clock: every row a heartbeat and a collector-config fetch write carries the
// application's instant (a fixed clock here), never the database server's.
func TestRowsStampedWithTheClock(t *testing.T) {
	t.Parallel()
	at := time.Now().UTC().Add(10 * time.Minute).Truncate(time.Microsecond)
	e := setup(t, options{clock: clock.Fixed(at)})
	ctx := context.Background()
	if r := e.post(payload(at.Add(-time.Minute))); r.code != 200 {
		t.Fatalf("heartbeat: %d %s", r.code, r.raw)
	}
	if r := e.do("GET", "/agent/config/collectors", e.cert, nil, nil); r.code != 200 {
		t.Fatalf("collectors: %d %s", r.code, r.raw)
	}
	e.publish(nil, "beta", "9.9.9", at)
	for what, sql := range map[string]string{
		"machine_inventory.updated_at":      `SELECT min(updated_at) = max(updated_at) AND min(updated_at) = $2 FROM machine_inventory WHERE machine_id = $1`,
		"machine_collector_data.updated_at": `SELECT count(*) > 0 AND min(updated_at) = $2 AND max(updated_at) = $2 FROM machine_collector_data WHERE machine_id = $1`,
		"machines.last_seen":                `SELECT last_seen = $2 FROM machines WHERE id = $1`,
		"machines.last_config_sync":         `SELECT last_config_sync = $2 FROM machines WHERE id = $1`,
		"agent_releases.published_at":       `SELECT published_at = $2 FROM agent_releases WHERE channel = 'beta' AND $1::uuid IS NOT NULL`,
		"machines.heartbeat_due_at":         `SELECT heartbeat_due_at = $2::timestamptz + interval '60 seconds' AND last_metrics_at = $2::timestamptz - interval '1 minute' FROM machines WHERE id = $1`,
	} {
		var ok *bool
		if err := e.pool.QueryRow(ctx, sql, e.machineID, at).Scan(&ok); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok == nil || !*ok {
			t.Errorf("%s is not the clock's %v", what, at)
		}
	}
}
