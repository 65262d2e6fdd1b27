package agentsim_test

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/agentsim"
	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/authfn"
	"github.com/optralis/optralis/internal/app/monolith"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/devstack"
	"github.com/optralis/optralis/internal/heartbeat"
	"github.com/optralis/optralis/internal/localsvc"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/ratelimit"
	"github.com/optralis/optralis/internal/series"
	"github.com/optralis/optralis/internal/testenv"
)

// roundTrips counts what the server's pool sends: one per batch, one per query.
type roundTrips struct{ n atomic.Int64 }

func (c *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

type step struct {
	offered    float64
	acked      float64 // acknowledged heartbeats per second of the step's sending window
	sustained  bool    // every offered heartbeat sent (≤ 1 % not sent) and acknowledged, p99 under 1 s
	sum        agentsim.Summary
	rowsPerSec float64
	rtPerHB    float64
	stmtPerHB  float64 // SQL statements of committed groups per heartbeat
	groupSize  float64 // heartbeats per committed group
	rowsOK     bool
	dbRows     int64
	acks       int64
}

// killResult is the run where the server (a separate `optralis dev` process) is killed
// with SIGKILL under load and restarted.
type killResult struct {
	rate            float64
	sum             agentsim.Summary
	rows            int64 // metrics rows written during the run
	dupes           int64 // (machine, recorded_at) pairs stored twice: must be 0
	killedAt, downs time.Duration
	err             string
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkIngest is `make bench-ingest`: the real handlers (the public API over HTTP, the
// agent routes over mutual TLS, as `optralis dev` serves them) on a fresh database,
// BENCH_MACHINES simulated agents enrolled through the bootstrap, the heartbeat rate
// stepped up until saturation with group commit off and then on, the raw database limit
// measured with the same rows written by batched unnest INSERTs, and a run where a
// separate `optralis dev` process is killed with SIGKILL under load and restarted.
// Writes bench/ingest.md and bench/ingest.png.
func BenchmarkIngest(b *testing.B) {
	ctx := context.Background()
	machinesN := envInt("BENCH_MACHINES", 1000)
	stepSecs := envInt("BENCH_STEP_SECONDS", 10)
	rates := []float64{100, 200, 300, 400, 600, 800, 1000, 1500, 2000, 2500, 3000}
	if v := os.Getenv("BENCH_RATES"); v != "" {
		rates = nil
		for _, f := range strings.Split(v, ",") {
			r, _ := strconv.ParseFloat(f, 64)
			rates = append(rates, r)
		}
	}

	base := testenv.NewDB(b, migrate.ModePostgres)
	rt := &roundTrips{}
	pcfg, err := db.Config(base.Config().ConnString(), db.ServerProfile())
	if err != nil {
		b.Fatal(err)
	}
	pcfg.ConnConfig.Tracer = rt
	if os.Getenv("BENCH_ASYNC_COMMIT") != "" {
		// Diagnostic only: how much of the time is the WAL flush of each commit.
		pcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	rc, prefix := testenv.Redis(b)
	now := time.Now().UTC()
	// The CA lives where the killed-and-restarted `optralis dev` finds it (-dir), so the
	// machines enrolled here are its agents too.
	stateDir := b.TempDir()
	authority, err := ca.LoadOrCreateLocal(filepath.Join(stateDir, "ca"), now.Add(-time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	cfg := config.Config{Dev: true}
	cfg.Enrolment.AgentEndpoint = "https://127.0.0.1"
	// Every simulated agent shares 127.0.0.1 and sends several heartbeats a minute: the
	// per-IP (3000/min) and per-machine limits are lifted so the benchmark measures ingest,
	// not the limiters.
	newHB := func(group *heartbeat.GroupCommit) *heartbeat.Service {
		return heartbeat.New(heartbeat.Deps{Pool: pool, Redis: rc, Clock: clock.System{}, Logger: testenv.Discard(), RedisPrefix: prefix,
			Limit: ratelimit.Limit{Burst: 1 << 30, Period: time.Minute}, MachineLimit: ratelimit.Limit{Burst: -1}, GroupCommit: group})
	}
	group := &heartbeat.GroupCommit{MaxGroup: envInt("BENCH_GROUP_MAX", heartbeat.DefaultMaxGroup),
		Committers: envInt("BENCH_COMMITTERS", heartbeat.DefaultCommitters)}
	hbOff, hbOn := newHB(nil), newHB(group)
	defer hbOn.Close()
	core := app.Core{Pool: pool, Redis: rc, Logger: testenv.Discard(), Clock: clock.System{}}
	bind := func(hb *heartbeat.Service) *monolith.Monolith {
		m, err := monolith.New(core, monolith.Services{Auth: authfn.NewService(core, authfn.Settings{Secret: []byte(strings.Repeat("s", 32)), Dev: true}),
			Heartbeat: hb, CA: authority, Enrolment: cfg.Enrolment})
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	mOff, mOn := bind(hbOff), bind(hbOn)
	api := httptest.NewServer(mOn.API)
	defer api.Close()
	serverCert, err := authority.ServerCertificate([]string{"127.0.0.1"}, now)
	if err != nil {
		b.Fatal(err)
	}
	// One agent server whose handler is switched between the two services.
	var current atomic.Pointer[http.Handler]
	agentOn, agentOff := devstack.TLSIdentity(mOn.Agent), devstack.TLSIdentity(mOff.Agent)
	current.Store(&agentOn)
	agent := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*current.Load()).ServeHTTP(w, r) }))
	agent.TLS = devstack.AgentTLSConfig(authority, serverCert)
	agent.StartTLS()
	defer agent.Close()

	_, token, err := agentsim.CreateToken(ctx, pool, "", machinesN)
	if err != nil {
		b.Fatal(err)
	}
	o := agentsim.Options{APIURL: api.URL, AgentURL: agent.URL, Workers: envInt("BENCH_WORKERS", 128), Gzip: true}
	t0 := time.Now()
	machines, err := agentsim.Enrol(ctx, o, token, machinesN)
	if err != nil {
		b.Fatal(err)
	}
	enrolTime := time.Since(t0)
	b.Logf("enrolled %d machines in %s", machinesN, enrolTime)

	tables := []string{"metrics", "disk_info", "event_logs", "smart_data", "machine_collector_data"}
	countRows := func() (metrics, all int64) {
		for _, tb := range tables {
			var n int64
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+tb).Scan(&n); err != nil {
				b.Fatal(err)
			}
			all += n
			if tb == "metrics" {
				metrics = n
			}
		}
		return metrics, all
	}
	// Warm every machine's TLS connection and the statement caches (not measured).
	o.Rate, o.Duration = 200, time.Duration(max(2, machinesN/150))*time.Second
	agentsim.Run(ctx, o, machines)
	sweep := func(label string, hb *heartbeat.Service) []step {
		var steps []step
		var acks int64
		_, rowsBefore := countRows()
		metricsBase, _ := countRows()
		for _, r := range rates {
			o.Rate, o.Duration = r, time.Duration(stepSecs)*time.Second
			rt.n.Store(0)
			ws0 := hb.Writer().Stats()
			sum := agentsim.Run(ctx, o, machines)
			trips := rt.n.Load()
			ws := hb.Writer().Stats()
			acks += sum.Acked
			metricsRows, rowsNow := countRows()
			s := step{offered: r, sum: sum, rowsPerSec: float64(rowsNow-rowsBefore) / sum.Elapsed.Seconds(), acks: acks,
				dbRows: metricsRows - metricsBase, rowsOK: metricsRows-metricsBase == acks}
			if sum.Acked > 0 {
				s.rtPerHB = float64(trips) / float64(sum.Acked)
			}
			if n := ws.Items - ws0.Items; n > 0 {
				s.stmtPerHB = float64(ws.Statements-ws0.Statements) / float64(n)
				s.groupSize = float64(n) / float64(ws.Groups-ws0.Groups)
			}
			s.acked = float64(sum.Acked) / o.Duration.Seconds()
			s.sustained = float64(sum.Dropped) <= 0.01*r*o.Duration.Seconds() && sum.Acked == sum.Sent && sum.P99 < time.Second
			rowsBefore = rowsNow
			steps = append(steps, s)
			b.Logf("group commit %s, offered %.0f/s: %s; rows %.0f/s; round trips/hb %.3f; statements/hb %.2f; group %.1f; db rows %d = acks %d: %v; load %s",
				label, r, sum, s.rowsPerSec, s.rtPerHB, s.stmtPerHB, s.groupSize, s.dbRows, acks, s.rowsOK, loadAverage())
			if !s.sustained {
				break // saturated
			}
		}
		return steps
	}
	current.Store(&agentOff)
	offSteps := sweep("off", hbOff)
	current.Store(&agentOn)
	onSteps := sweep("on", hbOn)

	raw := rawLimit(b, pool, machines, 10*time.Second)
	b.Logf("raw unnest inserts: %.0f rows/s", raw)
	kill := killRun(b, pool, stateDir, base.Config().ConnString(), "redis://"+rc.Options().Addr, machines, o)
	b.Logf("SIGKILL run: %s; rows %d; duplicates %d; %s", kill.sum, kill.rows, kill.dupes, kill.err)
	writeReport(b, offSteps, onSteps, raw, kill, machinesN, enrolTime, group)
}

// killRun builds bin/optralis, serves the agents from `optralis dev` (group commit on,
// its defaults) against the benchmark's database and Redis, sends heartbeats at
// BENCH_KILL_RATE for BENCH_KILL_SECONDS, kills the server with SIGKILL a third of the
// way in and starts it again at once. Agents retry (with backoff) until acknowledged, as
// real agents do, so every heartbeat is eventually acknowledged: the rows must equal the
// acknowledgements (none lost, none twice).
func killRun(b *testing.B, pool *pgxpool.Pool, stateDir, dbURL, redisURL string, machines []*agentsim.Machine, o agentsim.Options) killResult {
	ctx := context.Background()
	res := killResult{rate: float64(envInt("BENCH_KILL_RATE", 1000))}
	bin := filepath.Join(b.TempDir(), "optralis")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/optralis").CombinedOutput(); err != nil {
		res.err = fmt.Sprintf("building optralis: %v %s", err, out)
		return res
	}
	apiPort, _ := localsvc.FreePort()
	agentPort, _ := localsvc.FreePort()
	logf, err := os.Create(filepath.Join(stateDir, "dev.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	start := func() (*exec.Cmd, error) {
		cmd := exec.Command(bin, "dev", "-dir", stateDir, "-agent-port", strconv.Itoa(agentPort))
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "REDIS_URL="+redisURL, "PORT="+strconv.Itoa(apiPort),
			"HEARTBEAT_MACHINE_LIMIT=0", "HEARTBEAT_IP_LIMIT=1000000000", "HEARTBEAT_GROUP_COMMIT=on")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(agentPort)); err == nil {
				c.Close()
				return cmd, nil
			}
		}
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("optralis dev did not listen on the agent port within 2 minutes (see %s)", logf.Name())
	}
	cmd, err := start()
	if err != nil {
		res.err = err.Error()
		return res
	}
	var before int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM metrics`).Scan(&before); err != nil {
		b.Fatal(err)
	}
	o.AgentURL = "https://127.0.0.1:" + strconv.Itoa(agentPort)
	o.Rate, o.Duration, o.Attempts = res.rate, time.Duration(envInt("BENCH_KILL_SECONDS", 15))*time.Second, 40
	done := make(chan agentsim.Summary)
	go func() { done <- agentsim.Run(ctx, o, machines) }()
	res.killedAt = o.Duration / 3
	time.Sleep(res.killedAt)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	down := time.Now()
	cmd, err = start()
	res.downs = time.Since(down)
	if err != nil {
		res.err = err.Error()
	}
	res.sum = <-done
	if cmd != nil {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}
	var after int64
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) - count(DISTINCT (machine_id, recorded_at)) FROM metrics`).Scan(&after, &res.dupes); err != nil {
		b.Fatal(err)
	}
	res.rows = after - before
	return res
}

