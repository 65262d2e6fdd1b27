package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// Targets from issue 11's performance section (milliseconds, fraction).
const (
	targetListP50        = 10.0
	targetDetailsWarmP50 = 5.0
	targetDetailsColdP50 = 15.0
	targetHistory30dP50  = 15.0
	targetHitRate        = 0.85
)

type machine struct {
	Date, CPU, GoVersion, Commit string
	Cores                        int
	LoadStart, LoadMeasured      string
	LoadEnd                      string
}

func machineAtStart() machine {
	m := machine{
		Date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Cores:     runtime.NumCPU(),
		LoadStart: loadavg(),
		GoVersion: strings.TrimSpace(output("go", "env", "GOVERSION")) + " " + runtime.GOOS + "/" + runtime.GOARCH,
		// The code measured: the last commit outside bench/ and the Makefile, then HEAD.
		Commit: strings.TrimSpace(output("git", "log", "-1", "--format=%h %s", "--", ".", ":(exclude)bench", ":(exclude)Makefile", ":(exclude)README.md")) +
			"` (HEAD `" + strings.TrimSpace(output("git", "rev-parse", "--short", "HEAD")) + "`)",
	}
	if s := strings.TrimSpace(output("git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench")); s != "" {
		m.Commit += ", with uncommitted changes"
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " / ")
}

func output(name string, args ...string) string {
	b, _ := exec.Command(name, args...).Output()
	return string(b)
}

type report struct {
	Options    options
	Machine    machine
	Services   []string
	Postgres   string
	PGSettings string
	Redis      string
	Seed       seedStats
	Fleet      *fleet
	Users      int
	Phases     []*phase
	RealPace   *realPace
	Explained  []explained
	ExplainErr string
}

func (r *report) readVersions(ctx context.Context, pool *pgxpool.Pool, redisURL string) error {
	if err := pool.QueryRow(ctx, `SELECT version()`).Scan(&r.Postgres); err != nil {
		return err
	}
	var parts []string
	for _, s := range []string{"shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit"} {
		var v string
		if err := pool.QueryRow(ctx, `SELECT current_setting($1)`, s).Scan(&v); err != nil {
			return err
		}
		parts = append(parts, s+"="+v)
	}
	r.PGSettings = strings.Join(parts, ", ")
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return err
	}
	c := redis.NewClient(opt)
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		r.Redis = "unreachable: " + err.Error()
		return nil
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
			r.Redis = "Redis " + v
		}
	}
	return nil
}

// merged is the distribution of several labels together.
func (rec *recorder) merged(labels ...string) dist {
	m := newRecorder()
	rec.mu.Lock()
	for _, l := range labels {
		m.ok["x"] = append(m.ok["x"], rec.ok[l]...)
		for s, n := range rec.status[l] {
			if m.status["x"] == nil {
				m.status["x"] = map[int]int{}
			}
			m.status["x"][s] += n
		}
	}
	rec.mu.Unlock()
	return m.dist("x")
}

func (r *report) phase(redis bool) *phase {
	for _, p := range r.Phases {
		if p.Redis == redis {
			return p
		}
	}
	return &phase{Probe: newRecorder(), Replay: newRecorder()}
}

// searchFilterKinds are the largest client's list labels that search or filter.
var searchFilterKinds = []string{"list search", "list filter status", "list filter certificate", "list filter os", "list filter group"}

