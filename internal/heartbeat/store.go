package heartbeat

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/series"
)

// Multi-row inserts (unnest of column arrays): one statement per table whatever the row
// count.
//
// A heartbeat is all or nothing. The metrics insert (the first write, right after the
// certificate check) records in a transaction-local setting whether its row was new
// (markNew); every later write of series rows, collector snapshots and inventory runs
// only if it was (isNew), and the machine row's last CPU/RAM too. So a heartbeat whose
// (machine, recorded_at) is already recorded writes no series or inventory at all: an
// idempotent retry adds nothing, and a different body sent with an already-recorded
// recorded_at is not merged into the first one. It answers 200 like a retry (the agent
// resent or re-dated it; a 409 would only make it resend again) and is logged. The machine
// still counts as seen (last_seen, heartbeat_due_at, agent version, address). The batch
// is one implicit transaction, so the setting lives exactly as long as the heartbeat, and
// it still costs one round trip.
const (
	// markNew wraps the metrics insert (%s).
	markNew = `WITH ins AS (%s
RETURNING 1)
SELECT set_config('optralis.heartbeat_new', (EXISTS (SELECT FROM ins))::text, true)`

	insertDisks = `
INSERT INTO disk_info (machine_id, recorded_at, mount_point, device, fs_type, total_gb, used_gb, used_percent, model, interface)
SELECT $1::uuid, $2::timestamptz, * FROM unnest($3::text[], $4::text[], $5::text[], $6::numeric[], $7::numeric[],
    $8::numeric[], $9::text[], $10::text[])
WHERE current_setting('optralis.heartbeat_new', true) = 'true'
ON CONFLICT (machine_id, recorded_at, mount_point) DO NOTHING`
	insertEvents = `
INSERT INTO event_logs (machine_id, recorded_at, seq, event_time, log_name, source, event_id, level, message)
SELECT $1::uuid, $2::timestamptz, * FROM unnest($3::int4[], $4::timestamptz[], $5::text[], $6::text[], $7::int4[],
    $8::text[], $9::text[])
WHERE current_setting('optralis.heartbeat_new', true) = 'true'
ON CONFLICT (machine_id, recorded_at, seq) DO NOTHING`
	insertSMART = `
INSERT INTO smart_data (machine_id, recorded_at, device, model, serial_number, health_status, temperature_c, power_on_hours,
    reallocated_sectors, pending_sectors, uncorrectable_errors, wear_level_percent, attributes)
SELECT $1::uuid, $2::timestamptz, d, m, s, h, t, p, r, pe, u, w, a::jsonb FROM unnest($3::text[], $4::text[], $5::text[],
    $6::text[], $7::int4[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::numeric[], $13::text[])
    AS x (d, m, s, h, t, p, r, pe, u, w, a)
WHERE current_setting('optralis.heartbeat_new', true) = 'true'
ON CONFLICT (machine_id, recorded_at, device) DO NOTHING`
	// A snapshot only moves forward: a late retry of an older heartbeat leaves a newer one.
	upsertCollectors = `
INSERT INTO machine_collector_data (machine_id, collector, data, collected_at, updated_at)
SELECT $1::uuid, c, d::jsonb, $2::timestamptz, $5::timestamptz FROM unnest($3::text[], $4::text[]) AS x (c, d)
WHERE current_setting('optralis.heartbeat_new', true) = 'true'
ON CONFLICT (machine_id, collector) DO UPDATE SET data = EXCLUDED.data, collected_at = EXCLUDED.collected_at, updated_at = EXCLUDED.updated_at
WHERE machine_collector_data.collected_at <= EXCLUDED.collected_at`
	// The last statement writes the machine row and reads back what the answer needs, so
	// the answer costs no extra round trip: whether the collector configuration (the
	// machine's or its client's default) changed since the agent last fetched it, and
	// (only when Redis did not have it) the latest agent version of the client's channel.
	// It also keeps what a dashboard list row shows without reading the series: when the
	// next heartbeat is due ($6, now + the interval answered) and the CPU/RAM of the
	// newest heartbeat (a late retry of an older one does not overwrite them).
	touchMachine = `
UPDATE machines m SET last_seen = GREATEST(COALESCE(m.last_seen, $2), $2),
    heartbeat_due_at = GREATEST(COALESCE(m.heartbeat_due_at, $6), $6),
    last_cpu_percent = CASE WHEN $7 >= COALESCE(m.last_metrics_at, '-infinity') AND current_setting('optralis.heartbeat_new', true) = 'true' THEN $8 ELSE m.last_cpu_percent END,
    last_ram_percent = CASE WHEN $7 >= COALESCE(m.last_metrics_at, '-infinity') AND current_setting('optralis.heartbeat_new', true) = 'true' THEN $9 ELSE m.last_ram_percent END,
    last_metrics_at = GREATEST(COALESCE(m.last_metrics_at, $7), $7),
    agent_version = COALESCE(NULLIF($3, ''), m.agent_version), ip_address = COALESCE(NULLIF($4, ''), m.ip_address)
FROM clients c
WHERE m.id = $1 AND c.id = m.client_id
RETURNING GREATEST(m.collector_config_updated_at, c.collector_config_updated_at) > COALESCE(m.last_config_sync, '-infinity'::timestamptz),
    CASE WHEN $5 THEN (SELECT r.version FROM agent_releases r WHERE r.channel = c.agent_channel) END,
    current_setting('optralis.heartbeat_new', true) = 'true',
    c.license_expires_at`
	// assertLicence refuses (OA402) an agent whose client's licence expired more than the
	// grace period ago (migrations/00011).
	assertLicence = `SELECT optralis_assert_licence($1, $2, make_interval(days => $3))`
)

