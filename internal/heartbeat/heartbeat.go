// Package heartbeat ingests agent heartbeats (POST /agent/heartbeat) in one database round
// trip and serves the agents' collector configuration (GET /agent/config/collectors).
package heartbeat

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/klauspost/compress/gzip"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/collectorcfg"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/ratelimit"
)

// RateLimit is the spec's heartbeat limit per source IP: 3000 a minute.
func RateLimit() ratelimit.Limit { return ratelimit.Limit{Burst: 3000, Period: time.Minute} }

// VersionTTL is how long Redis keeps a channel's agent version (spec "Cache Redis").
const VersionTTL = 5 * time.Minute

// ClientTTL is how long an instance keeps a client's channel and retention in memory.
const ClientTTL = 5 * time.Minute

// Deps are what the service needs. Redis may be nil.
type Deps struct {
	Pool   *pgxpool.Pool
	Redis  *redis.Client
	Clock  clock.Clock
	Logger *slog.Logger
	// MaxBodyBytes bounds the decompressed body; 0: httpx.MaxBodyBytes.
	MaxBodyBytes int64
	// RedisPrefix namespaces Redis keys (deployments or test runs sharing a server).
	RedisPrefix string
	// Limit is the per-IP heartbeat limit; zero: RateLimit().
	Limit ratelimit.Limit
	// LicenceGraceDays is how long after its client's licence expired an agent is still
	// served (LICENSE_GRACE_DAYS); 0: DefaultLicenceGraceDays, negative: none.
	LicenceGraceDays int
	// MachineLimit is the per-machine heartbeat limit; zero: MachineRateLimit(); a
	// negative Burst: none (load benchmarks).
	MachineLimit ratelimit.Limit
	// GroupCommit, when set, writes heartbeats through a Committer (long-running
	// servers); nil: each heartbeat is written as a group of one (Lambda).
	GroupCommit *GroupCommit
	// Queue, when set, is the queue mode (INGEST_MODE=queue, enqueue.go): heartbeats are
	// checked, queued and answered here, and written by the writer function.
	Queue Enqueuer
}

// MachineRateLimit is the per-machine heartbeat limit: an agent heartbeats every 30 or 60
// s, so more than 10 a minute is a misbehaving agent (or a copied certificate).
func MachineRateLimit() ratelimit.Limit { return ratelimit.Limit{Burst: 10, Period: time.Minute} }

// DefaultLicenceGraceDays is the grace period of an expired licence.
const DefaultLicenceGraceDays = 14

// ErrLicenceExpired refuses an agent once its client's licence grace period is over.
var ErrLicenceExpired = apperr.New(apperr.PaymentRequired,
	"this client's licence has expired and its grace period is over: renew the licence to resume monitoring")

// Service is long-lived (one per process): it holds the rate limiter and the client cache.
type Service struct {
	d       Deps
	limiter *ratelimit.Limiter
	// machines limits each machine's heartbeats (nil: no limit).
	machines *ratelimit.Limiter

	writer    *Writer
	committer *Committer // nil: direct writes

	// checks are the queue mode's cached certificate acceptances (enqueue.go).
	checkMu sync.Mutex
	checks  map[string]checkEntry

	mu      sync.Mutex
	clients map[string]clientInfo

	// gunzip reuses decompressors: a new one allocates its tables on every request.
	gunzip sync.Pool
	// breaker keeps the agent-version cache off Redis for a while after an error: a dead
	// Redis costs one failed call per cache.Pause, not one per heartbeat.
	breaker *cache.Breaker
}

type clientInfo struct {
	channel   string
	retention Retention
	loaded    time.Time
}

// New returns the service.
func New(d Deps) *Service {
	if d.MaxBodyBytes == 0 {
		d.MaxBodyBytes = httpx.MaxBodyBytes
	}
	if d.Limit.Burst == 0 {
		d.Limit = RateLimit()
	}
	if d.LicenceGraceDays == 0 {
		d.LicenceGraceDays = DefaultLicenceGraceDays
	} else if d.LicenceGraceDays < 0 {
		d.LicenceGraceDays = 0
	}
	if d.MachineLimit.Burst == 0 {
		d.MachineLimit = MachineRateLimit()
	}
	s := &Service{d: d, limiter: ratelimit.New(d.Redis, d.RedisPrefix+"ratelimit:heartbeat:", d.Clock, d.Logger),
		clients: map[string]clientInfo{}, breaker: cache.NewBreaker(d.Clock, cache.Pause), checks: map[string]checkEntry{}}
	if d.MachineLimit.Burst > 0 {
		s.machines = ratelimit.New(d.Redis, d.RedisPrefix+"ratelimit:heartbeat-machine:", d.Clock, d.Logger)
	}
	s.writer = NewWriter(WriterConfig{Pool: d.Pool, Logger: d.Logger, LicenceGraceDays: d.LicenceGraceDays})
	if d.GroupCommit != nil {
		s.committer = NewCommitter(s.writer, *d.GroupCommit)
	}
	return s
}

