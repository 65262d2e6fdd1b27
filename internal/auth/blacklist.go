package auth

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/auth/authclean"
)

// The blacklist holds two kinds of keys: an access token's jti (logout) and a whole session
// ("family:<id>", when its refresh tokens are revoked: logout, theft, password change), so
// every access token of a killed session dies at once, not up to 15 minutes later.
//
// The database (token_blacklist) is the record; Redis holds a copy for O(1) checks. A
// marker key, re-set after each copy from the database and expiring after blSyncEvery,
// says the copy is complete: when it is missing (Redis restarted, flushed, evicted keys)
// the check asks the database and one instance copies the live entries back. A write
// made while an instance could not reach Redis is therefore seen by every instance within
// blSyncEvery at worst. After a Redis error an instance checks the database alone for
// cache.Pause (the service's breaker), so an unreachable Redis does not slow every request
// down.
const (
	blSyncEvery = time.Minute
	blSyncLock  = 10 * time.Second
)

func familyKey(familyID string) string { return "family:" + familyID }

func (s *Service) redisKey(entry string) string { return s.prefix + "bl:" + entry }

// isBlacklisted tells whether the token (jti) or its session is blacklisted. Redis first;
// the database when Redis is absent, failing, or not known to be complete.
func (s *Service) isBlacklisted(ctx context.Context, jti, familyID string, now time.Time) (bool, error) {
	keys := []string{jti, familyKey(familyID)}
	if s.redis != nil && s.breaker.Ready() {
		var hits, synced *redis.IntCmd
		_, err := s.redis.Pipelined(ctx, func(p redis.Pipeliner) error {
			hits = p.Exists(ctx, s.redisKey(keys[0]), s.redisKey(keys[1]))
			synced = p.Exists(ctx, s.redisKey("synced"))
			return nil
		})
		switch {
		case err != nil:
			// Stay on the database for a while: an unreachable Redis then costs one slow
			// call per pause, not one per request.
			pause := s.breaker.Fail()
			s.logger.WarnContext(ctx, "auth: Redis unavailable, checking the blacklist in the database", "error", err.Error(), "retry_in", pause.String())
		case hits.Val() > 0:
			return true, nil
		case synced.Val() == 1:
			return false, nil
		default:
			s.resyncBlacklist(ctx, now)
		}
	}
	return blacklistedInDB(ctx, s.pool, keys, now)
}

// pushBlacklist copies entries to Redis with a TTL equal to their remaining life. Called
// after the database transaction commits; a failure is logged (the database has it).
func (s *Service) pushBlacklist(ctx context.Context, entries []blEntry, now time.Time) {
	if s.redis == nil || len(entries) == 0 {
		return
	}
	ctx, cancel := s.detach(ctx)
	defer cancel()
	_, err := s.redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range entries {
			if ttl := e.ExpiresAt.Sub(now); ttl > 0 {
				p.Set(ctx, s.redisKey(e.Key), "1", ttl)
			}
		}
		return nil
	})
	if err != nil {
		s.logger.WarnContext(ctx, "auth: blacklist entry not copied to Redis (the database has it)", "error", err.Error())
	}
}

// resyncBlacklist copies the database's live entries to Redis and sets the marker. One
// instance at a time does it (a short lock); the others use the database meanwhile.
func (s *Service) resyncBlacklist(ctx context.Context, now time.Time) {
	ok, err := s.redis.SetNX(ctx, s.redisKey("syncing"), "1", blSyncLock).Result()
	if err != nil || !ok {
		return
	}
	entries, err := liveBlacklist(ctx, s.pool, now)
	if err != nil {
		s.logger.WarnContext(ctx, "auth: blacklist resync", "error", err.Error())
		return
	}
	_, err = s.redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range entries {
			if ttl := e.ExpiresAt.Sub(now); ttl > 0 {
				p.Set(ctx, s.redisKey(e.Key), "1", ttl)
			}
		}
		p.Set(ctx, s.redisKey("synced"), "1", blSyncEvery)
		p.Del(ctx, s.redisKey("syncing"))
		return nil
	})
	if err != nil {
		s.logger.WarnContext(ctx, "auth: blacklist resync", "error", err.Error())
	}
}

// CleanupBlacklist deletes the blacklist rows whose tokens have expired (authclean).
func (s *Service) CleanupBlacklist(ctx context.Context, now time.Time) (int, error) {
	return authclean.Blacklist(ctx, s.pool, now)
}

// CleanupTokens deletes expired refresh and reset tokens (authclean).
func (s *Service) CleanupTokens(ctx context.Context, now time.Time) (refresh, reset int, err error) {
	return authclean.Tokens(ctx, s.pool, now)
}

// CleanupJob is the hourly clean-up of expired blacklist entries and tokens (authclean).
func (s *Service) CleanupJob(ctx context.Context, now time.Time) error {
	return authclean.Run(ctx, s.pool, s.logger, now)
}
