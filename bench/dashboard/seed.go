package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/rollup"
)

// The fleet of issue 11's performance section: 10,000 machines across 20 clients, the
// largest 5,000; the others shrink the way an MSP's customer base does.
var clientSizes = []int{5000, 1200, 800, 600, 450, 350, 300, 250, 200, 170, 150, 120, 100, 80, 60, 50, 40, 30, 30, 20}

var tiers = []string{"Pro", "Business", "Essentials", "Starter", "Pro"}

// seededAtKey records when the fleet was seeded, so -reuse can move it to the present.
const seededAtKey = "bench_dashboard_seeded_at"

// seedStats is what the report says about the data.
type seedStats struct {
	Duration time.Duration
	Steps    []string
	Rows     map[string]int64
	Sizes    map[string]string
}

// seed fills a freshly migrated database. Everything is generated inside PostgreSQL
// (generate_series, unnest of a few arrays): no row crosses the wire, so 10,000 machines
// and ~5 million series rows take a couple of minutes. Timestamps come from now (the
// benchmark's clock), never from SQL now().
func seed(ctx context.Context, pool *pgxpool.Pool, now time.Time, scale float64, histMachines int) (st seedStats, err error) {
	start := time.Now()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return st, err
	}
	defer conn.Release()
	// chunked steps (the raw series, 50 machines a statement) are summed into one line each
	sums := map[string]*[2]float64{}
	var order []string
	step := func(name, sql string, args ...any) error {
		t := time.Now()
		tag, err := conn.Exec(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("seed %s: %w", name, err)
		}
		logf("seed %s: %d rows in %.1f s", name, tag.RowsAffected(), time.Since(t).Seconds())
		base, _, _ := strings.Cut(name, ", machines ")
		if sums[base] == nil {
			sums[base] = &[2]float64{}
			order = append(order, base)
		}
		sums[base][0] += float64(tag.RowsAffected())
		sums[base][1] += time.Since(t).Seconds()
		return nil
	}
	defer func() {
		var lines []string
		for _, n := range order {
			lines = append(lines, fmt.Sprintf("%s: %.0f rows in %.1f s", n, sums[n][0], sums[n][1]))
		}
		st.Steps = append(lines, st.Steps...)
	}()
	// A fixed seed: two runs generate the same fleet shape.
	if _, err := conn.Exec(ctx, `SELECT setseed(0.42)`); err != nil {
		return st, err
	}

	n := len(clientSizes)
	names, prefixes, tierOf := make([]string, n), make([]string, n), make([]string, n)
	sizes, maxes, ngroups := make([]int32, n), make([]int32, n), make([]int32, n)
	for i, size := range clientSizes {
		size = max(1, int(math.Round(float64(size)*scale)))
		names[i] = fmt.Sprintf("MSP customer %02d", i+1)
		prefixes[i] = fmt.Sprintf("c%02d", i+1)
		tierOf[i] = tiers[i%len(tiers)]
		if i == 0 {
			tierOf[i] = "Enterprise" // 365 days of retention: 30-day history is within the licence
		}
		sizes[i], maxes[i] = int32(size), int32(size+size/5+10)
		ngroups[i] = int32(min(40, max(2, size/100)))
	}
	var clientIDs []string
	rows, err := conn.Query(ctx, `
		INSERT INTO clients (name, license_tier, license_expires_at, max_machines, created_at, updated_at)
		SELECT name, tier, $4::timestamptz + interval '200 days', mx, $4, $4 FROM unnest($1::text[], $2::text[], $3::int[]) AS c(name, tier, mx)
		RETURNING id`, names, tierOf, maxes, now)
	if err != nil {
		return st, err
	}
	if clientIDs, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return st, fmt.Errorf("seed clients: %w", err)
	}
	if len(clientIDs) != n {
		return st, fmt.Errorf("seed clients: %d rows, want %d (order of RETURNING)", len(clientIDs), n)
	}

	if err := step("groups", `
		INSERT INTO machine_groups (client_id, name, color, created_at, updated_at)
		SELECT c.id, CASE WHEN j = 0 THEN 'Servers' ELSE 'Site ' || lpad(j::text, 2, '0') END,
		       (ARRAY['#3B82F6','#10B981','#F59E0B','#EF4444','#8B5CF6','#EC4899'])[1 + j % 6], $3, $3
		FROM unnest($1::uuid[], $2::int[]) AS c(id, ng), generate_series(0, c.ng) AS j`, clientIDs, ngroups, now); err != nil {
		return st, err
	}

	// Machine states: ~86 % online, ~5 % in alert (CPU > 80 % or RAM > 85 %, the spec's
	// rule, so their next heartbeat is due after 30 s), ~9 % offline for 10 minutes to 30
	// days. Certificates: ~4 % expiring within 30 days, 1 % expired, 0.5 % revoked.
	if err := step("machines", `
		WITH g AS (
		    SELECT c.id AS client_id, c.prefix, c.idx, i, random() AS rs, random() AS rk, random() AS ro,
		           random() AS rc, random() AS ra, random() AS rcpu, random() AS rram
		    FROM unnest($1::uuid[], $2::text[], $3::int[]) WITH ORDINALITY AS c(id, prefix, n, idx), generate_series(1, c.n) AS i
		), k AS (
		    SELECT g.*, CASE WHEN rk < 0.70 THEN 'ws' WHEN rk < 0.82 THEN 'lt' ELSE 'srv' END AS kind,
		           CASE WHEN rs < 0.86 THEN 'online' WHEN rs < 0.91 THEN 'alert' ELSE 'offline' END AS state
		    FROM g
		), m AS (
		    SELECT k.*, CASE WHEN (kind = 'srv' AND ro < 0.5) OR (kind <> 'srv' AND ro < 0.08) THEN 'linux' ELSE 'windows' END AS os,
		           CASE WHEN state = 'offline' THEN $4::timestamptz - interval '10 minutes' - ra * ra * interval '30 days'
		                ELSE $4::timestamptz - ra * interval '55 seconds' END AS seen,
		           CASE WHEN rc < 0.04 THEN $4::timestamptz + (rc / 0.04) * interval '29 days'
		                WHEN rc < 0.05 THEN $4::timestamptz - interval '1 day' - (rc - 0.04) * interval '900 days'
		                ELSE $4::timestamptz + interval '31 days' + rc * interval '330 days' END AS cert_expires
		    FROM k
		)
		INSERT INTO machines (client_id, hostname, os, os_version, os_build, arch, agent_version, ip_address,
		    last_seen, heartbeat_due_at, last_metrics_at, last_cpu_percent, last_ram_percent,
		    cert_serial, cert_issued_at, cert_expires_at, cert_revoked_at, fingerprint_hash,
		    collector_config_updated_at, created_at, updated_at)
		SELECT client_id, prefix || '-' || kind || '-' || lpad(i::text, 5, '0'), os,
		       CASE WHEN os = 'linux' THEN (CASE WHEN ro < 0.04 THEN 'Debian GNU/Linux 12' ELSE 'Ubuntu 22.04.4 LTS' END)
		            WHEN kind = 'srv' THEN 'Windows Server 2022 Standard'
		            WHEN ro < 0.55 THEN 'Windows 11 Pro 23H2' ELSE 'Windows 10 Pro 22H2' END,
		       CASE WHEN os = 'linux' THEN NULL WHEN kind = 'srv' THEN 20348 WHEN ro < 0.55 THEN 22631 ELSE 19045 END,
		       CASE WHEN rk * 100 - floor(rk * 100) < 0.05 THEN 'arm64' ELSE 'amd64' END,
		       CASE WHEN rcpu * 7 - floor(rcpu * 7) < 0.85 THEN '1.8.2' WHEN rcpu * 7 - floor(rcpu * 7) < 0.95 THEN '1.8.1' ELSE '1.7.9' END,
		       format('10.%s.%s.%s', idx, i / 250, 1 + i % 250),
		       seen, seen + CASE WHEN state = 'alert' THEN interval '30 seconds' ELSE interval '60 seconds' END, seen,
		       CASE WHEN state = 'alert' AND rram < 0.5 THEN 81 + rcpu * 18 ELSE 3 + rcpu * 55 END,
		       CASE WHEN state = 'alert' AND rram >= 0.5 THEN 86 + rram * 13 ELSE 25 + rram * 55 END,
		       md5(client_id::text || i::text), cert_expires - interval '365 days', cert_expires,
		       CASE WHEN rc >= 0.05 AND rc < 0.055 THEN $4::timestamptz - interval '3 days' END,
		       md5(client_id::text || i::text || 'fingerprint'),
		       cert_expires - interval '366 days', cert_expires - interval '366 days', seen
		FROM m`, clientIDs, prefixes, sizes, now); err != nil {
		return st, err
	}
	if err := step("client_certificates", `
		INSERT INTO client_certificates (client_id, machine_id, serial, issued_at, expires_at, revoked_at, revocation_reason, created_at)
		SELECT client_id, id, cert_serial, cert_issued_at, cert_expires_at, cert_revoked_at,
		       CASE WHEN cert_revoked_at IS NOT NULL THEN 'machine decommissioned' END, cert_issued_at
		FROM machines`); err != nil {
		return st, err
	}
	// Every machine in one site group but one in twenty; servers also in "Servers".
	if err := step("machine_group_members", `
		INSERT INTO machine_group_members (client_id, machine_id, group_id, created_at)
		SELECT m.client_id, m.id, g.id, $3::timestamptz FROM machines m
		JOIN unnest($1::uuid[], $2::int[]) AS c(id, ng) ON c.id = m.client_id
		JOIN machine_groups g ON g.client_id = m.client_id
		     AND g.name = 'Site ' || lpad((1 + abs(hashtext(m.id::text)) % c.ng)::text, 2, '0')
		WHERE abs(hashtext(m.id::text || 'g')) % 20 <> 0
		UNION ALL
		SELECT m.client_id, m.id, g.id, $3::timestamptz FROM machines m
		JOIN machine_groups g ON g.client_id = m.client_id AND g.name = 'Servers'
		WHERE m.hostname LIKE '%-srv-%'`, clientIDs, ngroups, now); err != nil {
		return st, err
	}
	if err := seedInventory(ctx, step, now); err != nil {
		return st, err
	}

	// The newest heartbeat of every machine (latest metrics and disks in its details).
	rawFrom := now.Add(-48 * time.Hour).Truncate(time.Minute)
	var hist []string
	rows, err = conn.Query(ctx, `
		SELECT id FROM machines WHERE client_id = $1 AND heartbeat_due_at > $2
		ORDER BY md5(id::text) LIMIT $3`, clientIDs[0], now, histMachines)
	if err != nil {
		return st, err
	}
	if hist, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return st, err
	}
	if err := step("metrics (newest heartbeat of the other machines)", `
		INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent, ram_used_bytes, ram_total_bytes, cpu_temp,
		    bytes_recv, bytes_sent, packet_loss, latency_ms, disk_latency_ms, uptime_seconds, process_count)
		SELECT id, last_seen, last_cpu_percent, last_ram_percent, (last_ram_percent * 171798691)::bigint, 17179869184,
		       CASE WHEN os = 'windows' THEN 48 + last_cpu_percent / 4 END, 120000 + abs(hashtext(id::text)) % 900000,
		       40000 + abs(hashtext(id::text)) % 300000, 0, 2 + abs(hashtext(id::text)) % 30, 1.5, 86400 * 3, 180
		FROM machines WHERE last_seen IS NOT NULL AND NOT (id = ANY($1::uuid[]))`, hist); err != nil {
		return st, err
	}
	if err := step("disk_info (newest heartbeat of the other machines)", diskInsert(`m.last_seen AS t`, `NOT (m.id = ANY($1::uuid[]))`), hist); err != nil {
		return st, err
	}

	// 2 days of 60 s raw metrics and disks for the history machines, 50 machines a statement.
	for i := 0; i < len(hist); i += 50 {
		chunk := hist[i:min(i+50, len(hist))]
		if err := step(fmt.Sprintf("metrics raw 60 s × 48 h, machines %d–%d", i+1, i+len(chunk)), `
			INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent, ram_used_bytes, ram_total_bytes, cpu_temp,
			    bytes_recv, bytes_sent, packet_loss, latency_ms, disk_latency_ms, uptime_seconds, process_count)
			SELECT id, t, cpu, ram, (ram * 171798691)::bigint, 17179869184, 45 + cpu / 4,
			       (base * 20000 * (1.2 + sin(w)) + random() * 50000)::bigint, (base * 8000 * (1.2 + sin(w)) + random() * 20000)::bigint,
			       CASE WHEN random() < 0.02 THEN random() * 3 ELSE 0 END, 2 + random() * 25, 0.5 + random() * 4,
			       extract(epoch FROM t - $2::timestamptz)::bigint + 86400, 150 + (random() * 80)::int
			FROM (
			    SELECT h.id, s.t, h.base, s.w,
			           LEAST(100, GREATEST(0, h.base + 15 * sin(s.w + h.phase) + random() * 10)) AS cpu,
			           LEAST(100, GREATEST(0, 30 + h.base + 4 * sin(s.w / 2 + h.phase) + random() * 3)) AS ram
			    FROM (SELECT id, 5 + abs(hashtext(id::text)) % 35 AS base, (abs(hashtext(id::text || 'p')) % 628) / 100.0 AS phase
			          FROM unnest($1::uuid[]) AS id) h
			    CROSS JOIN LATERAL (SELECT t, extract(epoch FROM t) / 3600.0 * pi() / 12 AS w
			          FROM generate_series($2::timestamptz + (abs(hashtext(h.id::text)) % 60) * interval '1 second', $3::timestamptz, interval '1 minute') AS t) s
			) x`, chunk, rawFrom, now); err != nil {
			return st, err
		}
		if err := step(fmt.Sprintf("disk_info raw 60 s × 48 h, machines %d–%d", i+1, i+len(chunk)), diskInsert(
			`t`, `m.id = ANY($1::uuid[])`,
			`CROSS JOIN LATERAL generate_series($2::timestamptz + (abs(hashtext(m.id::text)) % 60) * interval '1 second', $3::timestamptz, interval '1 minute') AS t`),
			chunk, rawFrom, now); err != nil {
			return st, err
		}
	}

	// Hourly rollups: synthetic for the 28 days before the raw data, then the real
	// postgres-mode refresh (internal/rollup) over the 48 h of raw rows. In postgres mode
	// the rollups are tables; in timescale mode they would be continuous aggregates.
	histFrom, rawHour := now.Add(-30*24*time.Hour).Truncate(time.Hour), rawFrom.Truncate(time.Hour)
	if err := step("metrics_hourly synthetic (30 d → 48 h ago)", `
		INSERT INTO metrics_hourly (bucket, machine_id, cpu_avg, cpu_min, cpu_max, ram_avg, ram_min, ram_max,
		    cpu_temp_avg, cpu_temp_min, cpu_temp_max, sample_count)
		SELECT b, id, cpu, GREATEST(0, cpu - 2 - random() * 8), LEAST(100, cpu + 5 + random() * 30),
		       ram, GREATEST(0, ram - 1 - random() * 3), LEAST(100, ram + 1 + random() * 6),
		       45 + cpu / 4, 40 + cpu / 5, 55 + cpu / 3, 60
		FROM (SELECT id, b, LEAST(100, GREATEST(0, base + 15 * sin(extract(epoch FROM b) / 3600.0 * pi() / 12 + phase) + random() * 5)) AS cpu,
		             LEAST(100, GREATEST(0, 30 + base + 4 * sin(extract(epoch FROM b) / 7200.0 * pi() / 12 + phase) + random() * 2)) AS ram
		      FROM (SELECT id, 5 + abs(hashtext(id::text)) % 35 AS base, (abs(hashtext(id::text || 'p')) % 628) / 100.0 AS phase
		            FROM unnest($1::uuid[]) AS id) h,
		           generate_series($2::timestamptz, $3::timestamptz - interval '1 hour', interval '1 hour') AS b) x`,
		hist, histFrom, rawHour); err != nil {
		return st, err
	}
	if err := step("network_hourly synthetic (30 d → 48 h ago)", `
		INSERT INTO network_hourly (bucket, machine_id, bytes_recv_avg, bytes_recv_max, bytes_sent_avg, bytes_sent_max,
		    packet_loss_avg, packet_loss_max, latency_avg, latency_max, sample_count)
		SELECT b, id, r, (r * (1.5 + random()))::bigint, r / 2.5, (r / 2.5 * (1.5 + random()))::bigint,
		       random() * 0.05, CASE WHEN random() < 0.05 THEN random() * 3 ELSE 0 END, 5 + random() * 10, 20 + random() * 60, 60
		FROM (SELECT id, b, (5 + abs(hashtext(id::text)) % 35) * 20000 * (1.2 + sin(extract(epoch FROM b) / 3600.0 * pi() / 12)) + random() * 50000 AS r
		      FROM unnest($1::uuid[]) AS id, generate_series($2::timestamptz, $3::timestamptz - interval '1 hour', interval '1 hour') AS b) x`,
		hist, histFrom, rawHour); err != nil {
		return st, err
	}
	if err := step("disk_hourly synthetic (30 d → 48 h ago)", `
		INSERT INTO disk_hourly (bucket, machine_id, mount_point, disk_usage_avg, disk_usage_max, sample_count)
		SELECT b, m.id, mp.mount, u, u + random(), 60
		FROM machines m
		CROSS JOIN LATERAL (SELECT unnest(CASE WHEN m.os = 'windows' THEN ARRAY['C:', 'D:'] ELSE ARRAY['/', '/data'] END) AS mount) mp
		CROSS JOIN generate_series($2::timestamptz, $3::timestamptz - interval '1 hour', interval '1 hour') AS b
		CROSS JOIN LATERAL (SELECT LEAST(99, 20 + abs(hashtext(m.id::text || mp.mount)) % 60
		       + 5 * extract(epoch FROM b - $2::timestamptz) / 2592000.0) AS u) x
		WHERE m.id = ANY($1::uuid[]) AND (mp.mount IN ('C:', '/') OR abs(hashtext(m.id::text)) % 2 = 0)`,
		hist, histFrom, rawHour); err != nil {
		return st, err
	}
	t := time.Now()
	if err := (rollup.Refresher{Pool: pool, Mode: migrate.ModePostgres}).Refresh(ctx, rawFrom, now); err != nil {
		return st, fmt.Errorf("seed rollup refresh: %w", err)
	}
	st.Steps = append(st.Steps, fmt.Sprintf("rollup.Refresher (postgres mode) over the 48 h of raw rows in %.1f s", time.Since(t).Seconds()))
	logf("seed %s", st.Steps[len(st.Steps)-1])

	t = time.Now()
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return st, fmt.Errorf("seed vacuum: %w", err)
	}
	st.Steps = append(st.Steps, fmt.Sprintf("VACUUM ANALYZE in %.1f s", time.Since(t).Seconds()))
	if _, err := conn.Exec(ctx, `INSERT INTO schema_settings (key, value, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
		seededAtKey, now.Format(time.RFC3339Nano), now); err != nil {
		return st, err
	}
	st.Duration = time.Since(start)
	return st, nil
}

// diskInsert writes disk_info rows for the machines matching where, at time expression
// at, with any extra FROM clause: C: (+ D: for one in two) on Windows, / (+ /data) on Linux.
func diskInsert(at, where string, from ...string) string {
	extra := ""
	for _, f := range from {
		extra += "\n" + f
	}
	return `
		INSERT INTO disk_info (machine_id, recorded_at, mount_point, device, fs_type, total_gb, used_gb, used_percent, model, interface)
		SELECT id, t, mount, dev, fs, total, round(total * pct / 100, 2), pct, model, iface FROM (
		    SELECT m.id, ` + at + `, mp.mount, mp.dev, mp.fs, mp.total, mp.model, mp.iface,
		           round(LEAST(99, 20 + abs(hashtext(m.id::text || mp.mount)) % 60 + 5.0)::numeric, 2) AS pct
		    FROM machines m
		    CROSS JOIN LATERAL (SELECT * FROM (VALUES
		        ('C:', '\\.\PHYSICALDRIVE0', 'NTFS', 476.94, 'Samsung SSD 980 PRO 512GB', 'NVMe', 'windows', true),
		        ('D:', '\\.\PHYSICALDRIVE1', 'NTFS', 931.51, 'WDC WD10EZEX', 'SATA', 'windows', false),
		        ('/', '/dev/nvme0n1p2', 'ext4', 236.87, 'SAMSUNG MZVL2256HCHQ', 'NVMe', 'linux', true),
		        ('/data', '/dev/sda1', 'xfs', 1862.89, 'ST2000DM008', 'SATA', 'linux', false))
		        AS v(mount, dev, fs, total, model, iface, os, always)
		        WHERE v.os = m.os AND (v.always OR abs(hashtext(m.id::text)) % 2 = 0)) mp` + extra + `
		    WHERE m.last_seen IS NOT NULL AND ` + where + `
		) x`
}

// seedInventory gives every machine an inventory snapshot (machine_inventory) and the
// collector snapshots the inventory routes read (machine_collector_data). Eight content
// variants, assigned by machine, keep the statement fast; rows are still one per machine.
func seedInventory(ctx context.Context, step func(string, string, ...any) error, now time.Time) error {
	if err := step("machine_inventory", `
		WITH v AS (
		    SELECT k,
		        (SELECT jsonb_agg(jsonb_build_object('name', 'svc' || s, 'display_name', 'Service number ' || s,
		                'status', CASE WHEN s % 9 = 0 THEN 'stopped' ELSE 'running' END,
		                'start_type', CASE WHEN s % 3 = 0 THEN 'manual' ELSE 'automatic' END))
		         FROM generate_series(1, 60 + k * 10) s) AS services,
		        (SELECT jsonb_agg(jsonb_build_object('name', 'Software package ' || s, 'version', '1.' || s || '.' || k,
		                'publisher', 'Vendor ' || (s % 17), 'install_date', '2026-0' || (1 + s % 9) || '-1' || (s % 9)))
		         FROM generate_series(1, 90 + k * 15) s) AS software,
		        (SELECT jsonb_agg(jsonb_build_object('name', 'user' || s, 'is_admin', s = 1, 'last_logon', '2026-11-2' || (s % 9) || 'T08:00:00Z'))
		         FROM generate_series(1, 2 + k % 4) s) AS users,
		        (SELECT jsonb_agg(jsonb_build_object('port', p, 'protocol', 'tcp', 'process', 'proc' || p, 'address', '0.0.0.0'))
		         FROM unnest(ARRAY[22, 80, 135, 139, 443, 445, 3389, 5985]) p) AS ports,
		        jsonb_build_array(jsonb_build_object('name', 'Ethernet', 'mac', '00:16:3e:00:00:0' || k, 'ipv4', ARRAY['10.0.0.' || k],
		                'speed_mbps', 1000, 'is_up', true)) AS nics
		    FROM generate_series(0, 7) k
		)
		INSERT INTO machine_inventory (machine_id, antivirus_name, antivirus_version, antivirus_enabled, antivirus_updated,
		    firewall_enabled, bitlocker_enabled, secure_boot_enabled, services_total, services_running, services_failed,
		    all_services, failed_services, software_count, software_details, users_total, users_admin, users_details,
		    ports_open, ports_risky_open, all_ports, risky_ports_details, network_interfaces, pending_updates,
		    security_updates, reboot_required, patches_auto_update, patches_last_check, updated_at)
		SELECT m.id, CASE WHEN m.os = 'windows' THEN 'Microsoft Defender Antivirus' END, CASE WHEN m.os = 'windows' THEN '4.18.24090.11' END,
		       m.os = 'windows', m.os = 'windows' AND h % 10 <> 0, h % 15 <> 0, m.os = 'windows' AND h % 4 <> 0, h % 6 <> 0,
		       jsonb_array_length(v.services), jsonb_array_length(v.services) - jsonb_array_length(v.services) / 9, (h % 5 = 0)::int,
		       v.services, CASE WHEN h % 5 = 0 THEN jsonb_build_array(jsonb_build_object('name', 'svc9', 'status', 'stopped')) ELSE '[]'::jsonb END,
		       jsonb_array_length(v.software), v.software, jsonb_array_length(v.users), 1, v.users,
		       8, 3, v.ports, jsonb_build_array(3389, 445, 139), v.nics, h % 12, h % 4, h % 7 = 0, h % 3 <> 0,
		       $1::timestamptz - (h % 48) * interval '1 hour', $1
		FROM (SELECT id, os, abs(hashtext(id::text)) AS h FROM machines) m
		JOIN v ON v.k = m.h % 8`, now); err != nil {
		return err
	}
	return step("machine_collector_data (security, storage, network)", `
		INSERT INTO machine_collector_data (machine_id, collector, data, collected_at, updated_at)
		SELECT m.id, c.name, c.data, COALESCE(m.last_seen, $1), COALESCE(m.last_seen, $1)
		FROM machines m
		CROSS JOIN LATERAL (VALUES
		    ('security', jsonb_build_object('firewall_enabled', true, 'antivirus', jsonb_build_object('name', 'Microsoft Defender Antivirus', 'enabled', true),
		        'secure_boot', true, 'uac_enabled', true)),
		    ('storage', jsonb_build_object('disks', jsonb_build_array(jsonb_build_object('mount_point', CASE WHEN m.os = 'windows' THEN 'C:' ELSE '/' END,
		        'total_gb', 476.94, 'used_percent', 20 + abs(hashtext(m.id::text)) % 60)))),
		    ('network', jsonb_build_object('interfaces', jsonb_build_array(jsonb_build_object('name', 'Ethernet', 'ipv4', m.ip_address)), 'dns', jsonb_build_array('10.0.0.1'))))
		    AS c(name, data)`, now)
}

// reuseShift moves an earlier run's fleet to now: the machines' heartbeat columns move by
// the time elapsed since it was seeded, so online machines are online again. The series
// are not moved (the report says so).
func reuseShift(ctx context.Context, pool *pgxpool.Pool, now time.Time) (time.Duration, error) {
	var at time.Time
	if err := pool.QueryRow(ctx, `SELECT value::timestamptz FROM schema_settings WHERE key = $1`, seededAtKey).Scan(&at); err != nil {
		return 0, fmt.Errorf("-reuse: no seeded fleet in this database (%w)", err)
	}
	d := now.Sub(at)
	_, err := pool.Exec(ctx, `UPDATE machines SET last_seen = last_seen + $1, heartbeat_due_at = heartbeat_due_at + $1,
		last_metrics_at = last_metrics_at + $1`, d)
	if err == nil {
		_, err = pool.Exec(ctx, `UPDATE schema_settings SET value = $2, updated_at = $3 WHERE key = $1`, seededAtKey, now.Format(time.RFC3339Nano), now)
	}
	return d, err
}

// dataSummary counts the rows and sizes of the tables the routes read.
func dataSummary(ctx context.Context, pool *pgxpool.Pool, st *seedStats) error {
	st.Rows, st.Sizes = map[string]int64{}, map[string]string{}
	for _, t := range []string{"clients", "machines", "machine_groups", "machine_group_members", "client_certificates",
		"machine_inventory", "machine_collector_data", "metrics", "disk_info", "metrics_hourly", "network_hourly", "disk_hourly"} {
		var n int64
		var size string
		if err := pool.QueryRow(ctx, `SELECT count(*), pg_size_pretty(pg_total_relation_size($1::regclass)) FROM `+t, t).Scan(&n, &size); err != nil {
			return err
		}
		st.Rows[t], st.Sizes[t] = n, size
	}
	return nil
}
