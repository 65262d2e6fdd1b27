package heartbeat

import (
	"strings"
)

// The group's statements. Every one takes column arrays (unnest) or a JSON array of rows
// (jsonb_to_recordset) with an ord column, the item's position in the group (1-based), so
// one statement writes the rows of every heartbeat of the group.
//
// The group is one transaction (a pgx batch: one Sync, one round trip). The check
// (statement 1) records in a transaction-local setting the ords it accepted
// (optralis.hb_ok): a refused heartbeat (revoked certificate, disabled client, licence
// over) writes nothing while its neighbours commit. The metrics insert (statement 2)
// records the ords whose (machine, recorded_at) row was new (optralis.hb_new); every later
// write of series rows, collector snapshots and inventory takes only those. So a heartbeat
// whose (machine, recorded_at) is already recorded — in an earlier group or earlier in
// this one — writes no series or inventory at all: an idempotent retry adds nothing, and
// a different body sent with an already-recorded recorded_at is not merged into the first
// one. It answers 200 like a retry (the agent resent or re-dated it; a 409 would only make
// it resend again) and is logged. The machine still counts as seen (last_seen,
// heartbeat_due_at, agent version, address), at most every TouchEvery when nothing else
// changed.
const (
	// checkGroup runs the active-certificate and licence rules (migrations/00015) for
	// each item and reads what the answer needs: whether the collector configuration (the
	// machine's or its client's default) changed since the agent last fetched it, the
	// channel's agent version (only when asked), and the licence expiry.
	checkGroup = `
WITH chk AS (
	SELECT x.ord, COALESCE(a.code, l.code) AS code, COALESCE(a.reason, l.reason) AS reason,
	    GREATEST(m.collector_config_updated_at, c.collector_config_updated_at) > COALESCE(m.last_config_sync, '-infinity'::timestamptz) AS changed,
	    CASE WHEN x.want THEN (SELECT r.version FROM agent_releases r WHERE r.channel = c.agent_channel) END AS version,
	    c.license_expires_at
	FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::bool[]) WITH ORDINALITY AS x (serial, client, machine, now, want, ord)
	CROSS JOIN LATERAL optralis_agent_refusal(x.serial, x.client, x.machine, x.now) a
	CROSS JOIN LATERAL optralis_licence_refusal(x.client, x.now, make_interval(days => $6::int)) l
	LEFT JOIN machines m ON m.id = x.machine AND m.client_id = x.client
	LEFT JOIN clients c ON c.id = x.client
), ok AS (
	SELECT set_config('optralis.hb_ok', COALESCE(array_agg(ord) FILTER (WHERE code IS NULL), '{}')::text, true) AS s FROM chk
)
SELECT chk.ord, chk.code, chk.reason, COALESCE(chk.changed, false), chk.version, chk.license_expires_at
FROM chk CROSS JOIN ok ORDER BY chk.ord`

	accepted = `current_setting('optralis.hb_ok')::int8[]`
	fresh    = `current_setting('optralis.hb_new')::int8[]`

	// insertGroupMetrics inserts the accepted items' metrics (the first of a repeated
	// (machine, recorded_at) in the group) and returns the ords that were new.
	insertGroupMetrics = `
WITH x AS (
	SELECT * FROM unnest($1::int8[], $2::uuid[], $3::timestamptz[], $4::float8[], $5::float8[], $6::int8[], $7::int8[],
	    $8::float8[], $9::int8[], $10::int8[], $11::float8[], $12::float8[], $13::float8[], $14::int8[], $15::int4[])
	    AS x (ord, machine_id, recorded_at, cpu_percent, ram_percent, ram_used_bytes, ram_total_bytes, cpu_temp, bytes_recv,
	    bytes_sent, packet_loss, latency_ms, disk_latency_ms, uptime_seconds, process_count)
	WHERE x.ord = ANY (` + accepted + `)
), ins AS (
	INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent, ram_used_bytes, ram_total_bytes, cpu_temp,
	    bytes_recv, bytes_sent, packet_loss, latency_ms, disk_latency_ms, uptime_seconds, process_count)
	SELECT DISTINCT ON (machine_id, recorded_at) machine_id, recorded_at, cpu_percent, ram_percent, ram_used_bytes,
	    ram_total_bytes, cpu_temp, bytes_recv, bytes_sent, packet_loss, latency_ms, disk_latency_ms, uptime_seconds, process_count
	FROM x ORDER BY machine_id, recorded_at, ord
	ON CONFLICT (machine_id, recorded_at) DO NOTHING
	RETURNING machine_id, recorded_at
)
SELECT set_config('optralis.hb_new', COALESCE((SELECT array_agg(n.o) FROM (SELECT min(x.ord) AS o FROM x JOIN ins USING (machine_id, recorded_at)
    GROUP BY x.machine_id, x.recorded_at) n), '{}')::text, true)::int8[]`

	insertGroupDisks = `
INSERT INTO disk_info (machine_id, recorded_at, mount_point, device, fs_type, total_gb, used_gb, used_percent, model, interface)
SELECT m, r, mp, d, f, t, u, p, mo, i FROM unnest($1::int8[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
    $7::numeric[], $8::numeric[], $9::numeric[], $10::text[], $11::text[]) AS x (ord, m, r, mp, d, f, t, u, p, mo, i)
WHERE x.ord = ANY (` + fresh + `)
ON CONFLICT (machine_id, recorded_at, mount_point) DO NOTHING`

	insertGroupEvents = `
INSERT INTO event_logs (machine_id, recorded_at, seq, event_time, log_name, source, event_id, level, message)
SELECT m, r, s, t, ln, so, ei, lv, msg FROM unnest($1::int8[], $2::uuid[], $3::timestamptz[], $4::int4[], $5::timestamptz[],
    $6::text[], $7::text[], $8::int4[], $9::text[], $10::text[]) AS x (ord, m, r, s, t, ln, so, ei, lv, msg)
WHERE x.ord = ANY (` + fresh + `)
ON CONFLICT (machine_id, recorded_at, seq) DO NOTHING`

	insertGroupSMART = `
INSERT INTO smart_data (machine_id, recorded_at, device, model, serial_number, health_status, temperature_c, power_on_hours,
    reallocated_sectors, pending_sectors, uncorrectable_errors, wear_level_percent, attributes)
SELECT machine_id, recorded_at, device, model, serial_number, health_status, temperature_c, power_on_hours,
    reallocated_sectors, pending_sectors, uncorrectable_errors, wear_level_percent, attributes
FROM jsonb_to_recordset($1::jsonb) AS x (ord int8, machine_id uuid, recorded_at timestamptz, device text, model text,
    serial_number text, health_status text, temperature_c int4, power_on_hours int8, reallocated_sectors int8,
    pending_sectors int8, uncorrectable_errors int8, wear_level_percent numeric, attributes jsonb)
WHERE x.ord = ANY (` + fresh + `)
ON CONFLICT (machine_id, recorded_at, device) DO NOTHING`

	// A snapshot only moves forward: a late retry of an older heartbeat leaves a newer
	// one; of one machine's snapshots in the group, the newest is written.
	upsertGroupCollectors = `
INSERT INTO machine_collector_data (machine_id, collector, data, collected_at, updated_at)
SELECT DISTINCT ON (m, c) m, c, d::jsonb, r, n FROM unnest($1::int8[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
    $6::timestamptz[]) AS x (ord, m, c, d, r, n)
WHERE x.ord = ANY (` + fresh + `)
ORDER BY m, c, r DESC, ord DESC
ON CONFLICT (machine_id, collector) DO UPDATE SET data = EXCLUDED.data, collected_at = EXCLUDED.collected_at, updated_at = EXCLUDED.updated_at
WHERE machine_collector_data.collected_at <= EXCLUDED.collected_at`

	// touchGroupMachines writes each machine of the group once: last_seen and
	// heartbeat_due_at move forward to the latest of its heartbeats; the CPU/RAM a
	// dashboard list row shows come from its newest new heartbeat (a late retry of an older
	// one does not overwrite them). A machine whose only heartbeats were already recorded
	// and that changes nothing is rewritten only when last_seen is older than $10 seconds.
	touchGroupMachines = `
UPDATE machines m SET last_seen = GREATEST(COALESCE(m.last_seen, u.now), u.now),
    heartbeat_due_at = GREATEST(COALESCE(m.heartbeat_due_at, u.due), u.due),
    last_cpu_percent = CASE WHEN u.fresh AND u.at >= COALESCE(m.last_metrics_at, '-infinity') THEN u.cpu ELSE m.last_cpu_percent END,
    last_ram_percent = CASE WHEN u.fresh AND u.at >= COALESCE(m.last_metrics_at, '-infinity') THEN u.ram ELSE m.last_ram_percent END,
    last_metrics_at = GREATEST(COALESCE(m.last_metrics_at, u.at), u.at),
    agent_version = COALESCE(NULLIF(u.version, ''), m.agent_version), ip_address = COALESCE(NULLIF(u.ip, ''), m.ip_address)
FROM (
	SELECT DISTINCT ON (x.machine_id) x.machine_id, max(x.now) OVER w AS now, max(x.due) OVER w AS due, x.at, x.cpu, x.ram,
	    x.version, x.ip, x.ord = ANY (` + fresh + `) AS fresh
	FROM unnest($1::int8[], $2::uuid[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[], $6::float8[], $7::float8[],
	    $8::text[], $9::text[]) AS x (ord, machine_id, now, due, at, cpu, ram, version, ip)
	WHERE x.ord = ANY (` + accepted + `)
	WINDOW w AS (PARTITION BY x.machine_id)
	ORDER BY x.machine_id, x.at DESC, (x.ord = ANY (` + fresh + `)) DESC, x.ord
) u
WHERE m.id = u.machine_id
  AND (u.fresh OR m.last_seen IS NULL OR m.last_seen < u.now - make_interval(secs => $10::float8)
       OR u.due > COALESCE(m.heartbeat_due_at, '-infinity') + make_interval(secs => $10::float8)
       OR (u.version <> '' AND u.version IS DISTINCT FROM m.agent_version) OR (u.ip <> '' AND u.ip IS DISTINCT FROM m.ip_address))`
)

