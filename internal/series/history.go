package series

import (
	"context"
	"time"

	"github.com/optralis/optralis/internal/db"
)

// MinAggregatedPoints is the spec's threshold: with fewer hourly points than this (a new
// database, an aggregate not refreshed yet), history is read from the raw rows instead.
const MinAggregatedPoints = 5

// Sources of a history answer.
const (
	FromAggregates = "aggregates"
	FromRaw        = "raw"
)

// CPURAMPoint is one hour of CPU, RAM and CPU temperature.
type CPURAMPoint struct {
	Bucket     time.Time `json:"bucket"`
	CPUAvg     float64   `json:"cpu_avg"`
	CPUMin     float64   `json:"cpu_min"`
	CPUMax     float64   `json:"cpu_max"`
	RAMAvg     float64   `json:"ram_avg"`
	RAMMin     float64   `json:"ram_min"`
	RAMMax     float64   `json:"ram_max"`
	CPUTempAvg *float64  `json:"cpu_temp_avg"`
}

// firstHour is the first hour starting at or after from: a window's points are the hours
// that start inside it, so the aggregated and the raw answers cover the same hours.
func firstHour(from time.Time) time.Time {
	if h := from.Truncate(time.Hour); !h.Equal(from) {
		return h.Add(time.Hour)
	}
	return from
}

// CPURAMHistory returns one point per hour starting in [from, to), oldest first, from
// metrics_hourly, or — when it holds fewer than MinAggregatedPoints — from the raw metrics
// sampled at the last reading of each hour (spec "Fallback vers données brutes").
func CPURAMHistory(ctx context.Context, q db.Querier, machineID string, from, to time.Time) ([]CPURAMPoint, string, error) {
	from = firstHour(from)
	pts, err := collectCPURAM(ctx, q, `
		SELECT bucket, cpu_avg, cpu_min, cpu_max, ram_avg, ram_min, ram_max, cpu_temp_avg
		FROM metrics_hourly WHERE machine_id = $1 AND bucket >= $2 AND bucket < $3
		ORDER BY bucket`, machineID, from, to)
	if err != nil || len(pts) >= MinAggregatedPoints {
		return pts, FromAggregates, err
	}
	pts, err = collectCPURAM(ctx, q, `
		SELECT bucket, cpu_percent, cpu_percent, cpu_percent, ram_percent, ram_percent, ram_percent, cpu_temp
		FROM (SELECT DISTINCT ON (date_trunc('hour', recorded_at)) date_trunc('hour', recorded_at) AS bucket,
		             cpu_percent, ram_percent, cpu_temp
		      FROM metrics WHERE machine_id = $1 AND recorded_at >= $2 AND recorded_at < $3
		      ORDER BY date_trunc('hour', recorded_at), recorded_at DESC) s
		ORDER BY bucket`, machineID, from, to)
	return pts, FromRaw, err
}