// Writer is the service's group writer.
func (s *Service) Writer() *Writer { return s.writer }

// Close stops the group committers (after their groups in flight); a no-op without.
func (s *Service) Close() {
	if s.committer != nil {
		s.committer.Close()
	}
}

// Answer is the heartbeat's response.
type Answer struct {
	NextIntervalSeconds int    `json:"next_interval_seconds"`
	LatestAgentVersion  string `json:"latest_agent_version,omitempty"`
	ConfigChanged       bool   `json:"config_changed"`
	// RenewCertificate asks the agent to renew its certificate (POST
	// /agent/certificate/renew): the one it presented expires within 30 days.
	RenewCertificate bool `json:"renew_certificate"`
	// LicenceExpired: the client's licence has expired; the agent is served until
	// LicenceGraceUntil, then refused with 402.
	LicenceExpired    bool       `json:"licence_expired,omitempty"`
	LicenceGraceUntil *time.Time `json:"licence_grace_until,omitempty"`
}

// HandleHeartbeat is POST /agent/heartbeat.
func (s *Service) HandleHeartbeat() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ans, err := s.heartbeat(r)
		if err != nil {
			httpx.WriteError(w, r, s.d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, ans)
	})
}

func (s *Service) heartbeat(r *http.Request) (ans Answer, err error) {
	ctx := r.Context()
	agent, ok := certs.AgentFrom(ctx)
	if !ok {
		return Answer{}, apperr.ErrNoClientCert
	}
	ip := httpx.ClientIP(r)
	if dec := s.limiter.Allow(ctx, ip, s.d.Limit); !dec.Allowed {
		e := apperr.New(apperr.RateLimited, "too many heartbeats from this address")
		e.RetryAfter = ratelimit.RetryAfterSeconds(dec.RetryAfter)
		return Answer{}, e
	}
	// Counted before any work, so a flood costs nothing; given back when the attempt failed
	// on our side (database outage, internal error), so agents retrying after an outage
	// do not meet 429s for heartbeats the server never took.
	defer func() {
		if err != nil && serverFault(err) {
			s.limiter.Refund(context.WithoutCancel(ctx), ip, s.d.Limit)
		}
	}()
	if s.machines != nil {
		if dec := s.machines.Allow(ctx, agent.MachineID, s.d.MachineLimit); !dec.Allowed {
			e := apperr.New(apperr.RateLimited, "too many heartbeats from this machine: send one per interval answered")
			e.RetryAfter = ratelimit.RetryAfterSeconds(dec.RetryAfter)
			return Answer{}, e
		}
		defer func() {
			if err != nil && serverFault(err) {
				s.machines.Refund(context.WithoutCancel(ctx), agent.MachineID, s.d.MachineLimit)
			}
		}()
	}
	body, err := readBody(r.Body, s.d.MaxBodyBytes, &s.gunzip)
	if err != nil {
		return Answer{}, err
	}
	var p Payload
	if err := httpx.DecodeJSONBytes(body, &p); err != nil {
		return Answer{}, err
	}
	ci, err := s.client(ctx, agent.ClientID)
	if err != nil {
		return Answer{}, err
	}
	now := s.d.Clock.Now()
	// From the presented certificate itself: no database read.
	cert, _ := identity.ClientCert(ctx)
	var notAfter time.Time
	if cert != nil {
		notAfter = cert.NotAfter
	}
	it, err := NewItem(agent, notAfter, ip, now, p, ci.retention)
	if err != nil {
		return Answer{}, err
	}
	version, cached := s.cachedVersion(ctx, ci.channel)
	it.WantVersion = !cached
	o := s.submit(ctx, it)
	if err := o.Err; err != nil {
		switch {
		case errors.Is(err, certs.ErrRefused):
			// The agent gets one generic 401; the database's reason goes to the log. Every
			// reason is final (revoked, superseded, machine deleted, unknown, expired), so
			// the mark that the guard reads is restored if it was lost: the next request
			// costs no work.
			s.d.Logger.InfoContext(ctx, "agent certificate refused", "reason", err.Error())
			if cert != nil {
				s.marks().Refuse(context.WithoutCancel(ctx), now, certs.Refusal{Serial: agent.Serial, Until: cert.NotAfter})
			}
		case errors.Is(err, certs.ErrClientDisabled):
			s.marks().ClientDisabled(context.WithoutCancel(ctx), agent.ClientID, true)
		}
		return Answer{}, err
	}
	if !o.Fresh {
		// A retry, or another body with an already-recorded recorded_at: nothing written.
		s.d.Logger.InfoContext(ctx, "heartbeat already recorded; nothing written", "machine_id", agent.MachineID,
			"recorded_at", p.RecordedAt)
	}
	ans = o.Answer
	if cached {
		ans.LatestAgentVersion = version
	} else {
		s.storeVersion(ctx, ci.channel, ans.LatestAgentVersion)
	}
	return ans, nil
}

