package certs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/cache"
)

// Refused certificates and disabled clients are marked in Redis so that the heartbeat's
// guard refuses them before reading the body, with one Redis call and no database round
// trip. The marks are hints written after the refusing transaction commits; the database
// (optralis_assert_agent at the head of the heartbeat batch) stays the authority: a lost
// mark (Redis down at the time, evicted, flushed) costs the refused agent's work again,
// never a wrong acceptance. Nothing is kept in process memory: a mark written by one
// instance bites on every instance's very next request.

// RefusedKey marks a serial refused for good (revoked, superseded, its machine deleted):
// cert:refused:<serial>, kept until the certificate expires (after which the transport
// refuses it anyway).
func RefusedKey(serial string) string { return "cert:refused:" + serial }

// ClientDisabledKey marks a client disabled: agent:client-disabled:<id>. Unlike a serial,
// a client can be enabled again, so the mark is short-lived (ClientDisabledTTL) and
// renewed by each refused heartbeat; enabling the client deletes it.
func ClientDisabledKey(clientID string) string { return "agent:client-disabled:" + clientID }

// ClientDisabledTTL bounds how long a stale "disabled" mark can refuse the agents of a
// client enabled again while Redis could not be told.
const ClientDisabledTTL = 15 * time.Minute

// Refusal is a certificate refused from now on, to mark once its transaction committed.
type Refusal struct {
	Serial string
	Until  time.Time // the certificate's expiry; zero: the longest validity from now
}

// Marks reads and writes the refusal marks in the cache's Redis.
type Marks struct{ Store cache.Store }

// Refuse marks serials refused. Call it after the commit that refused them.
func (m Marks) Refuse(ctx context.Context, now time.Time, refusals ...Refusal) {
	if m.Store.Redis == nil || len(refusals) == 0 {
		return
	}
	pipe := m.Store.Redis.Pipeline()
	for _, r := range refusals {
		if r.Serial == "" {
			continue
		}
		until := r.Until
		if until.IsZero() {
			until = now.Add(Validity(now))
		}
		ttl := until.Sub(now)
		if ttl <= 0 {
			continue // expired: the transport refuses it
		}
		pipe.Set(ctx, m.Store.Key(RefusedKey(r.Serial)), "1", ttl+time.Minute)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		m.Store.Failed(ctx, "mark refused certificates", err)
	}
}

// ClientDisabled marks a client disabled (true) or drops the mark (false). Call it after
// the commit that changed the client.
func (m Marks) ClientDisabled(ctx context.Context, clientID string, disabled bool) {
	if m.Store.Redis == nil || clientID == "" {
		return
	}
	var err error
	if disabled {
		err = m.Store.Redis.Set(ctx, m.Store.Key(ClientDisabledKey(clientID)), "1", ClientDisabledTTL).Err()
	} else {
		err = m.Store.Redis.Del(ctx, m.Store.Key(ClientDisabledKey(clientID))).Err()
	}
	if err != nil {
		m.Store.Failed(ctx, "mark client disabled", err)
	}
}

// errNoMarks is Check's answer when Redis cannot tell (absent, paused or failing).
var errNoMarks = errors.New("certs: refusal marks unavailable")

// Check reads the marks of serial and its client in one Redis call: ErrRefused or
// ErrClientDisabled when marked, nil when not, errNoMarks when Redis cannot tell (the
// caller then asks the database).
func (m Marks) Check(ctx context.Context, serial, clientID string) error {
	if !m.Store.Enabled() {
		return errNoMarks
	}
	vals, err := m.Store.Redis.MGet(ctx, m.Store.Key(RefusedKey(serial)), m.Store.Key(ClientDisabledKey(clientID))).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		m.Store.Failed(ctx, "check refusal marks", err)
		return errNoMarks
	}
	switch {
	case len(vals) > 0 && vals[0] != nil:
		return fmt.Errorf("certs: serial %s marked refused: %w", serial, ErrRefused)
	case len(vals) > 1 && vals[1] != nil:
		return fmt.Errorf("certs: client %s marked disabled: %w", clientID, ErrClientDisabled)
	}
	return nil
}
