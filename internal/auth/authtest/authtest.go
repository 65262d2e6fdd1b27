// Package authtest has test doubles for the auth package: a settable clock that sleeps by
// moving itself, a counting hasher and a mailer that keeps what it is asked to send.
package authtest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"
)

// Clock is a clock tests move by hand. Safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Sleep returns at once, having moved the clock forward by d (nothing when d <= 0): an
// auth.Sleeper whose waits a test reads on the clock instead of a stopwatch.
func (c *Clock) Sleep(_ context.Context, d time.Duration) {
	if d > 0 {
		c.Advance(d)
	}
}

// Hasher is bcrypt at a chosen cost that counts its comparisons and keeps the bcrypt cost
// of the last hash it compared against.
type Hasher struct {
	Cost        int
	Compares    atomic.Int64
	LastCompare atomic.Int64 // bcrypt cost of the last compared hash; -1: not a bcrypt hash
}

// Hash hashes password at h.Cost.
func (h *Hasher) Hash(password string) (string, error) {
	b, err := bcrypt.GenerateFromPassword([]byte(password), h.Cost)
	return string(b), err
}

// Compare checks password against hash and counts the call.
func (h *Hasher) Compare(hash, password string) error {
	h.Compares.Add(1)
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		cost = -1
	}
	h.LastCompare.Store(int64(cost))
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
}

// Mail is one message a Mailer was asked to send.
type Mail struct{ To, Subject, Body string }

// Mailer keeps the messages instead of sending them.
type Mailer struct {
	mu       sync.Mutex
	sent     []Mail
	attempts []Mail
	Err      error // returned by Send when set: the message is attempted, not sent
}

// Send records the attempt, and the message as sent unless Err is set.
func (m *Mailer) Send(_ context.Context, to, subject, body string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts = append(m.attempts, Mail{to, subject, body})
	if m.Err != nil {
		return m.Err
	}
	m.sent = append(m.sent, Mail{to, subject, body})
	return nil
}

// Attempts returns a copy of every message Send was called with, sent or failed.
func (m *Mailer) Attempts() []Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Mail(nil), m.attempts...)
}

// Sent returns a copy of what was sent.
func (m *Mailer) Sent() []Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Mail(nil), m.sent...)
}

// DownRedis is a client for a port where nothing listens: every command fails at once,
// as when the cache is down.
func DownRedis() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
}

// Calls counts the commands and pipelines a Redis client sends (add it with AddHook).
type Calls struct{ N atomic.Int64 }

// DialHook passes dials through.
func (c *Calls) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook counts one command.
func (c *Calls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.N.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts one pipeline.
func (c *Calls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.N.Add(1)
		return next(ctx, cmds)
	}
}