// appCacheRate is the hit rate of the reads of cached values: the auth blacklist's
// EXISTS checks (bl) and the list cache's invalidation counter (machines:version) are
// bookkeeping, not cached answers, and are left out.
func appCacheRate(hits, misses map[string]int64) (float64, int64) {
	var h, n int64
	for f, v := range hits {
		if !bookkeeping(f) {
			h += v
			n += v
		}
	}
	for f, v := range misses {
		if !bookkeeping(f) {
			n += v
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(h) / float64(n), n
}

func bookkeeping(f string) bool {
	return f == "bl" || strings.HasPrefix(f, "bl:") || f == "machines:version"
}

func ms(v float64) string {
	if v == 0 {
		return "–"
	}
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	o := r.Options
	with, without := r.phase(true), r.phase(false)

	w("# Dashboard read side under load\n\n")
	w("Generated by `make bench-dashboard` (`go run ./bench/dashboard -requests %d -speedup %g -users-big %d -users-other %d -probe-machines %d -real-pace %s`) on %s.\n\n",
		o.requests, o.speedup, o.usersBig, o.usersOther, o.probeN, o.realPace, r.Machine.Date)
	w("- Code measured: `%s\n", r.Machine.Commit)
	w("- Machine: %d cores (`nproc`), %s; load average (1 / 5 / 15 min, `/proc/loadavg`) %s at start, %s when the measurements started (after seeding), %s at the end. The machine is shared: other work running at the same time inflates the figures, and client, server, PostgreSQL and Redis all share these cores.\n",
		r.Machine.Cores, r.Machine.CPU, r.Machine.LoadStart, r.Machine.LoadMeasured, r.Machine.LoadEnd)
	w("- Go: %s; %s (%s); %s.\n", r.Machine.GoVersion, r.Postgres, r.PGSettings, r.Redis)
	for _, s := range r.Services {
		w("- %s.\n", s)
	}
	w("\n## Against the targets (issue 11, performance)\n\n")
	w("p50 in ms. \"Replay\" is the concurrent dashboard workload below; \"one at a time\" is the sequential probe (cold = first request for that query or machine with an empty cache, warm = the same request again at once).\n\n")
	w("| target | with Redis | without Redis | verdict |\n|---|---:|---:|---|\n")
	lw, lwo := with.Replay.merged(searchFilterKinds...), without.Replay.merged(searchFilterKinds...)
	w("| list page of 50 of %d machines, searched or filtered, p50 ≤ %.0f ms (replay) | %s | %s | %s |\n",
		r.bigMachines(), targetListP50, ms(lw.P50), ms(lwo.P50), verdict(lw.N > 0 && lw.P50 <= targetListP50))
	lcw, lcwo := with.Probe.merged(cold(searchFilterKinds)...), without.Probe.merged(cold(searchFilterKinds)...)
	w("| the same, cache miss (one at a time, cold) | %s | %s | %s |\n", ms(lcw.P50), ms(lcwo.P50), verdict(lcw.N > 0 && lcw.P50 <= targetListP50))
	dw, dwo := with.Probe.dist("details · warm"), without.Probe.dist("details · warm")
	w("| details p50 ≤ %.0f ms warm (one at a time) | %s | %s | %s |\n", targetDetailsWarmP50, ms(dw.P50), ms(dwo.P50), verdict(dw.N > 0 && dw.P50 <= targetDetailsWarmP50))
	dc, dco := with.Probe.dist("details · cold"), without.Probe.dist("details · cold")
	w("| details p50 ≤ %.0f ms cold (one at a time) | %s | %s | %s |\n", targetDetailsColdP50, ms(dc.P50), ms(dco.P50), verdict(dc.N > 0 && dc.P50 <= targetDetailsColdP50))
	rd, rdo := with.Replay.merged("details (first open)", "details (repeat open)"), without.Replay.merged("details (first open)", "details (repeat open)")
	w("| details under the replay's load (informative) | %s | %s | |\n", ms(rd.P50), ms(rdo.P50))
	hw, hwo := with.Replay.dist("metrics 30d"), without.Replay.dist("metrics 30d")
	w("| 30-day history (CPU/RAM) p50 ≤ %.0f ms (replay) | %s | %s | %s |\n", targetHistory30dP50, ms(hw.P50), ms(hwo.P50), verdict(hw.N > 0 && hw.P50 <= targetHistory30dP50))
	hc := with.Probe.dist("metrics 30d · cold")
	w("| the same, one at a time, cold | %s | %s | %s |\n", ms(hc.P50), ms(without.Probe.dist("metrics 30d · cold").P50), verdict(hc.N > 0 && hc.P50 <= targetHistory30dP50))
	rate, n := appCacheRate(with.Hits, with.Misses)
	w("| cache hit rate ≥ %.0f %% (replay, time compressed ×%g) | %.1f %% of %d reads | – | %s |\n", targetHitRate*100, o.speedup, rate*100, n, verdict(n > 0 && rate >= targetHitRate))
	if rp := r.RealPace; rp != nil {
		rate, n := appCacheRate(rp.Hits, rp.Misses)
		w("| cache hit rate at real pace (30 s refresh, after %s of warm-up) | %.1f %% of %d reads | – | %s |\n", rp.Warm, rate*100, n, verdict(n > 0 && rate >= targetHitRate))
	}

	w("\n## Method\n\n")
	w("- **Fleet** (seeded in %.0f s with `INSERT … SELECT` over `generate_series`/`unnest`, nothing row by row; database migrated in `postgres` mode, where the hourly rollups `metrics_hourly`, `network_hourly`, `disk_hourly` are tables kept by `internal/rollup` — in `timescale` mode they are continuous aggregates and the same queries read them): %d clients, %d machines (the largest %d), ~86 %% online, ~5 %% in alert (CPU > 80 %% or RAM > 85 %%, next heartbeat due after 30 s), ~9 %% offline for 10 min to 30 days; ~4 %% of certificates expiring within 30 days, 1 %% expired, 0.5 %% revoked; groups per client (sites + \"Servers\", a machine in up to two); an inventory snapshot and three collector snapshots for every machine; the newest heartbeat (metrics + disks) for every machine; for %d online machines of the largest client, 48 h of 60 s raw metrics and disks, and 30 days of hourly rollups (synthetic before the raw window, `rollup.Refresher` over it).\n",
		r.Seed.Duration.Seconds(), len(r.Fleet.Clients), r.Seed.Rows["machines"], r.bigMachines(), len(r.Fleet.History))
	w("- **Server**: `monolith.New` over an `app.Core` (pool `db.ServerProfile()`: 25 connections), served by `httpx.NewServer` on a loopback listener, as `optralis dev` does; a fresh cache key prefix per phase (an empty cache). Redis phase: `cache.Open(REDIS_URL)`; no-Redis phase: `Core.Redis` nil, as with `REDIS_URL` unset (the auth blacklist check then reads PostgreSQL too).\n")
	w("- **Users**: %d dashboard users (%d of the largest client, %d of each other), each with its own session (access token from `auth.Service.StartSession`). Every 15 s a background statement moves a quarter of the online machines' `last_seen`/`heartbeat_due_at` forward, so each machine row is updated once a minute as its heartbeat would update it and the fleet stays online; it invalidates no cache, as the heartbeat does not.\n",
		r.Users, o.usersBig, o.usersOther)
	w("- **Replay** (per mode, %d requests, over HTTP with keep-alive and gzip): each user refreshes its list every 30 s compressed ×%g (every %s ±20 %%), first refresh spread over one interval. A user keeps its view (default 50 %%, search 10 %%, status filter 12 %%, certificate status filter 4 %%, OS filter 6 %%, group filter 10 %%, sort by last seen 8 %%) and changes it on one refresh in five; on 15 %% of refreshes it follows `next_cursor`. After each list: the overview with probability 0.3; a machine of the page's details with probability 0.25, then for the largest client (probability 0.6) the history of one of its %d machines with series: metrics (24h 60 %%, 7d 25 %%, 30d 15 %%), network and disks each with probability 0.5, same period. Latency is the client's, from sending the request to the last byte of the body.\n",
		o.requests, o.speedup, time.Duration(float64(30*time.Second)/o.speedup), len(r.Fleet.History))
	w("- **One at a time** (per mode, before the replay): every list query shape of the largest client (default, next page, %d searches, each status, each OS, 3 certificate statuses, 8 groups, search + filters, sort) and, for %d machines with series (a different set per mode), details, metrics 24h/7d/30d, network 30d and disks 30d, then every client's overview — each once cold and twice warm. \"Cold\" means the first request for it in the process, with an empty Redis; PostgreSQL's own buffers are not dropped (the seed leaves the data in memory, as on a busy server).\n",
		len(searchTerms), o.probeN)
	w("- **Cache hit rate**: counted by a go-redis hook on the server's client, per key family, over the replay only: reads of cached values (GET/HGET/MGET/HMGET) that found one. The auth blacklist's EXISTS checks (`bl`) and the list cache's version counter (`machines:version`, absent until a first invalidation) are listed but left out of the rate. Redis's own `INFO stats` keyspace_hits/misses deltas (every key, bookkeeping included) are given beside it. The compressed replay serves each cached list ×%g as many refreshes per 30 s TTL as real users would, so its rate is optimistic; the real-pace pass (%s, users refreshing every 30 s, counted after %s) is the figure to hold against the target.\n\n",
		o.speedup, o.realPace, 30*time.Second)

	w("## Replay: latency per request kind (ms)\n\n")
	for _, p := range r.Phases {
		w("- %s: %d requests in %.1f s (%.0f req/s); load %s before, %s after.\n", p.Name, p.Requests, p.Elapsed.Seconds(),
			float64(p.Requests)/max(p.Elapsed.Seconds(), 0.001), p.LoadBefore, p.LoadAfter)
	}
	w("\n| request | n | with Redis p50 / p90 / p99 | n | without Redis p50 / p90 / p99 | p50 without ÷ with |\n|---|---:|---:|---:|---:|---:|\n")
	for _, l := range union(with.Replay.labels(), without.Replay.labels()) {
		a, c := with.Replay.dist(l), without.Replay.dist(l)
		ratio := "–"
		if a.P50 > 0 && c.P50 > 0 {
			ratio = fmt.Sprintf("%.2f ×", c.P50/a.P50)
		}
		w("| %s | %d%s | %s / %s / %s | %d%s | %s / %s / %s | %s |\n", l, a.N, failed(a), ms(a.P50), ms(a.P90), ms(a.P99),
			c.N, failed(c), ms(c.P50), ms(c.P90), ms(c.P99), ratio)
	}

	w("\n## One request at a time: cold and warm (ms)\n\n")
	w("| request | with Redis cold p50 / p99 | warm p50 / p99 | without Redis cold p50 / p99 | warm p50 / p99 |\n|---|---:|---:|---:|---:|\n")
	for _, l := range probeRoutes(with.Probe.labels(), without.Probe.labels()) {
		a, b2 := with.Probe.dist(l+" · cold"), with.Probe.dist(l+" · warm")
		c, d := without.Probe.dist(l+" · cold"), without.Probe.dist(l+" · warm")
		w("| %s (n %d%s) | %s / %s | %s / %s | %s / %s | %s / %s |\n", l, a.N, failed(a), ms(a.P50), ms(a.P99), ms(b2.P50), ms(b2.P99),
			ms(c.P50), ms(c.P99), ms(d.P50), ms(d.P99))
	}

	w("\n## Cache reads per key family (with Redis)\n\n")
	w("| key family | replay ×%g hits / misses | rate |", o.speedup)
	if r.RealPace != nil {
		w(" real pace hits / misses | rate |")
	}
	w("\n|---|---:|---:|")
	if r.RealPace != nil {
		w("---:|---:|")
	}
	w("\n")
	fams := union(keys(with.Hits), keys(with.Misses))
	if r.RealPace != nil {
		fams = union(fams, union(keys(r.RealPace.Hits), keys(r.RealPace.Misses)))
	}
	for _, f := range fams {
		name := "`" + f + "`"
		if bookkeeping(f) {
			name += " (bookkeeping, not in the rate)"
		}
		w("| %s | %d / %d | %s |", name, with.Hits[f], with.Misses[f], pct(with.Hits[f], with.Misses[f]))
		if rp := r.RealPace; rp != nil {
			w(" %d / %d | %s |", rp.Hits[f], rp.Misses[f], pct(rp.Hits[f], rp.Misses[f]))
		}
		w("\n")
	}
	if with.InfoErr != "" {
		w("\nINFO stats: %s.\n", with.InfoErr)
	} else {
		w("\nRedis `INFO stats` over the replay with Redis (every key, bookkeeping included%s): keyspace_hits %d, keyspace_misses %d, %s.\n",
			sharedNote(r.Services), with.InfoHits, with.InfoMiss, pct(with.InfoHits, with.InfoMiss))
	}
	if rp := r.RealPace; rp != nil {
		w("Real-pace pass: %d requests in %s.\n", rp.Requests, rp.Duration)
	}

	w("\n## Where the time goes\n\n")
	if r.ExplainErr != "" {
		w("The explain pass could not run: %s.\n", r.ExplainErr)
	} else {
		w("Each request once more (after one warm-up), without Redis, on a pool whose connections load `auto_explain` (every statement EXPLAIN ANALYZEd, buffers included, plans returned as notices). Statement times include auto_explain's timing overhead.\n\n")
		w("| request | HTTP | statements | DB time ms | slowest ms | slowest statement |\n|---|---:|---:|---:|---:|---|\n")
		for _, e := range r.Explained {
			q := e.Query
			if e.Err != "" {
				q = e.Err
			}
			w("| %s | %d | %d | %.2f | %.2f | `%s` |\n", e.Route, e.Status, e.Statements, e.TotalMs, e.SlowestMs, strings.ReplaceAll(q, "|", "\\|"))
		}
		slow := append([]explained(nil), r.Explained...)
		sort.Slice(slow, func(i, j int) bool { return slow[i].SlowestMs > slow[j].SlowestMs })
		for _, e := range slow[:min(3, len(slow))] {
			if len(e.Plan) == 0 {
				continue
			}
			w("\nPlan of the slowest statement of **%s** (%.2f ms):\n\n```\n%s\n```\n", e.Route, e.SlowestMs, strings.Join(e.Plan, "\n"))
		}
	}

	// Failed requests, grouped by answer (ids and request ids vary, so by status and code).
	fails := map[string]int{}
	examples := map[string]string{}
	for _, p := range r.Phases {
		for _, rec := range []*recorder{p.Probe, p.Replay} {
			for l, e := range rec.errs {
				route, _, _ := strings.Cut(l, " · ")
				k := p.Name + ", " + route
				fails[k] += rec.dist(l).Failed
				examples[k] = strings.ReplaceAll(strings.TrimSpace(e), "\n", " ")
			}
		}
	}
	if len(fails) > 0 {
		w("\n## Failed requests\n\n")
		for _, k := range sortedKeys(toInt64(fails)) {
			w("- %s: %d, e.g. `%s`\n", k, fails[k], examples[k])
		}
	}

	w("\n## Data\n\n| table | rows | size |\n|---|---:|---:|\n")
	for _, t := range sortedKeys(r.Seed.Rows) {
		w("| `%s` | %d | %s |\n", t, r.Seed.Rows[t], r.Seed.Sizes[t])
	}
	if len(r.Seed.Steps) > 0 {
		w("\nSeed steps:\n\n")
		for _, s := range r.Seed.Steps {
			w("- %s\n", s)
		}
	}
	return b.String()
}

func (r *report) bigMachines() int {
	if r.Fleet == nil || len(r.Fleet.Clients) == 0 {
		return 0
	}
	return r.Fleet.Clients[0].Machines
}

func cold(kinds []string) []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = k + " · cold"
	}
	return out
}

func failed(d dist) string {
	if d.Failed == 0 {
		return ""
	}
	return fmt.Sprintf(" (+%d failed)", d.Failed)
}

func pct(h, m int64) string {
	if h+m == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f %%", 100*float64(h)/float64(h+m))
}

func sharedNote(services []string) string {
	for _, s := range services {
		if strings.HasPrefix(s, "Redis: REDIS_URL") {
			return "; a shared server counts other clients' reads too"
		}
	}
	return ""
}

// probeRoutes are the probe's request names (labels without " · cold" / " · warm").
func probeRoutes(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range union(a, b) {
		base, _, _ := strings.Cut(l, " · ")
		if !seen[base] {
			seen[base] = true
			out = append(out, base)
		}
	}
	return out
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func keys(m map[string]int64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func toInt64(m map[string]int) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = int64(v)
	}
	return out
}

func sortedKeys(m map[string]int64) []string {
	out := keys(m)
	sort.Strings(out)
	return out
}