// rawLimit writes the same kind of rows (the simulator's payloads) straight into the
// tables with batched unnest INSERTs from as many connections as the pool allows: the
// database's own limit on this machine, without HTTP, TLS, JSON or validation.
func rawLimit(b *testing.B, pool *pgxpool.Pool, machines []*agentsim.Machine, d time.Duration) float64 {
	ctx := context.Background()
	var rows atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	workers := int(pool.Config().MaxConns)
	base := time.Now().UTC().Add(-2 * time.Hour)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := 0
			for time.Now().Before(deadline) {
				const perBatch = 200
				ms := make([]series.Metric, perBatch)
				var dm, dmount []string
				var dat []time.Time
				var dpct []float64
				for i := range ms {
					m := machines[(w*perBatch+i)%len(machines)]
					at := base.Add(time.Duration(w*1_000_000+seq) * time.Millisecond)
					seq++
					cpu, ram := 10+float64(i%70), 30+float64(i%50)
					ms[i] = series.Metric{MachineID: m.ID, RecordedAt: at, CPUPercent: cpu, RAMPercent: ram}
					for _, mount := range []string{`C:\`, `D:\`} {
						dm, dmount, dat, dpct = append(dm, m.ID), append(dmount, mount), append(dat, at), append(dpct, 50)
					}
				}
				sql, args := series.MetricsInsert(ms)
				batch := &pgx.Batch{}
				batch.Queue(sql, args...)
				batch.Queue(`INSERT INTO disk_info (machine_id, recorded_at, mount_point, used_percent)
					SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::numeric[]) ON CONFLICT DO NOTHING`, dm, dat, dmount, dpct)
				if err := pool.SendBatch(ctx, batch).Close(); err != nil {
					b.Error(err)
					return
				}
				rows.Add(int64(len(ms) + len(dm)))
			}
		}()
	}
	wg.Wait()
	return float64(rows.Load()) / d.Seconds()
}

func writeReport(b *testing.B, off, on []step, raw float64, kill killResult, machines int, enrol time.Duration, group *heartbeat.GroupCommit) {
	var sb strings.Builder
	bestOf := func(steps []step) step {
		best := step{}
		for _, s := range steps {
			if s.sustained && s.acked > best.acked {
				best = s
			}
		}
		return best
	}
	fmt.Fprintf(&sb, "# Heartbeat ingest benchmark\n\nGenerated by `make bench-ingest` (BenchmarkIngest in internal/agentsim) on %s, %s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), hostDescription())
	fmt.Fprintf(&sb, "%d simulated agents enrolled through the real bootstrap (CSR per machine) in %s, then heartbeats over mutual TLS "+
		"(gzip JSON: metrics, 1–4 disks, 0–3 events, SMART hourly, collectors every 5 min) at a stepped total rate, first with group "+
		"commit off (each heartbeat its own transaction), then on (at most %d heartbeats a group, %d committers). Application, "+
		"PostgreSQL 15, Redis and the simulator share the machine's cores. Load average after each step is in the benchmark's log.\n\n",
		machines, enrol.Round(time.Millisecond), group.MaxGroup, group.Committers)
	table := func(title string, steps []step) {
		fmt.Fprintf(&sb, "### %s\n\n", title)
		sb.WriteString("| offered hb/s | acked hb/s | p50 | p90 | p99 | not sent (senders saturated) | errors | DB round trips / hb | statements / hb | hb / group | rows/s | DB rows = acks |\n")
		sb.WriteString("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|\n")
		for _, s := range steps {
			var errs []string
			for k, v := range s.sum.Errors {
				errs = append(errs, fmt.Sprintf("%s: %d", k, v))
			}
			fmt.Fprintf(&sb, "| %.0f | %.0f | %s | %s | %s | %d | %s | %.3f | %.2f | %.1f | %.0f | %v (%d = %d) |\n", s.offered, s.acked,
				ms(s.sum.P50), ms(s.sum.P90), ms(s.sum.P99), s.sum.Dropped, strings.Join(errs, ", "), s.rtPerHB, s.stmtPerHB, s.groupSize,
				s.rowsPerSec, s.rowsOK, s.dbRows, s.acks)
		}
		best := bestOf(steps)
		fmt.Fprintf(&sb, "\nMax sustained (every offered heartbeat sent and acknowledged, ≤ 1 %% not sent, p99 < 1 s): **%.0f heartbeats/s**, "+
			"p50 %s, p99 %s, %.0f rows/s; ingest ÷ raw = **%.2f**.\n\n", best.acked, ms(best.sum.P50), ms(best.sum.P99), best.rowsPerSec, best.rowsPerSec/raw)
	}
	table("Group commit off", off)
	table("Group commit on", on)
	fmt.Fprintf(&sb, "Raw database limit, same machine, same run: batched `unnest` INSERTs (200 metrics rows + 400 disk rows per "+
		"batch, 25 connections): **%.0f rows/s**.\n\n", raw)
	var at1000 *step
	for i := range on {
		if on[i].offered == 1000 {
			at1000 = &on[i]
		}
	}
	best := bestOf(on)
	sb.WriteString("Targets (group commit on): ")
	fmt.Fprintf(&sb, "≥ 2,000 heartbeats/s sustained: %.0f (%s); ", best.acked, met(best.acked >= 2000))
	if at1000 != nil {
		fmt.Fprintf(&sb, "p99 ≤ 50 ms at 1,000/s: %s (%s); ", ms(at1000.sum.P99), met(at1000.sum.P99 <= 50*time.Millisecond && at1000.sustained))
	} else {
		sb.WriteString("p99 ≤ 50 ms at 1,000/s: not reached (not met); ")
	}
	fmt.Fprintf(&sb, "ingest ÷ raw ≥ 0.5: %.2f (%s).\n\n", best.rowsPerSec/raw, met(best.rowsPerSec/raw >= 0.5))
	sb.WriteString("Round trips are counted by a pgx tracer on the server's pool (batches + queries) divided by acknowledged heartbeats; " +
		"statements and group sizes by the group writer's counters (committed groups). Off, a heartbeat is a group of one: one round trip.\n\n")
	sb.WriteString("### SIGKILL under load\n\n")
	if kill.err != "" {
		fmt.Fprintf(&sb, "Run failed: %s\n\n", kill.err)
	}
	fmt.Fprintf(&sb, "`optralis dev` (built to a binary, a separate process, group commit on, its defaults) served the same agents against "+
		"the same database at %.0f heartbeats/s offered for %s; it was killed with SIGKILL after %s and started again at once "+
		"(listening again after %s). Agents retried each heartbeat with backoff until acknowledged (at most 40 tries).\n\n",
		kill.rate, kill.sum.Elapsed.Round(time.Second), kill.killedAt, kill.downs.Round(time.Millisecond))
	fmt.Fprintf(&sb, "| heartbeats acknowledged | metrics rows written | abandoned | duplicates | retries | errors seen | acknowledged = rows |\n|---:|---:|---:|---:|---:|---|---|\n")
	var errs []string
	for k, v := range kill.sum.Errors {
		errs = append(errs, fmt.Sprintf("%s: %d", k, v))
	}
	fmt.Fprintf(&sb, "| %d | %d | %d | %d | %d | %s | **%v** |\n\n", kill.sum.Acked, kill.rows, kill.sum.GaveUp, kill.dupes, kill.sum.Retries,
		strings.Join(errs, ", "), kill.err == "" && kill.sum.Acked == kill.rows && kill.dupes == 0)
	sb.WriteString("![latency against rate](ingest.png)\n\n")
	var maxP99 time.Duration
	var maxRate float64
	for _, s := range append(append([]step{}, off...), on...) {
		maxP99, maxRate = max(maxP99, s.sum.P99), max(maxRate, s.offered)
	}
	fmt.Fprintf(&sb, "Plot: x = offered heartbeats/s from 0 to %.0f, y = latency from 0 to %s (group commit on: p50 blue, p99 red; "+
		"off: p50 light blue, p99 orange); one mark per step.\n\n"+
		"Where the time goes: [ingest-analysis.md](ingest-analysis.md).\n", maxRate, ms(maxP99))
	if err := os.WriteFile("../../bench/ingest.md", []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := plot("../../bench/ingest.png", on, off); err != nil {
		b.Fatal(err)
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

func hostDescription() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	n := strings.Count(string(b), "processor\t:")
	return fmt.Sprintf("%d CPU cores, load average at the end of the run %s (anything above the benchmark's own share is "+
		"other work on the machine)", n, loadAverage())
}

func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " / ")
}

// plot draws latency (p50, p99) against offered rate as a PNG with the standard library:
// steps (group commit on) in blue and red, off in lighter colours.
func plot(path string, steps, off []step) error {
	const w, h, pad = 640, 400, 40
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.White)
		}
	}
	var maxX, maxY float64
	for _, s := range append(append([]step{}, steps...), off...) {
		maxX, maxY = max(maxX, s.offered), max(maxY, float64(s.sum.P99))
	}
	if maxX == 0 || maxY == 0 {
		return nil
	}
	px := func(v float64) int { return pad + int(v/maxX*float64(w-2*pad)) }
	py := func(v float64) int { return h - pad - int(v/maxY*float64(h-2*pad)) }
	grey, black := color.RGBA{220, 220, 220, 255}, color.Black
	for i := 0; i <= 4; i++ { // grid
		y := pad + i*(h-2*pad)/4
		for x := pad; x < w-pad; x++ {
			img.Set(x, y, grey)
		}
	}
	for x := pad; x < w-pad; x++ {
		img.Set(x, h-pad, black)
	}
	for y := pad; y < h-pad; y++ {
		img.Set(pad, y, black)
	}
	line := func(x0, y0, x1, y1 int, c color.Color) {
		n := max(abs(x1-x0), abs(y1-y0), 1)
		for i := 0; i <= n; i++ {
			x, y := x0+(x1-x0)*i/n, y0+(y1-y0)*i/n
			for dx := -1; dx <= 1; dx++ {
				for dy := -1; dy <= 1; dy++ {
					img.Set(x+dx, y+dy, c)
				}
			}
		}
	}
	for _, series := range []struct {
		c     color.Color
		steps []step
		get   func(step) float64
	}{{color.RGBA{140, 190, 250, 255}, off, func(s step) float64 { return float64(s.sum.P50) }},
		{color.RGBA{250, 160, 60, 255}, off, func(s step) float64 { return float64(s.sum.P99) }},
		{color.RGBA{30, 90, 220, 255}, steps, func(s step) float64 { return float64(s.sum.P50) }},
		{color.RGBA{220, 40, 40, 255}, steps, func(s step) float64 { return float64(s.sum.P99) }}} {
		steps := series.steps
		for i, s := range steps {
			x, y := px(s.offered), py(series.get(s))
			line(x-3, y, x+3, y, series.c)
			if i > 0 {
				p := steps[i-1]
				line(px(p.offered), py(series.get(p)), x, y, series.c)
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return png.Encode(f, img)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
