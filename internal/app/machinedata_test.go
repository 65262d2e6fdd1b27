package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/rollup"
	"github.com/optralis/optralis/internal/series"
	"github.com/optralis/optralis/internal/testenv"
)

// mdFixture is a client of the given tier with a user, an admin and one machine.
type mdFixture struct {
	s                     *stack
	clientID, machineID   string
	userToken, adminToken string
	cert                  *x509.Certificate // the machine's, once enrolled
	agent                 http.Handler
}

func newMDFixture(t *testing.T, s *stack, tier string) *mdFixture {
	t.Helper()
	f := &mdFixture{s: s, clientID: testenv.Client(t, s.d.Pool, tier)}
	f.machineID = testenv.Machine(t, s.d.Pool, f.clientID, "md-"+f.clientID[:8])
	// The fixture's row is stamped by the database's clock; the stack's clock is earlier.
	if _, err := s.d.Pool.Exec(context.Background(), `UPDATE machines SET collector_config_updated_at = $2 WHERE id = $1`,
		f.machineID, s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.userToken = f.session(s.account(f.clientID, principal.RoleUser).ID)
	f.adminToken = f.session(s.account(f.clientID, principal.RoleAdmin).ID)
	return f
}

func (f *mdFixture) session(userID string) string {
	f.s.t.Helper()
	u, err := f.s.d.Auth.UserByID(context.Background(), userID)
	if err != nil {
		f.s.t.Fatal(err)
	}
	is, err := f.s.d.Auth.StartSession(context.Background(), u, auth.Meta{IP: "192.0.2.77"})
	if err != nil {
		f.s.t.Fatal(err)
	}
	return is.AccessToken
}

// get calls path as the client's user and decodes a 200's body into v (when not nil).
func (f *mdFixture) get(path string, v any) (int, string) {
	f.s.t.Helper()
	code, body := call(f.s.h, "GET", path, f.userToken, "")
	if code == 200 && v != nil {
		if err := json.Unmarshal([]byte(body), v); err != nil {
			f.s.t.Fatalf("%s: %v in %s", path, err, body)
		}
	}
	return code, body
}

// badField asserts a 400 naming field.
func (f *mdFixture) badField(method, path, token, body, field string) {
	f.s.t.Helper()
	code, resp := call(f.s.h, method, path, token, body)
	var e struct {
		Error struct {
			Code   string
			Fields map[string]string
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(resp), &e)
	if code != 400 || e.Error.Fields[field] == "" {
		f.s.t.Errorf("%s %s %s: %d %s, want 400 naming %q", method, path, body, code, resp, field)
	}
}

// hourlyMetrics stores one reading at the start of every hour of [from, to) and rolls the
// hours up, as the rollups job does.
func (f *mdFixture) hourlyMetrics(from, to time.Time) {
	f.s.t.Helper()
	ctx := context.Background()
	var rows []series.Metric
	var ids, mounts []string
	var at []time.Time
	var used []float64
	for ts := from; ts.Before(to); ts = ts.Add(time.Hour) {
		lat := float64(ts.Hour())
		rows = append(rows, series.Metric{MachineID: f.machineID, RecordedAt: ts, CPUPercent: float64(ts.Hour()), RAMPercent: 50, LatencyMS: &lat})
		ids, at, mounts, used = append(ids, f.machineID, f.machineID), append(at, ts, ts), append(mounts, "/", "/data"), append(used, 40, 80)
	}
	if _, err := series.InsertMetrics(ctx, f.s.d.Pool, rows); err != nil {
		f.s.t.Fatal(err)
	}
	if _, err := f.s.d.Pool.Exec(ctx, `INSERT INTO disk_info (machine_id, recorded_at, mount_point, used_percent)
		SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::numeric[])`, ids, at, mounts, used); err != nil {
		f.s.t.Fatal(err)
	}
	if err := (rollup.Refresher{Pool: f.s.d.Pool, Mode: "postgres"}).Refresh(ctx, from, to); err != nil {
		f.s.t.Fatal(err)
	}
}

type mdHistory struct {
	MachineID     string           `json:"machine_id"`
	Period        string           `json:"period"`
	From          time.Time        `json:"from"`
	To            time.Time        `json:"to"`
	ClippedFrom   *time.Time       `json:"clipped_from"`
	RetentionDays int              `json:"retention_days"`
	Source        string           `json:"source"`
	Points        []map[string]any `json:"points"`
}

// History routes: periods, explicit windows, the raw fallback, the licence's retention,
// and a 400 naming each bad parameter; unknown, foreign, deleted and malformed ids are 404.
func TestMachineHistoryRoutes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	f := newMDFixture(t, s, "Trial") // 7 days of retention
	now := s.clock.Now()
	f.hourlyMetrics(now.Add(-10*24*time.Hour), now)
	base := "/api/machines/" + f.machineID

	var h mdHistory
	if code, body := f.get(base+"/metrics", &h); code != 200 || h.Period != "24h" || h.Source != "aggregates" || len(h.Points) != 24 ||
		h.MachineID != f.machineID || h.ClippedFrom != nil || h.RetentionDays != 7 || !h.To.Equal(now) {
		t.Fatalf("default window: %d %s", code, body)
	}
	if h.Points[0]["bucket"] != now.Add(-24*time.Hour).Format(time.RFC3339) || h.Points[23]["cpu_avg"] != float64(now.Add(-time.Hour).Hour()) {
		t.Errorf("points: first %v, last %v", h.Points[0], h.Points[23])
	}
	// 30 days on a 7-day licence: clipped to the retention, and said so.
	h = mdHistory{}
	if code, _ := f.get(base+"/metrics?period=30d", &h); code != 200 || h.ClippedFrom == nil ||
		!h.ClippedFrom.Equal(now.Add(-30*24*time.Hour)) || !h.From.Equal(now.AddDate(0, 0, -7)) || len(h.Points) != 7*24 {
		t.Fatalf("30d on Trial: %d %d points, from %v clipped %v", code, len(h.Points), h.From, h.ClippedFrom)
	}
	// An explicit two-hour window: 2 aggregated hours < 5, so the raw readings answer.
	from, to := now.Add(-48*time.Hour), now.Add(-46*time.Hour)
	h = mdHistory{}
	path := base + "/network?from=" + url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339))
	if code, body := f.get(path, &h); code != 200 || h.Source != "raw" || len(h.Points) != 2 || h.Period != "" || !h.From.Equal(from) {
		t.Fatalf("explicit window: %d %s", code, body)
	}
	if h.Points[0]["latency_max"] != float64(from.Hour()) {
		t.Errorf("network point %v", h.Points[0])
	}
	h = mdHistory{}
	if code, body := f.get(base+"/disks?period=6h", &h); code != 200 || h.Source != "aggregates" || len(h.Points) != 12 ||
		h.Points[0]["mount_point"] != "/" || h.Points[1]["usage_max"] != 80.0 {
		t.Fatalf("disks: %d %s", code, body)
	}

	rfc := func(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339)) }
	for _, c := range []struct{ query, field string }{
		{"period=2h", "period"},
		{"period=", "period"},
		{"period=24h&from=" + rfc(from), "period"},
		{"from=" + rfc(from), "to"},
		{"to=" + rfc(to), "from"},
		{"from=yesterday&to=" + rfc(to), "from"},
		{"from=" + rfc(from) + "&to=2026-13-01T00:00:00Z", "to"},
		{"from=" + rfc(to) + "&to=" + rfc(from), "to"},
		{"from=" + rfc(from) + "&to=" + rfc(from), "to"},
		{"from=" + rfc(now.Add(-8*24*time.Hour)) + "&to=" + rfc(now), "from"}, // longer than the retention
	} {
		for _, route := range []string{"/metrics", "/network", "/disks"} {
			f.badField("GET", base+route+"?"+c.query, f.userToken, "", c.field)
		}
	}

	// Not this client's live machine: 404 alike, never 500.
	other := newMDFixture(t, s, "Pro")
	deleted := testenv.Machine(t, s.d.Pool, f.clientID, "gone")
	if _, err := s.d.Pool.Exec(context.Background(), `UPDATE machines SET deleted_at = $2 WHERE id = $1`, deleted, now); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{other.machineID, deleted, "not-a-uuid", "00000000-0000-0000-0000-000000000000"} {
		for _, route := range []string{"/metrics", "/network", "/disks", "/smart", "/events", "/inventory", "/drift", "/collector-config"} {
			if code, body := f.get("/api/machines/"+id+route, nil); code != 404 {
				t.Errorf("%s%s: %d %s", id, route, code, body)
			}
		}
	}
}

