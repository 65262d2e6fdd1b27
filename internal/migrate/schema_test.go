package migrate_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv"
)

// specColumns lists, per table, the columns and types the specification names (plus the
// ones it implies), as PostgreSQL's format_type prints them.
var specColumns = map[string]string{
	"disk_info": `mount_point character varying(255), device character varying(255), fs_type character varying(50),
		total_gb numeric(10,2), used_gb numeric(10,2), used_percent numeric(5,2), model character varying(255),
		interface character varying(50), machine_id uuid, recorded_at timestamp with time zone`,
	"machine_inventory": `antivirus_name character varying(255), antivirus_version text, antivirus_enabled boolean,
		antivirus_updated boolean, firewall_enabled boolean, bitlocker_enabled boolean, secure_boot_enabled boolean,
		services_total integer, services_running integer, services_failed integer, all_services jsonb,
		failed_services jsonb, software_count integer, software_details jsonb, users_total integer,
		users_admin integer, users_details jsonb, ports_open integer, ports_risky_open integer, all_ports jsonb,
		risky_ports_details jsonb, network_interfaces jsonb, pending_updates integer, security_updates integer,
		reboot_required boolean, patches_auto_update boolean, patches_last_check timestamp with time zone`,
	"metric_baselines": `id uuid, machine_id uuid, metric_type character varying(50), baseline_mean numeric(10,2),
		baseline_stddev numeric(10,2), baseline_p95 numeric(10,2), current_value numeric(10,2), z_score numeric(10,2),
		warning_threshold numeric(5,2), critical_threshold numeric(5,2), drift_detected boolean,
		drift_severity character varying(20), drift_explanation text, last_updated timestamp with time zone`,
	"client_certificates": `id uuid, client_id uuid, machine_id uuid, serial character varying(64),
		issued_at timestamp with time zone, expires_at timestamp with time zone, revoked_at timestamp with time zone,
		revocation_reason text, created_by uuid, created_at timestamp with time zone`,
	"machine_group_members": `client_id uuid, machine_id uuid, group_id uuid, created_at timestamp with time zone`,
	"agent_releases":        `channel character varying(20), version character varying(50), downloads jsonb, published_at timestamp with time zone`,
	"machines": `id uuid, client_id uuid, hostname character varying(255), cert_serial character varying(64),
		cert_issued_at timestamp with time zone, cert_expires_at timestamp with time zone,
		cert_revoked_at timestamp with time zone, last_config_sync timestamp with time zone,
		last_seen timestamp with time zone, agent_version character varying(50)`,
	"agent_requirements": `id uuid, windows_client_enabled boolean, windows_client_min_build integer,
		windows_server_enabled boolean, windows_server_min_build integer, linux_enabled boolean,
		unsupported_os_message text, updated_at timestamp with time zone`,
	"windows_builds": `id uuid, os_type character varying(20), build_number integer, name character varying(100),
		release_date date, is_active boolean, sort_order integer, created_at timestamp with time zone`,
	"install_tokens": `id uuid, client_id uuid, token_hash character varying(255), name character varying(100),
		expires_at timestamp with time zone, usage_count integer, max_usage integer, revoked_at timestamp with time zone,
		created_by uuid, created_at timestamp with time zone, updated_at timestamp with time zone`,
	"service_uptime": `id uuid, service_name character varying(50), status character varying(20),
		response_time_ms integer, checked_at timestamp with time zone`,
	"machine_collector_data": `machine_id uuid, collector character varying(30), data jsonb, collected_at timestamp with time zone`,
	"metrics": `machine_id uuid, recorded_at timestamp with time zone, cpu_percent double precision,
		ram_percent double precision, cpu_temp double precision, bytes_recv bigint, bytes_sent bigint,
		packet_loss double precision, latency_ms double precision`,
	"event_logs":           `machine_id uuid, recorded_at timestamp with time zone, level character varying(20), message text`,
	"smart_data":           `machine_id uuid, recorded_at timestamp with time zone, device character varying(255), health_status character varying(20)`,
	"activity_logs":        `client_id uuid, user_id uuid, machine_id uuid, action character varying(100), details jsonb, created_at timestamp with time zone`,
	"metric_aggregates":    `machine_id uuid, metric_type character varying(50), period_start timestamp with time zone`,
	"notification_history": `sent_at timestamp with time zone`,
	"alert_rule_history":   `triggered_at timestamp with time zone`,
	"ai_analysis_results":  `created_at timestamp with time zone, expires_at timestamp with time zone`,
	"ai_trigger_history":   `executed_at timestamp with time zone`,
	"ai_routine_history":   `executed_at timestamp with time zone`,
	"token_blacklist":      `jti character varying(64), expires_at timestamp with time zone`,
	"clients": `id uuid, name character varying(255), license_tier character varying(20),
		license_expires_at timestamp with time zone, max_machines integer, is_active boolean`,
	"users": `id uuid, client_id uuid, email character varying(255), password_hash text, role character varying(20),
		must_change_password boolean, password_changed_at timestamp with time zone`,
	"refresh_tokens": `user_id uuid, family_id uuid, token_hash character varying(64), rotation_count integer,
		is_revoked boolean, ip_address character varying(45), user_agent text, expires_at timestamp with time zone`,
	"machine_groups":    `client_id uuid, name character varying(50), color character varying(7)`,
	"license_retention": `license_tier character varying(20), metrics_retention_days integer, events_retention_days integer`,
	"metrics_hourly": `bucket timestamp with time zone, machine_id uuid, cpu_avg double precision, cpu_min double precision,
		cpu_max double precision, ram_avg double precision, ram_min double precision, ram_max double precision,
		cpu_temp_avg double precision, cpu_temp_min double precision, cpu_temp_max double precision`,
	"disk_hourly": `bucket timestamp with time zone, machine_id uuid, mount_point character varying(255),
		disk_usage_avg numeric, disk_usage_max numeric`,
	"network_hourly": `bucket timestamp with time zone, machine_id uuid, bytes_recv_avg numeric, bytes_recv_max bigint,
		bytes_sent_avg numeric, bytes_sent_max bigint, packet_loss_avg double precision, packet_loss_max double precision,
		latency_avg double precision, latency_max double precision`,
}

