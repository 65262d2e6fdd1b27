// Package enrol turns an install token into an enrolled machine: install tokens, the
// bootstrap exchange, the licence's machine count and the Linux installer script.
package enrol

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/tokenhash"
)

// Install token rules (spec "Install Tokens"): 256 random bits, URL-safe base64 with
// padding (44 characters), only the SHA-256 stored, 15 minutes by default, 60 at most.
const (
	TokenBytes = 32
	TokenLen   = 44
	DefaultTTL = 15 * time.Minute
	MaxTTL     = 60 * time.Minute
	// CleanupAfter is how long an expired token is kept (for the dashboard's list).
	CleanupAfter = 24 * time.Hour
	MaxNameLen   = 100
	MaxUsage     = 100000
)

// newTokenSecret returns a fresh token. It is shown once, at creation, and never stored.
func newTokenSecret() (string, error) {
	b := make([]byte, TokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// WellFormed tells whether s has the shape of a token: 44 characters of canonical
// URL-safe base64 encoding 32 bytes.
func WellFormed(s string) bool {
	if len(s) != TokenLen {
		return false
	}
	b, err := base64.URLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == TokenBytes
}

// Token is an install token as the dashboard lists it: never the token, never its hash.
type Token struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	ExpiresAt  time.Time  `json:"expires_at"`
	UsageCount int        `json:"usage_count"`
	MaxUsage   int        `json:"max_usage"` // 0: unlimited
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	CreatedBy  *string    `json:"created_by,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	Status     string     `json:"status"` // active, expired, revoked, exhausted (computed)
}

func (t *Token) compute(now time.Time) {
	switch {
	case t.RevokedAt != nil:
		t.Status = "revoked"
	case !t.ExpiresAt.After(now):
		t.Status = "expired"
	case t.MaxUsage > 0 && t.UsageCount >= t.MaxUsage:
		t.Status = "exhausted"
	default:
		t.Status = "active"
	}
}

const tokenColumns = `id::text, name, expires_at, usage_count, max_usage, revoked_at, created_by::text, created_at`

func scanToken(row pgx.Row) (Token, error) {
	var t Token
	err := row.Scan(&t.ID, &t.Name, &t.ExpiresAt, &t.UsageCount, &t.MaxUsage, &t.RevokedAt, &t.CreatedBy, &t.CreatedAt)
	return t, err
}

// CreateRequest asks for a new install token.
type CreateRequest struct {
	ClientID string
	UserID   string
	Name     string
	TTL      time.Duration // DefaultTTL when zero; at most MaxTTL
	MaxUsage int           // 0: unlimited
	IP       string
}

// CreateToken stores a new token's hash and returns the token, once.
func CreateToken(ctx context.Context, pool *pgxpool.Pool, req CreateRequest, now time.Time) (Token, string, error) {
	if req.TTL == 0 {
		req.TTL = DefaultTTL
	}
	if req.TTL < time.Minute || req.TTL > MaxTTL {
		return Token{}, "", apperr.InvalidFields(map[string]string{"expires_in_minutes": "must be between 1 and 60"})
	}
	secret, err := newTokenSecret()
	if err != nil {
		return Token{}, "", err
	}
	var t Token
	err = db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRow(ctx, `
			INSERT INTO install_tokens (client_id, token_hash, name, expires_at, max_usage, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, NULLIF($6, '')::uuid, $7, $7)
			RETURNING `+tokenColumns, req.ClientID, tokenhash.Sum(secret), req.Name, now.Add(req.TTL), req.MaxUsage, req.UserID, now))
		if err != nil {
			return db.Error(err, "enrol: create token")
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: req.ClientID, UserID: req.UserID, Action: "install_token_created", IP: req.IP,
			Details: map[string]any{"token_id": t.ID, "name": t.Name, "expires_at": t.ExpiresAt, "max_usage": t.MaxUsage}})
	})
	if err != nil {
		return Token{}, "", err
	}
	t.compute(now)
	return t, secret, nil
}

// ListTokens returns the client's tokens, newest first.
func ListTokens(ctx context.Context, q db.Querier, clientID string, now time.Time) ([]Token, error) {
	rows, err := q.Query(ctx, `SELECT `+tokenColumns+` FROM install_tokens WHERE client_id = $1 ORDER BY created_at DESC, id`, clientID)
	if err != nil {
		return nil, db.Error(err, "enrol: list tokens")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) { return scanToken(r) })
	if err != nil {
		return nil, db.Error(err, "enrol: list tokens")
	}
	for i := range list {
		list[i].compute(now)
	}
	if list == nil {
		list = []Token{}
	}
	return list, nil
}

// ErrTokenNotFound: no such token for this client.
var ErrTokenNotFound = apperr.New(apperr.NotFound, "install token not found")

// RevokeToken revokes one of the client's tokens. Revoking a revoked token changes nothing
// (idempotent); the first revocation is audited.
func RevokeToken(ctx context.Context, pool *pgxpool.Pool, clientID, id, userID, ip string, now time.Time) error {
	return db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		var revokedAt *time.Time
		err := tx.QueryRow(ctx, `SELECT revoked_at FROM install_tokens WHERE id = $1 AND client_id = $2 FOR UPDATE`,
			id, clientID).Scan(&revokedAt)
		if err != nil {
			return db.Error(err, "enrol: revoke token", db.On(db.NoRows, ErrTokenNotFound))
		}
		if revokedAt != nil {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE install_tokens SET revoked_at = $2, updated_at = $2 WHERE id = $1`, id, tx.Now); err != nil {
			return db.Error(err, "enrol: revoke token")
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: clientID, UserID: userID, Action: "install_token_revoked", IP: ip,
			Details: map[string]any{"token_id": id}})
	})
}

// CleanupExpiredTokens deletes the tokens expired for more than 24 hours (the cleanup job
// calls it) and returns how many went.
func CleanupExpiredTokens(ctx context.Context, q db.Querier, now time.Time) (int, error) {
	tag, err := q.Exec(ctx, `DELETE FROM install_tokens WHERE expires_at < $1`, now.Add(-CleanupAfter))
	if err != nil {
		return 0, db.Error(err, "enrol: cleanup tokens")
	}
	return int(tag.RowsAffected()), nil
}