func collectCPURAM(ctx context.Context, q db.Querier, sql string, args ...any) ([]CPURAMPoint, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, db.Error(err, "cpu/ram history")
	}
	defer rows.Close()
	out := []CPURAMPoint{}
	for rows.Next() {
		var p CPURAMPoint
		if err := rows.Scan(&p.Bucket, &p.CPUAvg, &p.CPUMin, &p.CPUMax, &p.RAMAvg, &p.RAMMin, &p.RAMMax, &p.CPUTempAvg); err != nil {
			return nil, err
		}
		p.Bucket = p.Bucket.UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// NetworkPoint is one hour of network readings.
type NetworkPoint struct {
	Bucket        time.Time `json:"bucket"`
	BytesRecvAvg  *float64  `json:"bytes_recv_avg"`
	BytesRecvMax  *int64    `json:"bytes_recv_max"`
	BytesSentAvg  *float64  `json:"bytes_sent_avg"`
	BytesSentMax  *int64    `json:"bytes_sent_max"`
	PacketLossAvg *float64  `json:"packet_loss_avg"`
	PacketLossMax *float64  `json:"packet_loss_max"`
	LatencyAvg    *float64  `json:"latency_avg"`
	LatencyMax    *float64  `json:"latency_max"`
}

// NetworkHistory is CPURAMHistory for network_hourly, with the same raw fallback.
func NetworkHistory(ctx context.Context, q db.Querier, machineID string, from, to time.Time) ([]NetworkPoint, string, error) {
	from = firstHour(from)
	pts, err := collectNetwork(ctx, q, `
		SELECT bucket, bytes_recv_avg::float8, bytes_recv_max, bytes_sent_avg::float8, bytes_sent_max,
		       packet_loss_avg, packet_loss_max, latency_avg, latency_max
		FROM network_hourly WHERE machine_id = $1 AND bucket >= $2 AND bucket < $3
		ORDER BY bucket`, machineID, from, to)
	if err != nil || len(pts) >= MinAggregatedPoints {
		return pts, FromAggregates, err
	}
	pts, err = collectNetwork(ctx, q, `
		SELECT bucket, bytes_recv::float8, bytes_recv, bytes_sent::float8, bytes_sent, packet_loss, packet_loss, latency_ms, latency_ms
		FROM (SELECT DISTINCT ON (date_trunc('hour', recorded_at)) date_trunc('hour', recorded_at) AS bucket,
		             bytes_recv, bytes_sent, packet_loss, latency_ms
		      FROM metrics WHERE machine_id = $1 AND recorded_at >= $2 AND recorded_at < $3
		      ORDER BY date_trunc('hour', recorded_at), recorded_at DESC) s
		ORDER BY bucket`, machineID, from, to)
	return pts, FromRaw, err
}

func collectNetwork(ctx context.Context, q db.Querier, sql string, args ...any) ([]NetworkPoint, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, db.Error(err, "network history")
	}
	defer rows.Close()
	out := []NetworkPoint{}
	for rows.Next() {
		var p NetworkPoint
		if err := rows.Scan(&p.Bucket, &p.BytesRecvAvg, &p.BytesRecvMax, &p.BytesSentAvg, &p.BytesSentMax,
			&p.PacketLossAvg, &p.PacketLossMax, &p.LatencyAvg, &p.LatencyMax); err != nil {
			return nil, err
		}
		p.Bucket = p.Bucket.UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// DiskPoint is one hour of one mounted volume's usage.
type DiskPoint struct {
	Bucket     time.Time `json:"bucket"`
	MountPoint string    `json:"mount_point"`
	UsageAvg   *float64  `json:"usage_avg"`
	UsageMax   *float64  `json:"usage_max"`
}

// DiskHistory is CPURAMHistory for disk_hourly: one point per hour and mount point, oldest
// first. The raw fallback applies when fewer than MinAggregatedPoints hours are aggregated
// (hours, not rows: a machine with four volumes has four rows an hour).
func DiskHistory(ctx context.Context, q db.Querier, machineID string, from, to time.Time) ([]DiskPoint, string, error) {
	from = firstHour(from)
	pts, err := collectDisks(ctx, q, `
		SELECT bucket, mount_point, disk_usage_avg::float8, disk_usage_max::float8
		FROM disk_hourly WHERE machine_id = $1 AND bucket >= $2 AND bucket < $3
		ORDER BY bucket, mount_point`, machineID, from, to)
	if err != nil || hours(pts) >= MinAggregatedPoints {
		return pts, FromAggregates, err
	}
	pts, err = collectDisks(ctx, q, `
		SELECT bucket, mount_point, used_percent::float8, used_percent::float8
		FROM (SELECT DISTINCT ON (mount_point, date_trunc('hour', recorded_at)) date_trunc('hour', recorded_at) AS bucket,
		             mount_point, used_percent
		      FROM disk_info WHERE machine_id = $1 AND recorded_at >= $2 AND recorded_at < $3
		      ORDER BY mount_point, date_trunc('hour', recorded_at), recorded_at DESC) s
		ORDER BY bucket, mount_point`, machineID, from, to)
	return pts, FromRaw, err
}

// hours counts the distinct buckets of points ordered by bucket.
func hours(pts []DiskPoint) int {
	n := 0
	for i, p := range pts {
		if i == 0 || !p.Bucket.Equal(pts[i-1].Bucket) {
			n++
		}
	}
	return n
}

func collectDisks(ctx context.Context, q db.Querier, sql string, args ...any) ([]DiskPoint, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, db.Error(err, "disk history")
	}
	defer rows.Close()
	out := []DiskPoint{}
	for rows.Next() {
		var p DiskPoint
		if err := rows.Scan(&p.Bucket, &p.MountPoint, &p.UsageAvg, &p.UsageMax); err != nil {
			return nil, err
		}
		p.Bucket = p.Bucket.UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}
