package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/app"
	"github.com/optralis/optralis/internal/app/heartbeatfn"
	"github.com/optralis/optralis/internal/app/monolith"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/httpx"
)

// stack is the API domain served in-process exactly as the local stack serves it
// (monolith.New over an app.Core), on a real loopback listener.
type stack struct {
	Core app.Core
	Auth *auth.Service
	URL  string
	srv  *http.Server
}

// stackConfig chooses a stack's database pool, cache and key prefix.
type stackConfig struct {
	DatabaseURL string
	RedisURL    string // "": no cache (Core.Redis nil, as with REDIS_URL unset)
	Prefix      string // cache keys of this stack: an empty cache for each phase
	Secret      []byte
	Hits        *hitCounter               // counts cache reads; nil: none
	Tune        func(cfg *pgxpool.Config) // adjusts the pool (the explain pass)
	Logger      *slog.Logger
}

func startStack(ctx context.Context, c stackConfig) (*stack, error) {
	pcfg, err := db.Config(c.DatabaseURL, db.ServerProfile())
	if err != nil {
		return nil, err
	}
	if c.Tune != nil {
		c.Tune(pcfg)
	}
	pool, err := db.Open(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	rc, err := cache.Open(ctx, c.RedisURL, c.Logger)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if rc != nil && c.Hits != nil {
		rc.AddHook(c.Hits)
	}
	clk := clock.System{}
	core := app.Core{Pool: pool, Redis: rc, Clock: clk, Logger: c.Logger, KeyPrefix: c.Prefix, Breaker: cache.NewBreaker(clk, 0)}
	// The local stack's auth service, with the phase's key prefix (its blacklist lives in
	// the same Redis) and a cheap hasher: the benchmark's users log in by session, never
	// by password, so bcrypt's cost would only slow the set-up.
	a := auth.New(auth.Options{Pool: pool, Redis: rc, Secret: c.Secret, Clock: clk, Logger: c.Logger, Dev: true,
		KeyPrefix: c.Prefix, Hasher: auth.Bcrypt{Cost: 4}})
	m, err := monolith.New(core, monolith.Services{Auth: a, Heartbeat: heartbeatfn.NewService(core)})
	if err != nil {
		core.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		core.Close()
		return nil, err
	}
	s := &stack{Core: core, Auth: a, URL: "http://" + ln.Addr().String()}
	s.srv = httpx.NewServer(ln.Addr().String(), m.API, nil, c.Logger)
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logf("server: %v", err)
		}
	}()
	return s, nil
}

func (s *stack) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	s.Core.Close()
}

// tokens starts one session per user (as a login would) and returns their access tokens.
func (s *stack) tokens(ctx context.Context, users []*simUser) error {
	for _, u := range users {
		usr, err := s.Auth.UserByID(ctx, u.ID)
		if err != nil {
			return err
		}
		is, err := s.Auth.StartSession(ctx, usr, auth.Meta{IP: "127.0.0.1", UserAgent: "bench-dashboard"})
		if err != nil {
			return err
		}
		u.Token = is.AccessToken
	}
	return nil
}

