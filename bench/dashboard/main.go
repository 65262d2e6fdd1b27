// Command dashboard is `make bench-dashboard`: it seeds a realistic fleet (issue 11's
// performance section: 10,000 machines across 20 clients, the largest 5,000; 30 days of
// hourly aggregates and 2 days of raw 60 s metrics for 500 of them; inventory for all),
// serves the API in-process as the local stack does, replays a dashboard workload over
// real HTTP with and without Redis, and writes bench/dashboard.md. Run it from the
// repository root:
//
//	make bench-dashboard
//	go run ./bench/dashboard -requests 6000 -speedup 10 -out bench/dashboard.md
//
// DATABASE_URL (a server where it creates, migrates and drops its own database) and
// REDIS_URL are used when set; otherwise it starts throwaway servers, as
// internal/testenv/withservices does.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/optralis/optralis/internal/app/migratefn"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/logging"
	"github.com/optralis/optralis/internal/migrate"
)

type options struct {
	out          string
	requests     int
	speedup      float64
	usersBig     int
	usersOther   int
	probeN       int
	realPace     time.Duration
	scale        float64
	history      int
	keep         bool
	reuse        string
	seed         uint64
	replayMaxDur time.Duration
	waitLoad     float64
	waitMax      time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "bench/dashboard.md", "report file")
	flag.IntVar(&o.requests, "requests", 6000, "requests per replay (with Redis, then without)")
	flag.Float64Var(&o.speedup, "speedup", 10, "time compression of the users' 30 s refresh (10: every 3 s)")
	flag.IntVar(&o.usersBig, "users-big", 50, "simulated users of the largest client")
	flag.IntVar(&o.usersOther, "users-other", 3, "simulated users of each other client")
	flag.IntVar(&o.probeN, "probe-machines", 100, "machines opened one at a time (cold, then warm) per mode")
	flag.DurationVar(&o.realPace, "real-pace", 150*time.Second, "length of the uncompressed (30 s refresh) pass that measures the cache hit rate at real pace (0: skip)")
	flag.Float64Var(&o.scale, "scale", 1, "fleet size factor (1: the issue's 10,000 machines; smaller for a quick try)")
	flag.IntVar(&o.history, "history", 500, "machines of the largest client with 30 days of series")
	flag.BoolVar(&o.keep, "keep", false, "keep the seeded database (with DATABASE_URL) for -reuse")
	flag.StringVar(&o.reuse, "reuse", "", "use this database seeded by an earlier -keep run instead of seeding")
	flag.Uint64Var(&o.seed, "seed", 1, "workload random seed")
	flag.DurationVar(&o.replayMaxDur, "replay-max", 10*time.Minute, "longest a replay may run")
	flag.Float64Var(&o.waitLoad, "wait-load", 0, "after seeding, wait (at most -wait-max) until the 1-minute load average is below this (0: do not wait)")
	flag.DurationVar(&o.waitMax, "wait-max", 10*time.Minute, "longest wait for -wait-load")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-dashboard:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func run(ctx context.Context, o options) error {
	if _, err := os.Stat("go.mod"); err != nil {
		return fmt.Errorf("run from the repository root (no go.mod here)")
	}
	if o.requests < 1 || o.speedup <= 0 || o.usersBig < 1 || o.scale <= 0 {
		return fmt.Errorf("-requests, -speedup, -users-big and -scale must be positive")
	}
	rep := &report{Options: o, Machine: machineAtStart()}
	logf("start: %d cores, load %s", rep.Machine.Cores, rep.Machine.LoadStart)
	svc, err := setupServices(ctx, o)
	if err != nil {
		svc.Close() // what was started before the failure
		return err
	}
	defer svc.Close()
	rep.Services = svc.Describe
	logger := logging.New(os.Stderr, slog.LevelWarn)
	clk := clock.System{}

	pcfg, err := db.Config(svc.DatabaseURL, db.ServerProfile())
	if err != nil {
		return err
	}
	// The seed's statements write millions of rows each: no 30 s statement timeout here
	// (the server's pools keep theirs).
	pcfg.ConnConfig.RuntimeParams["statement_timeout"] = "0"
	pool, err := db.Open(ctx, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if svc.Reused {
		d, err := reuseShift(ctx, pool, clk.Now())
		if err != nil {
			return err
		}
		rep.Seed.Steps = append(rep.Seed.Steps, fmt.Sprintf("reused: machines' heartbeat columns moved forward by %s (the series were not moved)", d.Round(time.Second)))
	} else {
		res, err := migratefn.Migrate(ctx, pool, migrate.ModePostgres, clk.Now(), logger)
		if err != nil {
			return err
		}
		logf("migrated: mode %s, version %d", res.Mode, res.Version)
		if rep.Seed, err = seed(ctx, pool, clk.Now(), o.scale, o.history); err != nil {
			return err
		}
		logf("seeded in %.1f s", rep.Seed.Duration.Seconds())
	}
	if err := dataSummary(ctx, pool, &rep.Seed); err != nil {
		return err
	}
	f, err := loadFleet(ctx, pool)
	if err != nil {
		return err
	}
	rep.Fleet = f
	if err := rep.readVersions(ctx, pool, svc.RedisURL); err != nil {
		return err
	}

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	runID := make([]byte, 4)
	_, _ = rand.Read(runID)
	creator := auth.New(auth.Options{Pool: pool, Secret: secret, Clock: clk, Logger: logger, Hasher: auth.Bcrypt{Cost: 4}})
	users, err := createUsers(ctx, creator, f, o.usersBig, o.usersOther)
	if err != nil {
		return fmt.Errorf("creating users: %w", err)
	}
	rep.Users = len(users)

	if o.waitLoad > 0 {
		waitForLoad(ctx, o.waitLoad, o.waitMax)
	}
	rep.Machine.LoadMeasured = loadavg()

	hbCtx, stopHB := context.WithCancel(ctx)
	defer stopHB()
	go heartbeats(hbCtx, pool, clk)

	refresh := time.Duration(float64(30*time.Second) / o.speedup)
	probeSets := [][]string{head(f.History, 0, o.probeN), head(f.History, o.probeN, o.probeN)}
	for i, withRedis := range []bool{true, false} {
		name := map[bool]string{true: "redis", false: "no-redis"}[withRedis]
		cfg := stackConfig{DatabaseURL: svc.DatabaseURL, Prefix: "bench" + hex.EncodeToString(runID) + "." + name + "/",
			Secret: secret, Logger: logger, Hits: newHitCounter()}
		if withRedis {
			cfg.RedisURL = svc.RedisURL
		}
		ph, err := runPhase(ctx, cfg, f, users, probeSets[i], replayOptions{
			Requests: o.requests, Duration: o.replayMaxDur, Refresh: refresh, Seed: o.seed,
		})
		if err != nil {
			return fmt.Errorf("phase %s: %w", name, err)
		}
		ph.Name, ph.Redis = name, withRedis
		rep.Phases = append(rep.Phases, ph)
	}

	if o.realPace > 0 {
		cfg := stackConfig{DatabaseURL: svc.DatabaseURL, RedisURL: svc.RedisURL, Prefix: "bench" + hex.EncodeToString(runID) + ".realpace/",
			Secret: secret, Logger: logger, Hits: newHitCounter()}
		rp, err := runRealPace(ctx, cfg, f, users, o)
		if err != nil {
			return fmt.Errorf("real-pace pass: %w", err)
		}
		rep.RealPace = rp
	}

	sink := &noticeSink{}
	ex, err := startStack(ctx, stackConfig{DatabaseURL: svc.DatabaseURL, Secret: secret, Logger: logger, Tune: explainTune(sink)})
	if err != nil {
		rep.ExplainErr = err.Error()
		logf("explain pass skipped: %v", err)
	} else {
		rep.Explained, err = explainAll(ctx, ex, sink, f, users)
		ex.Close()
		if err != nil {
			return err
		}
	}
	stopHB()

	rep.Machine.LoadEnd = loadavg()
	if err := os.WriteFile(o.out, []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	logf("wrote %s (load at end %s)", o.out, rep.Machine.LoadEnd)
	return nil
}

// waitForLoad waits until the machine's 1-minute load average is below limit, or max.
func waitForLoad(ctx context.Context, limit float64, max time.Duration) {
	deadline := time.Now().Add(max)
	for {
		var l float64
		if b, err := os.ReadFile("/proc/loadavg"); err == nil {
			_, _ = fmt.Sscan(string(b), &l)
		}
		if l < limit {
			logf("load %.2f < %.2f: measuring", l, limit)
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			logf("load still %.2f after %s: measuring anyway", l, max)
			return
		}
		logf("load %.2f ≥ %.2f: waiting", l, limit)
		select {
		case <-ctx.Done():
		case <-time.After(15 * time.Second):
		}
	}
}

func head(s []string, from, n int) []string {
	if from >= len(s) {
		return nil
	}
	return s[from:min(from+n, len(s))]
}

// phase is one mode's measurements.
type phase struct {
	Name               string
	Redis              bool
	Probe, Replay      *recorder
	Requests           int64
	Elapsed            time.Duration
	LoadBefore         string
	LoadAfter          string
	Hits, Misses       map[string]int64 // counted by the hook, replay only
	InfoHits, InfoMiss int64            // INFO stats deltas over the replay
	InfoErr            string
}

func runPhase(ctx context.Context, cfg stackConfig, f *fleet, users []*simUser, probeIDs []string, ro replayOptions) (*phase, error) {
	st, err := startStack(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := st.tokens(ctx, users); err != nil {
		return nil, err
	}
	ph := &phase{Probe: newRecorder(), Replay: newRecorder(), LoadBefore: loadavg()}
	h := newHTTPClient(st.URL)
	logf("%s: probing %d machines one request at a time", cfg.Prefix, len(probeIDs))
	probe(ctx, h, f, users, probeIDs, ph.Probe)

	h0, m0 := cfg.Hits.snapshot()
	var ih0, im0 int64
	if cfg.RedisURL != "" {
		if ih0, im0, err = redisStats(ctx, cfg.RedisURL); err != nil {
			ph.InfoErr = err.Error()
		}
	}
	logf("%s: replaying %d requests, %d users, refresh every %s", cfg.Prefix, ro.Requests, len(users), ro.Refresh)
	ph.Requests, ph.Elapsed = replay(ctx, h, f, users, ro, ph.Replay)
	h1, m1 := cfg.Hits.snapshot()
	ph.Hits, ph.Misses = delta(h1, h0), delta(m1, m0)
	if cfg.RedisURL != "" && ph.InfoErr == "" {
		ih1, im1, err := redisStats(ctx, cfg.RedisURL)
		if err != nil {
			ph.InfoErr = err.Error()
		}
		ph.InfoHits, ph.InfoMiss = ih1-ih0, im1-im0
	}
	ph.LoadAfter = loadavg()
	logf("%s: %d requests in %.1f s, load %s", cfg.Prefix, ph.Requests, ph.Elapsed.Seconds(), ph.LoadAfter)
	return ph, ctx.Err()
}

// realPace is the uncompressed pass: users refresh every 30 s, as on a real dashboard, so
// the cache entries' real-time TTLs meet a real arrival rate.
type realPace struct {
	Duration, Warm time.Duration
	Requests       int64
	Hits, Misses   map[string]int64
	Replay         *recorder
}

func runRealPace(ctx context.Context, cfg stackConfig, f *fleet, users []*simUser, o options) (*realPace, error) {
	st, err := startStack(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := st.tokens(ctx, users); err != nil {
		return nil, err
	}
	rp := &realPace{Duration: o.realPace, Warm: 30 * time.Second, Replay: newRecorder()}
	var h0, m0 map[string]int64
	logf("%s: real-pace pass, %s, refresh every 30 s", cfg.Prefix, o.realPace)
	rp.Requests, _ = replay(ctx, newHTTPClient(st.URL), f, users, replayOptions{
		Duration: o.realPace, Refresh: 30 * time.Second, Seed: o.seed + 1,
		WarmAfter: rp.Warm, OnWarm: func() { h0, m0 = cfg.Hits.snapshot() },
	}, rp.Replay)
	h1, m1 := cfg.Hits.snapshot()
	rp.Hits, rp.Misses = delta(h1, h0), delta(m1, m0)
	return rp, ctx.Err()
}

func delta(after, before map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// explainAll runs each measured request once with auto_explain on.
func explainAll(ctx context.Context, st *stack, sink *noticeSink, f *fleet, users []*simUser) ([]explained, error) {
	var big []*simUser
	for _, u := range users {
		if u.Client.Big {
			big = append(big, u)
			break
		}
	}
	if err := st.tokens(ctx, big); err != nil {
		return nil, err
	}
	tok, c := big[0].Token, big[0].Client
	h := newHTTPClient(st.URL)
	id := c.ID
	if len(f.History) > 0 {
		id = f.History[len(f.History)-1]
	}
	group := ""
	if len(c.Groups) > 1 {
		group = c.Groups[1]
	}
	routes := []struct{ name, path string }{
		{"list default", "/api/machines?limit=50"},
		{"list search", "/api/machines?limit=50&search=ws-01"},
		{"list filter status", "/api/machines?limit=50&status=offline"},
		{"list filter group", "/api/machines?limit=50&group=" + group},
		{"list sort -last_seen", "/api/machines?limit=50&sort=-last_seen"},
		{"details", "/api/machines/" + id},
		{"metrics 30d", "/api/machines/" + id + "/metrics?period=30d"},
		{"network 30d", "/api/machines/" + id + "/network?period=30d"},
		{"disks 30d", "/api/machines/" + id + "/disks?period=30d"},
		{"overview", "/api/overview"},
	}
	var out []explained
	for _, r := range routes {
		out = append(out, explainRoute(ctx, h, sink, tok, r.name, r.path))
	}
	return out, ctx.Err()
}