// specIndexes are index definitions (fragments of pg_indexes.indexdef) the spec requires.
var specIndexes = []string{
	"UNIQUE INDEX machine_collector_data_machine_id_collector_key ON public.machine_collector_data USING btree (machine_id, collector)",
	"UNIQUE INDEX metric_baselines_machine_id_metric_type_key ON public.metric_baselines USING btree (machine_id, metric_type)",
	"UNIQUE INDEX windows_builds_os_type_build_number_key ON public.windows_builds USING btree (os_type, build_number)",
	"INDEX idx_install_tokens_hash ON public.install_tokens USING btree (token_hash)",
	"INDEX idx_client_certificates_machine_id ON public.client_certificates USING btree (machine_id)",
	"UNIQUE INDEX idx_client_certificates_active_machine ON public.client_certificates USING btree (machine_id) WHERE (revoked_at IS NULL)",
	"INDEX idx_machines_hostname_lower ON public.machines USING btree (lower((hostname)::text))",
	"INDEX idx_machines_client_id ON public.machines USING btree (client_id)",
	"UNIQUE INDEX metrics_machine_id_recorded_at_key ON public.metrics USING btree (machine_id, recorded_at)",
}

func TestSchemaMatchesSpec(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	checkSchema(t, pool)
}

func checkSchema(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `
		SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped`)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for rows.Next() {
		var table, col, typ string
		if err := rows.Scan(&table, &col, &typ); err != nil {
			t.Fatal(err)
		}
		have[table+"."+col] = typ
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for table, cols := range specColumns {
		for _, spec := range splitColumns(cols) {
			spec = strings.Join(strings.Fields(spec), " ")
			name, typ, _ := strings.Cut(spec, " ")
			got, ok := have[table+"."+name]
			switch {
			case !ok:
				t.Errorf("%s.%s is missing", table, name)
			case got != typ:
				t.Errorf("%s.%s is %s, the spec says %s", table, name, got, typ)
			}
		}
	}

	var defs []string
	irows, err := pool.Query(ctx, `SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	for irows.Next() {
		var d string
		if err := irows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		defs = append(defs, d)
	}
	all := strings.Join(defs, "\n")
	for _, want := range specIndexes {
		if !strings.Contains(all, want) {
			t.Errorf("index missing: %s", want)
		}
	}

	// Defaults the spec gives.
	var clientEnabled, serverEnabled, linux bool
	var clientMin, serverMin, n int
	if err := pool.QueryRow(ctx, `SELECT windows_client_enabled, windows_client_min_build, windows_server_enabled,
		windows_server_min_build, linux_enabled, (SELECT count(*) FROM agent_requirements) FROM agent_requirements`).
		Scan(&clientEnabled, &clientMin, &serverEnabled, &serverMin, &linux, &n); err != nil {
		t.Fatal(err)
	}
	if !clientEnabled || !serverEnabled || !linux || clientMin != 0 || serverMin != 0 || n != 1 {
		t.Errorf("agent_requirements defaults wrong: %v %d %v %d %v rows=%d", clientEnabled, clientMin, serverEnabled, serverMin, linux, n)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO agent_requirements DEFAULT VALUES`); err == nil {
		t.Error("agent_requirements accepted a second row")
	}
	var warn, crit string
	if err := pool.QueryRow(ctx, `SELECT
		(SELECT column_default FROM information_schema.columns WHERE table_name='metric_baselines' AND column_name='warning_threshold'),
		(SELECT column_default FROM information_schema.columns WHERE table_name='metric_baselines' AND column_name='critical_threshold')`).
		Scan(&warn, &crit); err != nil {
		t.Fatal(err)
	}
	if warn != "2.0" || crit != "3.0" {
		t.Errorf("metric_baselines thresholds default to %s/%s, spec says 2.0/3.0", warn, crit)
	}

	retention := map[string][2]int{"Trial": {7, 7}, "Starter": {30, 30}, "Essentials": {30, 30}, "Pro": {90, 90}, "Business": {90, 90}, "Enterprise": {365, 365}}
	for tier, want := range retention {
		var m, e int
		if err := pool.QueryRow(ctx, `SELECT metrics_retention_days, events_retention_days FROM license_retention WHERE license_tier = $1`, tier).Scan(&m, &e); err != nil {
			t.Errorf("licence %s: %v", tier, err)
			continue
		}
		if m != want[0] || e != want[1] {
			t.Errorf("licence %s retention = %d/%d, spec says %d/%d", tier, m, e, want[0], want[1])
		}
	}
	var builds [2]int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE os_type='client'), count(*) FILTER (WHERE os_type='server') FROM windows_builds`).Scan(&builds[0], &builds[1]); err != nil {
		t.Fatal(err)
	}
	if builds[0] < 10 || builds[1] != 4 {
		t.Errorf("windows_builds seeded %d client / %d server builds", builds[0], builds[1])
	}
}

// splitColumns splits "a numeric(10,2), b text" on the commas outside parentheses.
func splitColumns(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}