// heartbeats keeps the fleet alive while the benchmark runs, at the rate real heartbeats
// would: every 15 s a quarter of the online machines get a fresh last_seen and next due
// time, so each is touched once a minute. Offline machines stay offline; no cache is
// invalidated, as the heartbeat invalidates none. (The ingest itself is bench-ingest's
// subject: only the machine row's update is reproduced here.)
func heartbeats(ctx context.Context, pool *pgxpool.Pool, clk clock.Clock) {
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for tick := 0; ; tick++ {
		now := clk.Now()
		_, err := pool.Exec(ctx, `
			UPDATE machines m SET last_seen = x.seen, last_metrics_at = x.seen,
			    heartbeat_due_at = x.seen + CASE WHEN m.last_cpu_percent > 80 OR m.last_ram_percent > 85
			                                    THEN interval '30 seconds' ELSE interval '60 seconds' END
			FROM (SELECT id, $1::timestamptz - (abs(hashtext(id::text)) % 15) * interval '1 second' AS seen
			      FROM machines WHERE deleted_at IS NULL AND heartbeat_due_at > $1::timestamptz - interval '5 minutes'
			        AND abs(hashtext(id::text)) % 4 = $2) x
			WHERE m.id = x.id`, now, tick%4)
		if err != nil && ctx.Err() == nil {
			logf("heartbeats: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// hitCounter is a go-redis hook counting, per key family, the reads that found a value
// (hits) and those that did not (misses): GET, HGET, MGET, HMGET and EXISTS.
type hitCounter struct {
	mu     sync.Mutex
	hits   map[string]int64
	misses map[string]int64
}

func newHitCounter() *hitCounter {
	return &hitCounter{hits: map[string]int64{}, misses: map[string]int64{}}
}

func (h *hitCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *hitCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.record(cmd, err)
		return err
	}
}

func (h *hitCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			h.record(c, c.Err())
		}
		return err
	}
}

// record counts cmd, whose outcome is err: for a single command, the error its hook
// chain returned (with go-redis v9.23 a hook may run before cmd.Err() is filled in).
func (h *hitCounter) record(cmd redis.Cmder, err error) {
	args := cmd.Args()
	if len(args) < 2 {
		return
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return // a failed call is neither
	}
	name := strings.ToLower(cmd.Name())
	h.mu.Lock()
	defer h.mu.Unlock()
	switch name {
	case "get", "hget":
		f := family(fmt.Sprint(args[1]))
		if err == nil {
			h.hits[f]++
		} else {
			h.misses[f]++
		}
	case "mget", "hmget":
		var vals []any
		switch c := cmd.(type) {
		case *redis.SliceCmd:
			vals = c.Val()
		default:
			return
		}
		keys := args[1:]
		for i, v := range vals {
			k := fmt.Sprint(keys[0])
			if name == "mget" && i < len(keys) {
				k = fmt.Sprint(keys[i])
			}
			if v != nil {
				h.hits[family(k)]++
			} else {
				h.misses[family(k)]++
			}
		}
	case "exists":
		c, ok := cmd.(*redis.IntCmd)
		if !ok {
			return
		}
		f := family(fmt.Sprint(args[1]))
		h.hits[f] += c.Val()
		h.misses[f] += int64(len(args)-1) - c.Val()
	}
}

// snapshot returns copies of the counts.
func (h *hitCounter) snapshot() (hits, misses map[string]int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hits, misses = map[string]int64{}, map[string]int64{}
	for k, v := range h.hits {
		hits[k] = v
	}
	for k, v := range h.misses {
		misses[k] = v
	}
	return hits, misses
}

// family names a key without its prefix and ids: "bench…/machines:list:<uuid>" is
// "machines:list", "bench…/bl:<jti>" is "bl".
func family(key string) string {
	if i := strings.Index(key, "/"); i >= 0 {
		key = key[i+1:]
	}
	var out []string
	for _, seg := range strings.Split(key, ":") {
		if len(out) == 2 || len(seg) > 20 || strings.ContainsAny(seg, "0123456789") {
			break
		}
		out = append(out, seg)
	}
	if len(out) == 0 {
		return "(other)"
	}
	return strings.Join(out, ":")
}

// redisStats reads keyspace_hits and keyspace_misses from INFO stats.
func redisStats(ctx context.Context, url string) (hits, misses int64, err error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return 0, 0, err
	}
	c := redis.NewClient(opt)
	defer c.Close()
	info, err := c.Info(ctx, "stats").Result()
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok {
			continue
		}
		switch k {
		case "keyspace_hits":
			_, _ = fmt.Sscan(v, &hits)
		case "keyspace_misses":
			_, _ = fmt.Sscan(v, &misses)
		}
	}
	return hits, misses, nil
}
