package machines_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/machines"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

func TestDetails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := e.machine(e.client, "web-01")
	g := e.group(e.client, "Web")
	e.exec(`INSERT INTO machine_group_members (client_id, machine_id, group_id, created_at) VALUES ($1, $2, $3, $4)`, e.client, id, g, t0)
	e.exec(`UPDATE machines SET last_seen = $2, heartbeat_due_at = $3, last_cpu_percent = 91, last_ram_percent = 40, fingerprint_hash = 'f',
		cert_serial = 'abc', cert_issued_at = $4, cert_expires_at = $5 WHERE id = $1`,
		id, t0.Add(-10*time.Second), t0.Add(20*time.Second), t0.AddDate(0, -11, 0), t0.AddDate(0, 0, 20))
	// Two heartbeats: the newest one's metrics and disks answer.
	for i, at := range []time.Time{t0.Add(-70 * time.Second), t0.Add(-10 * time.Second)} {
		e.exec(`INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent, cpu_temp) VALUES ($1, $2, $3, 40, 55.5)`, id, at, 50+41*i)
		e.exec(`INSERT INTO disk_info (machine_id, recorded_at, mount_point, total_gb, used_gb, used_percent) VALUES
			($1, $2, '/', 100, $3, $3), ($1, $2, '/data', 500, 50, 10)`, id, at, 10+i)
	}
	e.exec(`INSERT INTO machine_inventory (machine_id, antivirus_name, firewall_enabled, software_count, software_details, pending_updates, reboot_required)
		VALUES ($1, 'Defender', true, 42, '[{"name":"vim"}]', 3, false)`, id)
	e.exec(`INSERT INTO metric_baselines (machine_id, metric_type, baseline_mean, current_value, z_score, drift_detected, drift_severity, last_updated) VALUES
		($1, 'cpu_percent', 20, 91, 3.5, true, 'critical', $2), ($1, 'ram_percent', 40, 40, 0, false, NULL, $2)`, id, t0)

	a := e.call(e.me, "GET", "/api/machines/"+id, "")
	var d machines.Details
	a.json(&d)
	m := d.Machine
	if a.Code != 200 || m.ID != id || m.Status != machines.StatusAlert || !m.FingerprintRegistered || len(m.Groups) != 1 || m.Groups[0].Name != "Web" {
		t.Fatalf("machine: %d %s", a.Code, a.Body)
	}
	if d.Certificate.Status != certs.StatusExpiring || d.Certificate.DaysRemaining == nil || *d.Certificate.DaysRemaining != 20 {
		t.Fatalf("certificate: %+v", d.Certificate)
	}
	if d.LatestMetrics == nil || d.LatestMetrics.CPUPercent != 91 || !d.LatestMetrics.RecordedAt.Equal(t0.Add(-10*time.Second)) {
		t.Fatalf("latest metrics: %+v", d.LatestMetrics)
	}
	if len(d.Disks) != 2 || d.Disks[0].MountPoint != "/" || *d.Disks[0].UsedPercent != 11 || !d.Disks[1].RecordedAt.Equal(t0.Add(-10*time.Second)) {
		t.Fatalf("disks: %+v", d.Disks)
	}
	if d.Inventory == nil || *d.Inventory.AntivirusName != "Defender" || *d.Inventory.SoftwareCount != 42 || d.Inventory.ServicesTotal != nil {
		t.Fatalf("inventory: %+v", d.Inventory)
	}
	if strings.Contains(a.Body, "vim") {
		t.Fatal("the details carry the software list")
	}
	if len(d.Drift) != 1 || d.Drift[0].MetricType != "cpu_percent" || *d.Drift[0].ZScore != 3.5 || *d.Drift[0].Severity != "critical" {
		t.Fatalf("drift: %+v", d.Drift)
	}

	// A machine without reports: nulls and empty lists, not errors.
	bare := e.machine(e.client, "bare")
	a = e.call(e.me, "GET", "/api/machines/"+bare, "")
	if a.Code != 200 || !strings.Contains(a.Body, `"latest_metrics":null`) || !strings.Contains(a.Body, `"disks":[]`) ||
		!strings.Contains(a.Body, `"inventory":null`) || !strings.Contains(a.Body, `"drift":[]`) || !strings.Contains(a.Body, `"status":"unknown"`) {
		t.Fatalf("bare machine: %d %s", a.Code, a.Body)
	}

	// 404: unknown, malformed, another client's, deleted.
	other := e.machine(testenv.Client(t, e.pool, "Pro"), "other")
	gone := e.machine(e.client, "gone")
	e.exec(`UPDATE machines SET deleted_at = $2 WHERE id = $1`, gone, t0)
	for _, bad := range []string{uuid.NewString(), "nope", id + "0", other, gone} {
		if a := e.call(e.me, "GET", "/api/machines/"+bad, ""); a.Code != 404 {
			t.Errorf("GET %s: %d %s", bad, a.Code, a.Body)
		}
	}
}

func TestPatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := e.machine(e.client, "web-01")
	g1, g2 := e.group(e.client, "One"), e.group(e.client, "Two")
	foreign := e.group(testenv.Client(t, e.pool, "Pro"), "Foreign")
	user := e.user(e.client, principal.RoleUser)
	patch := func(body string) answer { return e.call(user, "PATCH", "/api/machines/"+id, body) }

	a := patch(`{"display_name":"  Front  ","notes":"line 1\nline 2","group_ids":["` + g1 + `","` + strings.ToUpper(g2) + `","` + g1 + `"]}`)
	var d machines.Details
	a.json(&d)
	if a.Code != 200 || *d.Machine.DisplayName != "Front" || d.Machine.Notes != "line 1\nline 2" || len(d.Machine.Groups) != 2 {
		t.Fatalf("patch: %d %s", a.Code, a.Body)
	}
	// Absent fields are kept; "" clears the name; the groups are replaced.
	patch(`{"display_name":"","group_ids":["` + g2 + `"]}`).json(&d)
	if d.Machine.DisplayName != nil || d.Machine.Notes != "line 1\nline 2" || len(d.Machine.Groups) != 1 || d.Machine.Groups[0].ID != g2 {
		t.Fatalf("second patch: %+v", d.Machine)
	}
	patch(`{"group_ids":[]}`).json(&d)
	if len(d.Machine.Groups) != 0 {
		t.Fatalf("groups not cleared: %+v", d.Machine.Groups)
	}
	if a := patch(`{}`); a.Code != 200 {
		t.Fatalf("empty patch: %d %s", a.Code, a.Body)
	}
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM activity_logs WHERE client_id = $1 AND machine_id = $2
		AND action = 'machine_updated' AND user_id = $3 AND created_at = $4`, e.client, id, user.UserID, t0).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d audit entries (%v), want 3", n, err)
	}

	for body, field := range map[string]string{
		`{"display_name":"` + strings.Repeat("x", 256) + `"}`:     "display_name",
		`{"display_name":"a\u0007b"}`:                             "display_name",
		`{"notes":"` + strings.Repeat("n", 10001) + `"}`:          "notes",
		`{"notes":"a\u0000"}`:                                     "notes",
		`{"group_ids":["` + foreign + `"]}`:                       "group_ids",
		`{"group_ids":["` + g1 + `","` + uuid.NewString() + `"]}`: "group_ids",
		`{"group_ids":["nope"]}`:                                  "group_ids",
	} {
		if a := patch(body); a.Code != 400 || a.fields()[field] == "" {
			t.Errorf("%.60s: %d %s, want 400 naming %s", body, a.Code, a.Body, field)
		}
	}
	for _, body := range []string{`{"hostname":"x"}`, `[]`, `{"notes":1}`, ``} {
		if a := patch(body); a.Code != 400 {
			t.Errorf("%s: %d %s", body, a.Code, a.Body)
		}
	}
	if a := patch(`{"notes":"` + strings.Repeat("é", 10000) + `"}`); a.Code != 200 {
		t.Fatalf("10,000 characters of notes: %d", a.Code)
	}
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM machine_group_members WHERE group_id = $1`, foreign).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a foreign group gained %d members", n)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	id := e.machine(e.client, "web-01")
	g := e.group(e.client, "Web")
	e.exec(`INSERT INTO machine_group_members (client_id, machine_id, group_id, created_at) VALUES ($1, $2, $3, $4)`, e.client, id, g, t0)
	e.exec(`INSERT INTO client_certificates (client_id, machine_id, serial, issued_at, expires_at) VALUES ($1, $2, 'serial-1', $3, $4)`,
		e.client, id, t0.Add(-time.Hour), t0.AddDate(1, 0, 0))
	agent := certs.Agent{ClientID: e.client, MachineID: id, Serial: "serial-1"}
	assert := func() error {
		sql, args := certs.AssertActive(agent, t0)
		_, err := e.pool.Exec(context.Background(), sql, args...)
		return err
	}
	if err := assert(); err != nil {
		t.Fatalf("agent refused before the delete: %v", err)
	}
	noCert := e.machine(e.client, "never-enrolled")

	if a := e.call(e.me, "DELETE", "/api/machines/"+id, ""); a.Code != 204 {
		t.Fatalf("delete: %d %s", a.Code, a.Body)
	}
	var deletedAt, revokedAt time.Time
	var members, audits int
	if err := e.pool.QueryRow(context.Background(), `SELECT m.deleted_at, c.revoked_at,
		(SELECT count(*) FROM machine_group_members WHERE machine_id = m.id),
		(SELECT count(*) FROM activity_logs WHERE machine_id = m.id AND action IN ('machine_deleted', 'certificate_revoked') AND created_at = $2)
		FROM machines m JOIN client_certificates c ON c.machine_id = m.id WHERE m.id = $1`, id, t0).
		Scan(&deletedAt, &revokedAt, &members, &audits); err != nil {
		t.Fatal(err)
	}
	if !deletedAt.Equal(t0) || !revokedAt.Equal(t0) || members != 0 || audits != 2 {
		t.Fatalf("deleted %v, revoked %v, %d memberships, %d audit entries", deletedAt, revokedAt, members, audits)
	}
	if err := assert(); db.Code(err) != db.AgentRefused {
		t.Fatalf("agent of a deleted machine: %v", err)
	}
	// Gone from details, the list and the overview; a second delete is a 404.
	if a := e.call(e.me, "GET", "/api/machines/"+id, ""); a.Code != 404 {
		t.Fatalf("details after delete: %d", a.Code)
	}
	if a := e.call(e.me, "DELETE", "/api/machines/"+id, ""); a.Code != 404 {
		t.Fatalf("second delete: %d", a.Code)
	}
	if p := e.list(""); len(p.Machines) != 1 || p.Machines[0].ID != noCert {
		t.Fatalf("list after delete: %+v", p)
	}
	// A machine that never had a certificate is deleted all the same.
	if a := e.call(e.me, "DELETE", "/api/machines/"+noCert, ""); a.Code != 204 {
		t.Fatalf("delete without certificate: %d %s", a.Code, a.Body)
	}
	// Another client's machine: 404, untouched.
	other := e.machine(testenv.Client(t, e.pool, "Pro"), "other")
	if a := e.call(e.me, "DELETE", "/api/machines/"+other, ""); a.Code != 404 {
		t.Fatalf("delete another client's machine: %d", a.Code)
	}
}

