package heartbeat_test

import (
	"context"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

// An agent cannot help what it collects: NUL (\u0000), unpaired surrogates and invalid
// UTF-8 in collector snapshots and SMART attributes are stored as U+FFFD, not a 500.
func TestBadBytesInCollectedJSONAreStored(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	at := e.now.Add(-10 * time.Second)
	p := payload(at)
	b, _ := json.Marshal(p)
	// Splice hostile strings into the raw body (json.Marshal would escape them).
	body := strings.Replace(string(b), `"eth0"`, `"eth\u0000\ud800`+"\xff"+`"`, 1)
	body = strings.Replace(body, `"attributes":{"5":0}`, `"attributes":{"5":0,"name\u0000":"x`+"\xc3"+`"}`, 1)
	if !strings.Contains(body, `\u0000\ud800`) || !strings.Contains(body, `"name\u0000"`) {
		t.Fatalf("splice failed: %s", body)
	}
	r := e.do("POST", "/agent/heartbeat", e.cert, []byte(body), nil)
	if r.code != 200 {
		t.Fatalf("heartbeat: %d %s", r.code, r.raw)
	}
	ctx := context.Background()
	var nw, attrs string
	if err := e.pool.QueryRow(ctx, `SELECT data->'interfaces'->0->>'name' FROM machine_collector_data WHERE machine_id = $1 AND collector = 'network'`,
		e.machineID).Scan(&nw); err != nil {
		t.Fatal(err)
	}
	if nw != "eth\uFFFD\uFFFD\uFFFD" {
		t.Errorf("network snapshot name = %q", nw)
	}
	if err := e.pool.QueryRow(ctx, `SELECT attributes->>('name'||chr(65533)) FROM smart_data WHERE machine_id = $1`, e.machineID).Scan(&attrs); err != nil {
		t.Fatal(err)
	}
	if attrs != "x\uFFFD" {
		t.Errorf("SMART attribute = %q", attrs)
	}
	// Inventory read from the sanitised snapshot too.
	var ifaces string
	if err := e.pool.QueryRow(ctx, `SELECT network_interfaces->0->>'name' FROM machine_inventory WHERE machine_id = $1`, e.machineID).Scan(&ifaces); err != nil {
		t.Fatal(err)
	}
	if ifaces != nw {
		t.Errorf("inventory interface = %q", ifaces)
	}
	// Nesting beyond the bound is the agent's bug: 400 naming the collector.
	p = payload(at.Add(time.Second))
	deep := any(map[string]any{})
	for i := 0; i < 100; i++ {
		deep = []any{deep}
	}
	p["collectors"].(map[string]any)["storage"] = map[string]any{"x": deep}
	if r := e.post(p); r.code != 400 || r.fields()["collectors.storage"] == nil {
		t.Errorf("deep collector: %d %s", r.code, r.raw)
	}
}

// smartctl prints PASSED / FAILED! / OK: normalised, not refused.
func TestSMARTHealthWordsAreNormalised(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	for i, c := range []struct{ sent, stored string }{
		{"PASSED", "passed"}, {"Passed", "passed"}, {"OK", "passed"}, {"FAILED!", "failed"}, {" Failed ", "failed"},
		{"FAILING_NOW", "failed"}, {"Pre-fail", "warning"}, {"WARNING", "warning"}, {"something else", "unknown"}, {"", "unknown"},
	} {
		at := e.now.Add(-time.Duration(i+1) * time.Second)
		p := payload(at)
		p["smart"].([]any)[0].(map[string]any)["health_status"] = c.sent
		if r := e.post(p); r.code != 200 {
			t.Errorf("%q: %d %s", c.sent, r.code, r.raw)
			continue
		}
		var got string
		if err := e.pool.QueryRow(context.Background(), `SELECT health_status FROM smart_data WHERE machine_id = $1 AND recorded_at = $2`,
			e.machineID, at).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != c.stored {
			t.Errorf("%q stored as %q, want %q", c.sent, got, c.stored)
		}
	}
}

// A heartbeat is all or nothing: a different body with an already-recorded recorded_at
// answers 200 and writes nothing (no new disk, event or SMART row, no snapshot, inventory
// or last CPU change), exactly like a retry.
func TestConflictingHeartbeatWritesNothing(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	at := e.now.Add(-10 * time.Second)
	if r := e.post(payload(at)); r.code != 200 {
		t.Fatalf("first: %d %s", r.code, r.raw)
	}
	ctx := context.Background()
	snapshot := func() string {
		var s string
		if err := e.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM metrics WHERE machine_id = $1)::text || '|' ||
			(SELECT count(*) FROM disk_info WHERE machine_id = $1) || '|' ||
			(SELECT count(*) FROM event_logs WHERE machine_id = $1) || '|' ||
			(SELECT count(*) FROM smart_data WHERE machine_id = $1) || '|' ||
			(SELECT string_agg(collector || data::text, ',' ORDER BY collector) FROM machine_collector_data WHERE machine_id = $1) || '|' ||
			(SELECT row(i.*)::text FROM machine_inventory i WHERE machine_id = $1) || '|' ||
			(SELECT last_cpu_percent::text || last_ram_percent::text FROM machines WHERE id = $1) || '|' ||
			(SELECT string_agg(mount_point || used_percent::text, ',') FROM disk_info WHERE machine_id = $1)`, e.machineID).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := snapshot()
	p := payload(at)
	p["metrics"].(map[string]any)["cpu_percent"] = 99.0
	p["disks"] = append(p["disks"].([]any), map[string]any{"mount_point": `E:\`, "used_percent": 1.0})
	p["disks"].([]any)[0].(map[string]any)["used_percent"] = 99.0
	p["events"] = append(p["events"].([]any), map[string]any{"event_time": at.Format(time.RFC3339), "message": "new"})
	p["smart"] = append(p["smart"].([]any), map[string]any{"device": "/dev/sdb", "health_status": "failed"})
	p["collectors"].(map[string]any)["storage"] = map[string]any{"disks": 3}
	p["collectors"].(map[string]any)["patches"] = map[string]any{"pending_updates": 40}
	if r := e.post(p); r.code != 200 {
		t.Fatalf("conflicting body: %d %s", r.code, r.raw)
	}
	if after := snapshot(); after != before {
		t.Errorf("a conflicting heartbeat wrote:\nbefore %s\nafter  %s", before, after)
	}
	// The next instant is a new heartbeat: it writes.
	if r := e.post(p2(p, at.Add(time.Second))); r.code != 200 {
		t.Fatalf("next: %d %s", r.code, r.raw)
	}
	if n := e.count("disk_info"); n != 5 {
		t.Errorf("disk rows after the next heartbeat: %d, want 5", n)
	}
}

func p2(p map[string]any, at time.Time) map[string]any {
	p["recorded_at"] = at.Format(time.RFC3339Nano)
	return p
}

// The same in timescale mode (hypertables): the conditional writes and the sanitised
// JSON behave as in postgres mode.
func TestAllOrNothingAndBadBytesInTimescaleMode(t *testing.T) {
	t.Parallel()
	e := setup(t, options{timescale: true})
	at := e.now.Add(-10 * time.Second)
	p := payload(at)
	p["smart"].([]any)[0].(map[string]any)["health_status"] = "PASSED"
	b, _ := json.Marshal(p)
	body := strings.Replace(string(b), `"eth0"`, `"eth\u0000`+"\xff"+`"`, 1)
	if r := e.do("POST", "/agent/heartbeat", e.cert, []byte(body), nil); r.code != 200 {
		t.Fatalf("heartbeat: %d %s", r.code, r.raw)
	}
	p["disks"] = append(p["disks"].([]any), map[string]any{"mount_point": `E:\`})
	p["metrics"].(map[string]any)["cpu_percent"] = 99.0
	if r := e.post(p); r.code != 200 {
		t.Fatalf("conflicting body: %d %s", r.code, r.raw)
	}
	want := map[string]int{"metrics": 1, "disk_info": 2, "event_logs": 3, "smart_data": 1}
	for table, n := range want {
		if got := e.count(table); got != n {
			t.Errorf("%s: %d rows, want %d", table, got, n)
		}
	}
	var name, health string
	if err := e.pool.QueryRow(context.Background(), `SELECT (SELECT data->'interfaces'->0->>'name' FROM machine_collector_data
		WHERE machine_id = $1 AND collector = 'network'), (SELECT health_status FROM smart_data WHERE machine_id = $1)`,
		e.machineID).Scan(&name, &health); err != nil {
		t.Fatal(err)
	}
	if name != "eth\uFFFD\uFFFD" || health != "passed" {
		t.Errorf("stored name %q health %q", name, health)
	}
}