// submit writes the heartbeat: through the group committer when there is one (the
// long-running server), otherwise as a group of one (Lambda: one request per invocation).
func (s *Service) submit(ctx context.Context, it Item) Outcome {
	if s.d.Queue != nil {
		return s.enqueue(ctx, it)
	}
	if s.committer != nil {
		return s.committer.Submit(ctx, it)
	}
	return s.writer.Write(ctx, []Item{it})[0]
}

// serverFault reports an error answered with a 5xx.
func serverFault(err error) bool {
	if e, ok := apperr.As(err); ok {
		return apperr.Status(e.Code) >= 500
	}
	return true
}

// errUnknownMachine answers an agent whose machine was deleted after the guard admitted it.
var errUnknownMachine = apperr.New(apperr.Unauthenticated, "unknown machine")

// storeError maps the batch's errors: the certificate check's refusal (certs.ErrRefused,
// the database's reason kept for the log), a machine gone (foreign key, or no row to
// answer), and db.Error's defaults for the rest (a check, range or length violation
// the validation did not catch is still the agent's data: 400).
func storeError(err error) error {
	return db.Error(err, "heartbeat: batch",
		db.On(db.AgentRefused, certs.ErrRefused),
		db.On(db.ClientDisabled, certs.ErrClientDisabled),
		db.On(db.LicenceExpired, ErrLicenceExpired),
		db.On(db.ForeignKeyViolation, errUnknownMachine),
		db.On(db.NoRows, errUnknownMachine))
}

// ReadBody reads a heartbeat body, gunzipping it when it starts with the gzip magic bytes
// whatever Content-Encoding says (a proxy may have decompressed it and kept the header, or
// dropped the header and not decompressed). The decompressed size is bounded by max: the
// reader stops at max+1 bytes, so a gzip bomb costs max bytes of memory and gets 413.
func ReadBody(body io.Reader, max int64) ([]byte, error) { return readBody(body, max, nil) }

func readBody(body io.Reader, max int64, readers *sync.Pool) ([]byte, error) {
	raw, err := httpx.ReadBody(body, max)
	if err != nil {
		return nil, err
	}
	if len(raw) < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
		return raw, nil
	}
	var zr *gzip.Reader
	if readers != nil {
		zr, _ = readers.Get().(*gzip.Reader)
	}
	if zr == nil {
		zr = new(gzip.Reader)
	}
	if err := zr.Reset(bytes.NewReader(raw)); err != nil {
		return nil, apperr.New(apperr.Invalid, "malformed gzip body")
	}
	defer func() {
		_ = zr.Close()
		if readers != nil {
			readers.Put(zr)
		}
	}()
	return httpx.Body{Limit: max, Name: "decompressed body", Unreadable: "malformed gzip body"}.Read(zr)
}

