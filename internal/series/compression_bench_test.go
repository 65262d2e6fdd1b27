package series_test

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/series"
	"github.com/optralis/optralis/internal/testenv"
)

// BenchmarkTimescaleCompression measures TimescaleDB's compression of realistic agent data
// (spec: "-90 % stockage"): BENCH_MACHINES machines (default 200) for BENCH_DAYS days
// (default 3) at one heartbeat a minute, diurnal CPU/RAM with noise and spikes, two disks
// per machine filling slowly. It compresses every chunk and reports the ratio of
// hypertable_compression_stats. Run with `make bench-compression`.
func BenchmarkTimescaleCompression(b *testing.B) {
	machines, days := envInt("BENCH_MACHINES", 200), envInt("BENCH_DAYS", 3)
	for range b.N {
		pool := testenv.Timescale(b)
		ctx := context.Background()
		clientID := testenv.Client(b, pool, "Enterprise")
		ids := make([]string, machines)
		for i := range ids {
			ids[i] = testenv.Machine(b, pool, clientID, "bench-"+strconv.Itoa(i))
		}
		end := time.Now().UTC().Truncate(24 * time.Hour)
		start := end.AddDate(0, 0, -days)
		rng := rand.New(rand.NewPCG(1, 2))
		b.ResetTimer()
		genStart := time.Now()
		var rows int
		for i, id := range ids {
			var metrics []series.Metric
			var disks []disk
			base := 10 + 30*rng.Float64() // each machine has its own load level
			ram := 30 + 40*rng.Float64()
			used := [2]float64{50 + 150*rng.Float64(), 100 + 500*rng.Float64()}
			total := [2]float64{256, 1024}
			recv, sent := int64(0), int64(0)
			for at := start; at.Before(end); at = at.Add(time.Minute) {
				hour := float64(at.Hour()) + float64(at.Minute())/60
				diurnal := math.Max(0, math.Sin((hour-6)/24*2*math.Pi)) // busy in working hours
				cpu := base + 40*diurnal + 5*rng.NormFloat64()
				if rng.Float64() < 0.002 {
					cpu = 85 + 15*rng.Float64() // occasional spike past the alert threshold
				}
				recv += int64(2e5 + 3e6*diurnal + 1e5*rng.Float64())
				sent += int64(1e5 + 1e6*diurnal + 5e4*rng.Float64())
				metrics = append(metrics, series.Metric{
					MachineID: id, RecordedAt: at,
					CPUPercent: clamp(cpu), RAMPercent: clamp(ram + 15*diurnal + 2*rng.NormFloat64()),
					CPUTemp:   ptr(math.Round((45+20*diurnal+2*rng.NormFloat64())*10) / 10),
					BytesRecv: ptr(recv), BytesSent: ptr(sent),
					PacketLoss: ptr(math.Max(0, 0.2*rng.NormFloat64())), LatencyMS: ptr(math.Round(12 + 3*rng.Float64())),
				})
				for d := range 2 {
					used[d] += 0.0005 * rng.Float64() // GB a minute: slow growth
					disks = append(disks, disk{id, at, d, used[d], total[d]})
				}
			}
			insertAll(b, pool, metrics, disks)
			rows += len(metrics) + len(disks)
			if i%50 == 49 {
				b.Logf("%d/%d machines, %d rows, %.0f rows/s", i+1, machines, rows, float64(rows)/time.Since(genStart).Seconds())
			}
		}
		var allBefore, allAfter int64
		for _, table := range []string{"metrics", "disk_info"} {
			if _, err := pool.Exec(ctx, `SELECT count(compress_chunk(c, if_not_compressed => true)) FROM show_chunks($1::regclass) c`, table); err != nil {
				b.Fatal(err)
			}
			var before, after int64
			if err := pool.QueryRow(ctx, `SELECT sum(before_compression_total_bytes), sum(after_compression_total_bytes)
				FROM hypertable_compression_stats($1::regclass)`, table).Scan(&before, &after); err != nil {
				b.Fatal(err)
			}
			b.Logf("%s: %d bytes before, %d after compression: %.1f %% of the original (-%.1f %%)",
				table, before, after, 100*float64(after)/float64(before), 100-100*float64(after)/float64(before))
			b.ReportMetric(100*float64(after)/float64(before), table+"_%_of_original")
			allBefore, allAfter = allBefore+before, allAfter+after
		}
		b.ReportMetric(100*float64(allAfter)/float64(allBefore), "all_%_of_original")
		b.ReportMetric(float64(rows), "rows")
	}
}

type disk struct {
	machineID   string
	at          time.Time
	index       int
	used, total float64
}

func insertAll(b *testing.B, pool *pgxpool.Pool, metrics []series.Metric, disks []disk) {
	ctx := context.Background()
	for len(metrics) > 0 {
		k := min(len(metrics), 5000)
		if _, err := series.InsertMetrics(ctx, pool, metrics[:k]); err != nil {
			b.Fatal(err)
		}
		metrics = metrics[k:]
	}
	for len(disks) > 0 {
		k := min(len(disks), 5000)
		n := k
		ids, at, mount, dev, used, total, pct := make([]string, n), make([]time.Time, n), make([]string, n), make([]string, n), make([]float64, n), make([]float64, n), make([]float64, n)
		for i, d := range disks[:k] {
			ids[i], at[i], used[i], total[i] = d.machineID, d.at, math.Round(d.used*100)/100, d.total
			mount[i], dev[i] = []string{"/", "/data"}[d.index], []string{"/dev/nvme0n1p2", "/dev/sda1"}[d.index]
			pct[i] = math.Round(d.used/d.total*10000) / 100
		}
		if _, err := pool.Exec(ctx, `INSERT INTO disk_info (machine_id, recorded_at, mount_point, device, fs_type, total_gb, used_gb, used_percent, model, interface)
			SELECT m, t, mp, dv, 'ext4', tg, ug, up, 'Samsung SSD 980', 'NVMe'
			FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::numeric[], $6::numeric[], $7::numeric[]) AS u(m, t, mp, dv, ug, tg, up)
			ON CONFLICT DO NOTHING`, ids, at, mount, dev, used, total, pct); err != nil {
			b.Fatal(err)
		}
		disks = disks[k:]
	}
}

func clamp(v float64) float64 { return math.Round(math.Min(100, math.Max(0, v))*100) / 100 }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