func TestOverview(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.exec(`UPDATE clients SET license_tier = 'Business', max_machines = 25, license_expires_at = $2 WHERE id = $1`,
		e.client, t0.Add(10*24*time.Hour+time.Hour))
	set := func(host string, seen bool, cpu float64, expires *time.Time, revoked bool) {
		id := e.machine(e.client, host)
		if seen {
			e.exec(`UPDATE machines SET last_seen = $2::timestamptz, heartbeat_due_at = $2::timestamptz + interval '60 seconds', last_cpu_percent = $3 WHERE id = $1`, id, t0, cpu)
		}
		if expires != nil {
			e.exec(`UPDATE machines SET cert_serial = 's', cert_expires_at = $2::timestamptz, cert_revoked_at = CASE WHEN $3 THEN $2::timestamptz END WHERE id = $1`, id, *expires, revoked)
		}
	}
	set("online-1", true, 10, ptr(t0.AddDate(1, 0, 0)), false)
	set("online-2", true, 10, ptr(t0.AddDate(0, 0, 5)), false) // expiring
	set("alert", true, 95, ptr(t0.Add(-time.Hour)), false)     // expired
	set("offline", false, 0, ptr(t0.AddDate(1, 0, 0)), true)   // revoked
	set("deleted", true, 10, ptr(t0.AddDate(0, 0, 5)), false)
	e.exec(`UPDATE machines SET deleted_at = $1 WHERE hostname = 'deleted'`, t0)
	e.group(e.client, "A")
	e.group(e.client, "B")
	other := testenv.Client(t, e.pool, "Pro")
	e.machine(other, "other")
	e.group(other, "C")

	var o machines.Overview
	a := e.call(e.me, "GET", "/api/overview", "")
	a.json(&o)
	m, c, l := o.Machines, o.Certificates, o.Licence
	if a.Code != 200 || m.Total != 4 || m.Online != 2 || m.Alert != 1 || m.Offline != 1 || c.Expiring != 1 || c.Expired != 1 || c.Revoked != 1 ||
		l.Tier != "Business" || l.MaxMachines != 25 || l.Used != 4 || l.DaysLeft == nil || *l.DaysLeft != 10 || o.Groups != 2 {
		t.Fatalf("overview: %d %s", a.Code, a.Body)
	}
	if n, err := e.store.Redis.Get(t.Context(), e.store.Key("machines:count:"+e.client)).Int(); err != nil || n != 4 {
		t.Fatalf("machines:count not filled: %d %v", n, err)
	}
}
