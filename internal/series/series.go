// Package series reads and writes the time-series tables, with the same SQL in the
// timescale and postgres modes: heartbeat inserts, dashboard history and licence cleanup.
package series

import (
	"context"
	"time"

	"github.com/optralis/optralis/internal/db"
)

// Metric is one heartbeat's machine metrics. Optional readings are nil when the agent has
// no sensor for them.
type Metric struct {
	MachineID     string
	RecordedAt    time.Time
	CPUPercent    float64
	RAMPercent    float64
	RAMUsedBytes  *int64
	RAMTotalBytes *int64
	CPUTemp       *float64
	BytesRecv     *int64
	BytesSent     *int64
	PacketLoss    *float64
	LatencyMS     *float64
	DiskLatencyMS *float64
	UptimeSeconds *int64
	ProcessCount  *int32
}

// insertMetrics is a multi-row insert (unnest of column arrays: one statement whatever the
// row count, and it works in both modes, unlike COPY on the test server). A retried
// heartbeat hits the (machine_id, recorded_at) key and inserts nothing.
const insertMetrics = `
INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent, ram_used_bytes, ram_total_bytes,
    cpu_temp, bytes_recv, bytes_sent, packet_loss, latency_ms, disk_latency_ms, uptime_seconds, process_count)
SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::float8[], $4::float8[], $5::int8[], $6::int8[],
    $7::float8[], $8::int8[], $9::int8[], $10::float8[], $11::float8[], $12::float8[], $13::int8[], $14::int4[])
ON CONFLICT (machine_id, recorded_at) DO NOTHING`

// MetricsInsert returns the statement and arguments inserting rows, for a pgx.Batch.
func MetricsInsert(rows []Metric) (string, []any) {
	n := len(rows)
	ids, at := make([]string, n), make([]time.Time, n)
	cpu, ram := make([]float64, n), make([]float64, n)
	used, total, recv, sent, up := make([]*int64, n), make([]*int64, n), make([]*int64, n), make([]*int64, n), make([]*int64, n)
	temp, loss, lat, dlat := make([]*float64, n), make([]*float64, n), make([]*float64, n), make([]*float64, n)
	procs := make([]*int32, n)
	for i, r := range rows {
		ids[i], at[i], cpu[i], ram[i] = r.MachineID, r.RecordedAt, r.CPUPercent, r.RAMPercent
		used[i], total[i], temp[i], recv[i], sent[i] = r.RAMUsedBytes, r.RAMTotalBytes, r.CPUTemp, r.BytesRecv, r.BytesSent
		loss[i], lat[i], dlat[i], up[i], procs[i] = r.PacketLoss, r.LatencyMS, r.DiskLatencyMS, r.UptimeSeconds, r.ProcessCount
	}
	return insertMetrics, []any{ids, at, cpu, ram, used, total, temp, recv, sent, loss, lat, dlat, up, procs}
}

// InsertMetrics writes rows and returns how many were new.
func InsertMetrics(ctx context.Context, q db.Querier, rows []Metric) (int64, error) {
	sql, args := MetricsInsert(rows)
	tag, err := q.Exec(ctx, sql, args...)
	if err != nil {
		return 0, db.Error(err, "inserting metrics")
	}
	return tag.RowsAffected(), nil
}