// mdPayload is a heartbeat at `at` with two events, SMART for two devices and the
// inventory collectors.
func mdPayload(at time.Time, temp int, events ...map[string]any) []byte {
	evs := []any{}
	for _, e := range events {
		evs = append(evs, e)
	}
	b, _ := json.Marshal(map[string]any{
		"recorded_at": at.Format(time.RFC3339Nano),
		"metrics":     map[string]any{"cpu_percent": 12.5, "ram_percent": 40.0},
		"events":      evs,
		"smart": []any{
			map[string]any{"device": "/dev/sda", "model": "WD", "health_status": "passed", "temperature_c": temp, "reallocated_sectors": temp - 30},
			map[string]any{"device": "/dev/nvme0", "health_status": "warning", "wear_level_percent": 12.5, "attributes": map[string]any{"5": 1}},
		},
		"collectors": map[string]any{
			"security": map[string]any{"antivirus_name": "Defender", "firewall_enabled": true, "ports": []any{map[string]any{"port": 22}},
				"risky_ports": []any{}},
			"services": map[string]any{"services": []any{map[string]any{"name": "sshd", "status": "running"}, map[string]any{"name": "cron", "status": "failed"}}},
			"software": map[string]any{"software": []any{map[string]any{"name": "curl"}}, "users": []any{map[string]any{"name": "root", "admin": true}}},
			"network":  map[string]any{"interfaces": []any{map[string]any{"name": "eth0"}}},
			"storage":  map[string]any{"volumes": 2},
		},
	})
	return b
}