// invCol is a machine_inventory column and its type in the JSON rows.
type invCol struct{ name, typ string }

// The columns each collector rewrites (spec "Colonnes machine_inventory").
func securityCols() []invCol {
	return []invCol{{"antivirus_name", "text"}, {"antivirus_version", "text"}, {"antivirus_enabled", "bool"},
		{"antivirus_updated", "bool"}, {"firewall_enabled", "bool"}, {"bitlocker_enabled", "bool"}, {"secure_boot_enabled", "bool"},
		{"ports_open", "int4"}, {"ports_risky_open", "int4"}, {"all_ports", "jsonb"}, {"risky_ports_details", "jsonb"}}
}

func servicesCols() []invCol {
	return []invCol{{"services_total", "int4"}, {"services_running", "int4"}, {"services_failed", "int4"},
		{"all_services", "jsonb"}, {"failed_services", "jsonb"}}
}

func softwareCols() []invCol {
	return []invCol{{"software_count", "int4"}, {"software_details", "jsonb"}, {"users_total", "int4"},
		{"users_admin", "int4"}, {"users_details", "jsonb"}}
}

func networkCols() []invCol { return []invCol{{"network_interfaces", "jsonb"}} }

func patchesCols() []invCol {
	return []invCol{{"pending_updates", "int4"}, {"security_updates", "int4"}, {"reboot_required", "bool"},
		{"patches_auto_update", "bool"}, {"patches_last_check", "timestamptz"}}
}

// upsertInventory is the group upsert of one collector's machine_inventory columns: a
// heartbeat carrying a collector rewrites that collector's columns and no others; of one
// machine's new heartbeats in the group, the newest is written.
func upsertInventory(cols []invCol) string {
	var names, types, set strings.Builder
	for i, c := range cols {
		if i > 0 {
			names.WriteString(", ")
			set.WriteString(", ")
		}
		names.WriteString(c.name)
		types.WriteString(", " + c.name + " " + c.typ)
		set.WriteString(c.name + " = EXCLUDED." + c.name)
	}
	return `
INSERT INTO machine_inventory (machine_id, ` + names.String() + `, updated_at)
SELECT DISTINCT ON (machine_id) machine_id, ` + names.String() + `, updated_at
FROM jsonb_to_recordset($1::jsonb) AS x (ord int8, machine_id uuid, recorded_at timestamptz, updated_at timestamptz` + types.String() + `)
WHERE x.ord = ANY (` + fresh + `)
ORDER BY machine_id, recorded_at DESC, ord DESC
ON CONFLICT (machine_id) DO UPDATE SET ` + set.String() + `, updated_at = EXCLUDED.updated_at`
}