// client returns the client's channel and retention: from memory when loaded in the
// last ClientTTL (the hot path costs no database round trip), otherwise from the database.
func (s *Service) client(ctx context.Context, clientID string) (clientInfo, error) {
	now := s.d.Clock.Now()
	s.mu.Lock()
	ci, ok := s.clients[clientID]
	s.mu.Unlock()
	if ok && now.Sub(ci.loaded) < ClientTTL {
		return ci, nil
	}
	err := s.d.Pool.QueryRow(ctx, `
		SELECT c.agent_channel, r.metrics_retention_days, r.events_retention_days
		FROM clients c JOIN license_retention r ON r.license_tier = c.license_tier WHERE c.id = $1`, clientID).
		Scan(&ci.channel, &ci.retention.MetricsDays, &ci.retention.EventsDays)
	if err != nil {
		return clientInfo{}, db.Error(err, "heartbeat: client",
			db.On(db.NoRows, apperr.New(apperr.Unauthenticated, "unknown client")))
	}
	ci.loaded = now
	s.mu.Lock()
	if len(s.clients) > 10000 {
		clear(s.clients)
	}
	s.clients[clientID] = ci
	s.mu.Unlock()
	return ci, nil
}

// marks are the refusal marks the heartbeat guard reads (certs.RefusingGuard).
func (s *Service) marks() certs.Marks {
	return certs.Marks{Store: cache.Store{Redis: s.d.Redis, Prefix: s.d.RedisPrefix, Breaker: s.breaker, Logger: s.d.Logger}}
}

func (s *Service) versionKey(channel string) string {
	return s.d.RedisPrefix + cache.AgentVersionKey(channel)
}

// cachedVersion reads the channel's agent version from Redis; ok is false on a miss or
// when Redis is absent or failing (the batch then reads it from the database).
func (s *Service) cachedVersion(ctx context.Context, channel string) (string, bool) {
	if s.d.Redis == nil || !s.breaker.Ready() {
		return "", false
	}
	v, err := s.d.Redis.Get(ctx, s.versionKey(channel)).Result()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			pause := s.breaker.Fail()
			s.d.Logger.WarnContext(ctx, "heartbeat: Redis unavailable for the agent version", "error", err.Error(), "retry_in", pause.String())
		}
		return "", false
	}
	return v, true
}

func (s *Service) storeVersion(ctx context.Context, channel, version string) {
	if s.d.Redis == nil || !s.breaker.Ready() {
		return
	}
	if err := s.d.Redis.Set(ctx, s.versionKey(channel), version, VersionTTL).Err(); err != nil {
		s.d.Logger.WarnContext(ctx, "heartbeat: caching the agent version", "error", err.Error())
	}
}

// CollectorConfig is GET /agent/config/collectors' answer.
type CollectorConfig struct {
	// Config is the effective configuration: every collector, the built-in defaults
	// overlaid by the client's default and then by the machine's own entries.
	Config collectorcfg.Config `json:"collector_config"`
	// UpdatedAt is the later of the machine's and the client's last change.
	UpdatedAt time.Time `json:"updated_at"`
}

// HandleCollectors is GET /agent/config/collectors: the machine's effective collector
// configuration, recording the fetch in machines.last_config_sync (one statement), after
// which heartbeats answer config_changed false until the next change.
func (s *Service) HandleCollectors() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agent, ok := certs.AgentFrom(r.Context())
		if !ok {
			httpx.WriteError(w, r, s.d.Logger, apperr.ErrNoClientCert)
			return
		}
		var out CollectorConfig
		var own, def []byte
		err := s.d.Pool.QueryRow(r.Context(), `
			UPDATE machines m SET last_config_sync = $2 FROM clients c
			WHERE m.id = $1 AND c.id = m.client_id AND m.deleted_at IS NULL
			RETURNING m.collector_config::text, c.collector_config::text,
			    GREATEST(m.collector_config_updated_at, c.collector_config_updated_at)`,
			agent.MachineID, s.d.Clock.Now()).Scan(&own, &def, &out.UpdatedAt)
		if err == nil {
			out.Config, err = effective(def, own)
		}
		if err != nil {
			err = db.Error(err, "heartbeat: collector config", db.On(db.NoRows, errUnknownMachine))
			httpx.WriteError(w, r, s.d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	})
}

func effective(clientDefault, own []byte) (collectorcfg.Config, error) {
	d, err := collectorcfg.Stored(clientDefault)
	if err != nil {
		return nil, err
	}
	m, err := collectorcfg.Stored(own)
	if err != nil {
		return nil, err
	}
	return collectorcfg.Effective(d, m), nil
}