// enrol gives the fixture's machine a certificate and an agent handler.
func (f *mdFixture) enrol() {
	f.s.t.Helper()
	authority, err := ca.LoadOrCreateLocal(f.s.t.TempDir(), f.s.clock.Now().AddDate(-1, 0, 0))
	if err != nil {
		f.s.t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is, err := certs.Issue(context.Background(), f.s.d.Pool, authority, certs.IssueRequest{ClientID: f.clientID, MachineID: f.machineID,
		PublicKey: &key.PublicKey, Reason: "test"}, f.s.clock.Now())
	if err != nil {
		f.s.t.Fatal(err)
	}
	f.cert, f.agent = is.Cert, f.s.d.AgentHandler()
}

// agentCall is an agent request with the machine's certificate.
func (f *mdFixture) agentCall(method, path string, body []byte) map[string]any {
	f.s.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/json")
	r = r.WithContext(identity.WithClientCert(r.Context(), f.cert))
	w := httptest.NewRecorder()
	f.agent.ServeHTTP(w, r)
	var out map[string]any
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &out) != nil {
		f.s.t.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body.String())
	}
	return out
}

func (f *mdFixture) heartbeat(body []byte) map[string]any {
	return f.agentCall("POST", "/agent/heartbeat", body)
}

// SMART, events, inventory and drift of a machine fed by real heartbeats.
func TestMachineSMARTEventsInventoryDrift(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	f := newMDFixture(t, s, "Pro")
	f.enrol()
	base := "/api/machines/" + f.machineID
	t0 := s.clock.Now().Add(-3 * time.Hour)
	ev := func(at time.Time, level, source, msg string) map[string]any {
		return map[string]any{"event_time": at.Add(-time.Minute).Format(time.RFC3339), "log_name": "System", "level": level, "source": source, "message": msg}
	}
	for i := range 3 {
		at := t0.Add(time.Duration(i) * time.Hour)
		f.heartbeat(mdPayload(at, 40+i, ev(at, "error", "Disk", "bad block 100%"), ev(at, "warning", "Kernel", "Low memory")))
	}

	// SMART: the latest reading per device, then one device's hourly history.
	var latest struct {
		Devices []map[string]any `json:"devices"`
	}
	if code, body := f.get(base+"/smart", &latest); code != 200 || len(latest.Devices) != 2 || latest.Devices[1]["device"] != "/dev/sda" ||
		latest.Devices[1]["temperature_c"] != 42.0 || latest.Devices[0]["wear_level_percent"] != 12.5 || latest.Devices[0]["health_status"] != "warning" {
		t.Fatalf("smart latest: %d %s", code, body)
	}
	var hist struct {
		Device string           `json:"device"`
		Period string           `json:"period"`
		Points []map[string]any `json:"points"`
	}
	if code, body := f.get(base+"/smart?device=%2Fdev%2Fsda&period=6h", &hist); code != 200 || hist.Device != "/dev/sda" || len(hist.Points) != 3 ||
		hist.Points[0]["temperature_c"] != 40.0 || hist.Points[2]["reallocated_sectors"] != 12.0 {
		t.Fatalf("smart history: %d %s", code, body)
	}
	if code, body := f.get(base+"/smart?device=nope", &hist); code != 200 || len(hist.Points) != 0 || hist.Period != "24h" {
		t.Fatalf("unknown device: %d %s", code, body)
	}
	f.badField("GET", base+"/smart?period=6h", f.userToken, "", "device")
	f.badField("GET", base+"/smart?device=%2Fdev%2Fsda&period=1y", f.userToken, "", "period")
	f.badField("GET", base+"/smart?device="+strings.Repeat("x", 256), f.userToken, "", "device")
	f.badField("GET", base+"/smart?device=a%00b", f.userToken, "", "device")

	// Events: newest first, filtered, paged with a cursor.
	type page struct {
		Events     []map[string]any `json:"events"`
		NextCursor string           `json:"next_cursor"`
	}
	var p page
	if code, body := f.get(base+"/events", &p); code != 200 || len(p.Events) != 6 || p.NextCursor != "" || p.Events[0]["source"] != "Kernel" {
		t.Fatalf("events: %d %s", code, body)
	}
	var seen []string
	cursor := ""
	for range 4 {
		p = page{}
		path := base + "/events?level=error,WARNING&limit=4"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		if code, body := f.get(path, &p); code != 200 {
			t.Fatalf("page: %d %s", code, body)
		}
		for _, e := range p.Events {
			seen = append(seen, e["recorded_at"].(string)+"/"+e["source"].(string))
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != 6 || seen[0] != t0.Add(2*time.Hour).Format(time.RFC3339)+"/Kernel" || seen[5] != t0.Format(time.RFC3339)+"/Disk" {
		t.Errorf("paged events: %v", seen)
	}
	for query, n := range map[string]int{
		"level=error": 3, "source=Disk": 3, "source=disk": 0, "search=BLOCK%20100%25": 3, "search=_": 0,
		"from=" + url.QueryEscape(t0.Add(59*time.Minute).Format(time.RFC3339)): 4, // event_time is a minute before arrival
		"to=" + url.QueryEscape(t0.Add(59*time.Minute).Format(time.RFC3339)):   2,
	} {
		p = page{}
		if code, body := f.get(base+"/events?"+query, &p); code != 200 || len(p.Events) != n {
			t.Errorf("events?%s: %d events, want %d: %s", query, len(p.Events), n, body)
		}
	}
	for query, field := range map[string]string{
		"level=fatal": "level", "level=error,": "level", "limit=0": "limit", "limit=501": "limit", "limit=ten": "limit",
		"cursor=xyz": "cursor", "cursor=" + "MTIzLi0x": "cursor", "from=now": "from", "to=1": "to",
		"source=" + strings.Repeat("s", 256): "source", "search=" + strings.Repeat("s", 201): "search", "search=%ff": "search",
		"from=2026-05-04T00:00:00Z&to=2026-05-03T00:00:00Z": "to",
	} {
		f.badField("GET", base+"/events?"+query, f.userToken, "", field)
	}

	// Inventory: every section, one section, and sections never reported are null.
	var inv struct {
		UpdatedAt *time.Time                 `json:"updated_at"`
		Sections  map[string]json.RawMessage `json:"sections"`
	}
	if code, body := f.get(base+"/inventory", &inv); code != 200 || len(inv.Sections) != 9 || inv.UpdatedAt == nil ||
		string(inv.Sections["patches"]) != "null" || string(inv.Sections["storage_health"]) != "null" ||
		!strings.Contains(body, `"antivirus_name":"Defender"`) || !strings.Contains(body, `"services_failed":1`) ||
		!strings.Contains(body, `"failed_services":[{"name":"cron","status":"failed"}]`) || !strings.Contains(body, `"users_admin":1`) ||
		!strings.Contains(body, `"ports_open":1`) || !strings.Contains(body, `"network_interfaces":[{"name":"eth0"}]`) ||
		!strings.Contains(body, `"data":{"volumes":2}`) {
		t.Fatalf("inventory: %d %s", code, body)
	}
	inv.Sections = nil
	if code, body := f.get(base+"/inventory?section=users", &inv); code != 200 || len(inv.Sections) != 1 ||
		!strings.Contains(body, `"collected_at":"`+t0.Add(2*time.Hour).Format(time.RFC3339)) {
		t.Fatalf("users section: %d %s", code, body)
	}
	f.badField("GET", base+"/inventory?section=hardware", f.userToken, "", "section")
	// A machine that never reported: every section null, not an error.
	quiet := testenv.Machine(t, s.d.Pool, f.clientID, "quiet")
	if code, body := f.get("/api/machines/"+quiet+"/inventory", nil); code != 200 || !strings.Contains(body, `"updated_at":null`) || strings.Count(body, "null") != 10 {
		t.Fatalf("empty inventory: %d %s", code, body)
	}

	// Drift: empty before the job, then its rows.
	var drift struct {
		Baselines []map[string]any `json:"baselines"`
	}
	if code, body := f.get(base+"/drift", &drift); code != 200 || drift.Baselines == nil || len(drift.Baselines) != 0 {
		t.Fatalf("drift before the job: %d %s", code, body)
	}
	if _, err := s.d.Pool.Exec(context.Background(), `INSERT INTO metric_baselines (machine_id, metric_type, baseline_mean, baseline_stddev,
		baseline_p95, current_value, z_score, drift_detected, drift_severity, drift_explanation, last_updated)
		VALUES ($1, 'cpu_percent', 20, 5, 30, 45, 5, true, 'critical', 'CPU far above its week', $2)`, f.machineID, s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if code, body := f.get(base+"/drift", &drift); code != 200 || len(drift.Baselines) != 1 || drift.Baselines[0]["z_score"] != 5.0 ||
		drift.Baselines[0]["warning_threshold"] != 2.0 || drift.Baselines[0]["drift_severity"] != "critical" {
		t.Fatalf("drift: %d %s", code, body)
	}
}

// The collector configuration loop over HTTP: the dashboard writes it, the agent's next
// heartbeat says config_changed, the agent fetches the effective configuration, and the
// heartbeats after that say nothing changed.
func TestCollectorConfigLoop(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	f := newMDFixture(t, s, "Pro")
	f.enrol()
	ctx := context.Background()
	cfgPath := "/api/machines/" + f.machineID + "/collector-config"
	tick := func() time.Time { s.clock.Advance(time.Second); return s.clock.Now() }
	changed := func() any { return f.heartbeat(mdPayload(tick(), 40))["config_changed"] }
	type entry struct {
		Enabled         *bool `json:"enabled"`
		IntervalSeconds *int  `json:"interval_seconds"`
	}
	var mc struct {
		Own            map[string]entry `json:"own"`
		ClientDefault  map[string]entry `json:"client_default"`
		Effective      map[string]entry `json:"effective"`
		UpdatedAt      time.Time        `json:"updated_at"`
		LastConfigSync *time.Time       `json:"last_config_sync"`
		Pending        bool             `json:"pending"`
	}
	if code, body := f.get(cfgPath, &mc); code != 200 || len(mc.Own) != 0 || len(mc.Effective) != 9 || !mc.Pending || mc.LastConfigSync != nil ||
		*mc.Effective["software"].IntervalSeconds != 86400 || !*mc.Effective["events"].Enabled {
		t.Fatalf("initial: %d %s", code, body)
	}
	if changed() != true {
		t.Fatal("never synced: config_changed should be true")
	}
	fetched := f.agentCall("GET", "/agent/config/collectors", nil)
	if cfg := fetched["collector_config"].(map[string]any); len(cfg) != 9 {
		t.Fatalf("agent config: %v", fetched)
	}
	if changed() != false {
		t.Fatal("after the fetch: config_changed should be false")
	}

	// A user overrides two collectors of this machine.
	tick()
	code, body := call(s.h, "PUT", cfgPath, f.userToken, `{"software":{"enabled":false},"services":{"interval_seconds":120}}`)
	if code != 200 || !strings.Contains(body, `"pending":true`) {
		t.Fatalf("put: %d %s", code, body)
	}
	if changed() != true {
		t.Fatal("after the change: config_changed should be true")
	}
	if changed() != true {
		t.Fatal("until the agent fetches it, config_changed stays true")
	}
	fetched = f.agentCall("GET", "/agent/config/collectors", nil)
	cfg := fetched["collector_config"].(map[string]any)
	if sw := cfg["software"].(map[string]any); sw["enabled"] != false || sw["interval_seconds"] != 86400.0 {
		t.Errorf("software: %v", sw)
	}
	if sv := cfg["services"].(map[string]any); sv["enabled"] != true || sv["interval_seconds"] != 120.0 {
		t.Errorf("services: %v", sv)
	}
	if changed() != false {
		t.Fatal("after the second fetch: config_changed should be false")
	}

	// The client admin sets the client's default: every agent of the client sees it, and
	// the machine's own entries still win field by field.
	tick()
	f.badField("PUT", "/api/client/collector-config", f.adminToken, `{"services":{"interval_seconds":10}}`, "services.interval_seconds")
	if code, _ := call(s.h, "PUT", "/api/client/collector-config", f.userToken, `{}`); code != 403 {
		t.Errorf("a user setting the client default: %d", code)
	}
	code, body = call(s.h, "PUT", "/api/client/collector-config", f.adminToken, `{"services":{"enabled":false,"interval_seconds":600},"patches":{"interval_seconds":3600}}`)
	if code != 200 || !strings.Contains(body, `"patches":{"enabled":true,"interval_seconds":3600}`) {
		t.Fatalf("client put: %d %s", code, body)
	}
	if changed() != true {
		t.Fatal("after the client default changed: config_changed should be true")
	}
	mc.Own = nil
	if code, body := f.get(cfgPath, &mc); code != 200 || !mc.Pending || *mc.Effective["services"].Enabled || *mc.Effective["services"].IntervalSeconds != 120 ||
		*mc.Effective["patches"].IntervalSeconds != 3600 || len(mc.Own) != 2 || len(mc.ClientDefault) != 2 {
		t.Fatalf("merged: %d %s", code, body)
	}
	fetched = f.agentCall("GET", "/agent/config/collectors", nil)
	if sv := fetched["collector_config"].(map[string]any)["services"].(map[string]any); sv["enabled"] != false || sv["interval_seconds"] != 120.0 {
		t.Errorf("agent's services: %v", sv)
	}
	if changed() != false {
		t.Fatal("after the third fetch: config_changed should be false")
	}
	if code, body := f.get(cfgPath, &mc); code != 200 || mc.Pending || mc.LastConfigSync == nil {
		t.Fatalf("synced: %d %s", code, body)
	}
	if code, body := f.get("/api/client/collector-config", nil); code != 200 || !strings.Contains(body, `"updated_at":"`) {
		t.Fatalf("client get: %d %s", code, body)
	}

	// Strict validation, each problem named.
	for body, field := range map[string]string{
		`{"hardware":{"enabled":true}}`:             "hardware",
		`{"software":{"enable":true}}`:              "software.enable",
		`{"software":{"enabled":"yes"}}`:            "software.enabled",
		`{"software":{"enabled":null}}`:             "software.enabled",
		`{"software":{"interval_seconds":29}}`:      "software.interval_seconds",
		`{"software":{"interval_seconds":86401}}`:   "software.interval_seconds",
		`{"software":{"interval_seconds":60.5}}`:    "software.interval_seconds",
		`{"software":{"interval_seconds":"60"}}`:    "software.interval_seconds",
		`{"software":{}}`:                           "software",
		`{"software":true}`:                         "software",
		`{"metrics":{"enabled":false}}`:             "metrics.enabled",
		`{"events":{"enabled":true},"x":{},"y":{}}`: "y",
	} {
		f.badField("PUT", cfgPath, f.userToken, body, field)
	}
	for _, body := range []string{``, `null`, `[]`, `{"a":1} {}`, `{`} {
		if code, resp := call(s.h, "PUT", cfgPath, f.userToken, body); code != 400 {
			t.Errorf("body %q: %d %s", body, code, resp)
		}
	}
	if code, _ := call(s.h, "PUT", cfgPath, f.userToken, `{"software":{"enabled":true,"pad":"`+strings.Repeat("x", 17<<10)+`"}}`); code != 413 {
		t.Errorf("oversized body: %d", code)
	}

	// Every write is audited; the machine's overrides can be cleared.
	if code, body := call(s.h, "PUT", cfgPath, f.userToken, `{}`); code != 200 || !strings.Contains(body, `"own":{}`) {
		t.Fatalf("clear: %d %s", code, body)
	}
	var n int
	if err := s.d.Pool.QueryRow(ctx, `SELECT count(*) FROM activity_logs WHERE client_id = $1 AND action IN
		('machine_collector_config_updated', 'client_collector_config_updated')`, f.clientID).Scan(&n); err != nil || n != 3 {
		t.Errorf("%d audit entries (%v), want 3", n, err)
	}
}

// The read routes need no Redis: with the cache down they answer as usual.
func TestMachineDataWithRedisDown(t *testing.T) {
	t.Parallel()
	s := newStack(t, withoutRedis(authtest.DownRedis()))
	f := newMDFixture(t, s, "Pro")
	f.hourlyMetrics(s.clock.Now().Add(-12*time.Hour), s.clock.Now())
	for _, route := range []string{"/metrics?period=6h", "/network", "/disks", "/smart", "/events", "/inventory", "/drift", "/collector-config"} {
		if code, body := f.get("/api/machines/"+f.machineID+route, nil); code != 200 {
			t.Errorf("%s with Redis down: %d %s", route, code, body)
		}
	}
}
