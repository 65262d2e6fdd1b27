// Package auth authenticates dashboard users: passwords, JWT access tokens, rotating refresh
// tokens with theft detection, the access-token blacklist, cookies and CSRF, rate limits.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/ratelimit"
)

// Lifetimes and limits (spec "Sécurité").
const (
	AccessTTL      = 15 * time.Minute
	RefreshTTL     = 7 * 24 * time.Hour
	ResetTTL       = time.Hour
	PasswordMaxAge = 90 * 24 * time.Hour
	BcryptCost     = 12
	// Leeway is the clock skew tolerated on exp, nbf and iat.
	Leeway = 30 * time.Second
	// RefreshGrace is how long after a rotation the immediately previous refresh token
	// still answers, with the same successor, instead of counting as theft: two tabs
	// refreshing at once, or a client retrying after a lost response.
	RefreshGrace = 30 * time.Second
	// Issuer and Audience of access tokens.
	Issuer   = "optralis"
	Audience = "optralis-dashboard"
)

// AttemptLimit is the spec's auth rate limit: 5 attempts per 15 minutes (per IP).
var AttemptLimit = ratelimit.Limit{Burst: 5, Period: 15 * time.Minute}

// Hasher hashes and checks passwords.
type Hasher interface {
	Hash(password string) (string, error)
	Compare(hash, password string) error // nil when password matches
}

// Bcrypt is the production Hasher.
type Bcrypt struct{ Cost int }

// Hash returns the bcrypt hash of password.
func (b Bcrypt) Hash(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), b.Cost)
	return string(h), err
}

// Compare checks password against a bcrypt hash.
func (Bcrypt) Compare(hash, password string) error {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
}

// dummyHash is the cost-12 bcrypt hash of a random password nobody knows. Logins for an
// unknown email compare against it, so they cost the same bcrypt work as real ones.
const dummyHash = "$2a$12$n6/CUQj1m4yNKpmU/UGTtOsVr2pEtFDGhiN3rRTmmqnuB3UdvCySa"

// Options configures a Service.
type Options struct {
	Pool   *pgxpool.Pool
	Redis  *redis.Client // nil: blacklist in the database only, rate limits in process
	Secret []byte        // JWT_SECRET, at least 32 bytes; other keys are derived from it
	Clock  clock.Clock
	Logger *slog.Logger
	// Dev drops the Secure attribute from cookies (plain-HTTP local stack).
	Dev bool
	// Mailer sends password reset links; nil: mail disabled (logged, never the link).
	Mailer mail.Sender
	// DashboardURL is the base of reset links (https://dash.example.com).
	DashboardURL string
	// KeyPrefix namespaces every Redis key (deployments or test runs sharing a server).
	KeyPrefix string
	// Hasher defaults to bcrypt at BcryptCost.
	Hasher Hasher
	// ForgotMinDuration is the least time a forgot-password answer takes, whether or not
	// the email exists and mail was sent (default 1.5 s; negative: none).
	ForgotMinDuration time.Duration
	// Sleeper times and pads the forgot-password answer; nil: the wall clock.
	Sleeper Sleeper
}

// Sleeper tells the time and waits: the forgot-password answer is padded with it to
// Options.ForgotMinDuration.
type Sleeper interface {
	Now() time.Time
	// Sleep waits for d (nothing when d <= 0), or until ctx ends.
	Sleep(ctx context.Context, d time.Duration)
}

// wallSleeper is the real Sleeper: time.Now keeps its monotonic reading, so a wall-clock
// step during a request does not change the padding.
type wallSleeper struct{}

func (wallSleeper) Now() time.Time { return time.Now() }

func (wallSleeper) Sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// Service is safe for concurrent use; build one per process.
type Service struct {
	pool         *pgxpool.Pool
	redis        *redis.Client
	clock        clock.Clock
	logger       *slog.Logger
	hasher       Hasher
	dummyHash    string
	mailer       mail.Sender
	limiter      *ratelimit.Limiter
	jwtKey       []byte
	csrfKey      []byte
	rotateKey    []byte
	secure       bool
	prefix       string
	dashboardURL string
	forgotMin    time.Duration
	sleeper      Sleeper
	breaker      *cache.Breaker // blacklist checks skip Redis for a while after an error
}

// New builds a Service. It does no I/O.
func New(o Options) *Service {
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Mailer == nil {
		o.Mailer = mail.Disabled{Logger: o.Logger}
	}
	if o.Sleeper == nil {
		o.Sleeper = wallSleeper{}
	}
	s := &Service{
		pool: o.Pool, redis: o.Redis, clock: o.Clock, logger: o.Logger, mailer: o.Mailer,
		limiter:      ratelimit.New(o.Redis, o.KeyPrefix+"rl:", o.Clock, o.Logger),
		breaker:      cache.NewBreaker(o.Clock, cache.Pause),
		jwtKey:       o.Secret,
		csrfKey:      derive(o.Secret, "optralis csrf v1"),
		rotateKey:    derive(o.Secret, "optralis refresh rotation v1"),
		secure:       !o.Dev,
		prefix:       o.KeyPrefix,
		dashboardURL: o.DashboardURL,
		forgotMin:    o.ForgotMinDuration,
		sleeper:      o.Sleeper,
		hasher:       o.Hasher,
		dummyHash:    dummyHash,
	}
	if s.forgotMin == 0 {
		s.forgotMin = 1500 * time.Millisecond
	}
	if s.hasher == nil {
		s.hasher = Bcrypt{Cost: BcryptCost}
	} else if h, err := s.hasher.Hash(randomToken()); err == nil {
		// Another hasher gets a dummy of its own making, so both paths cost alike.
		s.dummyHash = h
	}
	return s
}

// Limiter is the service's rate limiter (shared with callers that limit other attempts).
func (s *Service) Limiter() *ratelimit.Limiter { return s.limiter }

func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// randomToken is 256 random bits, base64url without padding (43 characters).
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return base64.RawURLEncoding.EncodeToString(b)
}

// newJTI is 128 random bits in hex.
func newJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// successor is the refresh token that replaces t at rotation. Deriving it (instead of
// drawing it at random) lets a concurrent refresh with t, inside the grace window, receive
// the very same successor: the family stays one chain, so a thief and a victim sharing it
// still collide at the next rotation.
func (s *Service) successor(t string) string {
	m := hmac.New(sha256.New, s.rotateKey)
	m.Write([]byte(t))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CSRFToken is the double-submit token of a session: bound to the session (family) by an
// HMAC, so a cookie planted by a sibling domain does not match, and stable across
// refreshes, so tabs never race on it.
func (s *Service) CSRFToken(familyID string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(familyID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Service) detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}