// write is one heartbeat's writes.
type write struct {
	machineID, ip string
	now           time.Time
	p             *Payload
	inv           *Inventory
	wantVersion   bool          // read the agent version from the database (not in Redis)
	interval      time.Duration // the interval the answer gives the agent
}

// queue adds every write of the heartbeat to the single batch; the last queued statement
// is touchMachine, whose row answers.
func (w write) queue(b *pgx.Batch) {
	p, id, at := w.p, w.machineID, w.p.RecordedAt
	m := p.Metrics
	sql, args := series.MetricsInsert([]series.Metric{{MachineID: id, RecordedAt: at, CPUPercent: *m.CPUPercent,
		RAMPercent: *m.RAMPercent, RAMUsedBytes: m.RAMUsedBytes, RAMTotalBytes: m.RAMTotalBytes, CPUTemp: m.CPUTemp,
		BytesRecv: m.BytesRecv, BytesSent: m.BytesSent, PacketLoss: m.PacketLoss, LatencyMS: m.LatencyMS,
		DiskLatencyMS: m.DiskLatencyMS, UptimeSeconds: m.UptimeSeconds, ProcessCount: m.ProcessCount}})
	b.Queue(fmt.Sprintf(markNew, sql), args...)

	if n := len(p.Disks); n > 0 {
		mount, dev, fs, model, iface := make([]string, n), make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		total, used, pct := make([]*float64, n), make([]*float64, n), make([]*float64, n)
		for i, d := range p.Disks {
			mount[i], dev[i], fs[i], model[i], iface[i] = d.MountPoint, opt(d.Device), opt(d.FSType), opt(d.Model), opt(d.Interface)
			total[i], used[i], pct[i] = d.TotalGB, d.UsedGB, d.UsedPercent
		}
		b.Queue(insertDisks, id, at, mount, dev, fs, total, used, pct, model, iface)
	}
	if n := len(p.Events); n > 0 {
		seq, when, logName, source, eid, level, msg := make([]int32, n), make([]time.Time, n), make([]string, n),
			make([]string, n), make([]*int32, n), make([]string, n), make([]string, n)
		for i, e := range p.Events {
			seq[i], when[i], logName[i], source[i], eid[i], msg[i] = int32(i), e.EventTime, e.LogName, e.Source, e.EventID, e.Message
			level[i] = e.Level
			if level[i] == "" {
				level[i] = "information"
			}
		}
		b.Queue(insertEvents, id, at, seq, when, logName, source, eid, level, msg)
	}
	if n := len(p.SMART); n > 0 {
		dev, model, serial, health, attrs := make([]string, n), make([]*string, n), make([]*string, n), make([]string, n), make([]*string, n)
		temp, hours, realloc, pending, uncorr, wear := make([]*int32, n), make([]*int64, n), make([]*int64, n), make([]*int64, n),
			make([]*int64, n), make([]*float64, n)
		for i, s := range p.SMART {
			dev[i], model[i], serial[i], health[i], attrs[i] = s.Device, opt(s.Model), opt(s.SerialNumber), s.HealthStatus, jsonText(s.Attributes)
			if health[i] == "" {
				health[i] = "unknown"
			}
			temp[i], hours[i], realloc[i], pending[i], uncorr[i], wear[i] = s.TemperatureC, s.PowerOnHours, s.ReallocatedSectors,
				s.PendingSectors, s.UncorrectableErrors, s.WearLevelPercent
		}
		b.Queue(insertSMART, id, at, dev, model, serial, health, temp, hours, realloc, pending, uncorr, wear, attrs)
	}
	if n := len(p.Collectors); n > 0 {
		names, data := make([]string, 0, n), make([]string, 0, n)
		for name, raw := range p.Collectors {
			names, data = append(names, name), append(data, string(raw))
		}
		b.Queue(upsertCollectors, id, at, names, data, w.now)
	}
	w.inv.queue(b, id, w.now)
	certs.QueueSync(b, id)
	b.Queue(touchMachine, id, w.now, p.AgentVersion, w.ip, w.wantVersion, w.now.Add(w.interval), at, *m.CPUPercent, *m.RAMPercent)
}

func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
