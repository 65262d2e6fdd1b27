package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/principal"
)

// maxTokenLen bounds what the parser is given: our tokens are about 500 bytes.
const maxTokenLen = 4096

// Claims are the access token's payload.
type Claims struct {
	jwt.RegisteredClaims
	ClientID  string `json:"cid,omitempty"`
	Role      string `json:"role"`
	Email     string `json:"email"`
	SessionID string `json:"sid"` // refresh token family
	// MustChange is set when the password must be changed (first login, admin reset).
	MustChange bool `json:"mcp,omitempty"`
	// PasswordExpires is when the password expires (Unix seconds): checked at each request,
	// so a password expiring during the token's life is caught at once.
	PasswordExpires int64 `json:"pwe"`
}

var errWeakKey = errors.New("auth: JWT secret shorter than 32 bytes")

func (s *Service) issueAccess(u User, familyID string, now time.Time) (token string, c Claims, err error) {
	if len(s.jwtKey) < config.MinJWTSecretLen {
		return "", c, errWeakKey
	}
	c = Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   u.ID,
			Audience:  jwt.ClaimStrings{Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(AccessTTL)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        newJTI(),
		},
		ClientID:        u.ClientID,
		Role:            u.Role,
		Email:           u.Email,
		SessionID:       familyID,
		MustChange:      u.MustChangePassword,
		PasswordExpires: u.PasswordExpiresAt().Unix(),
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.jwtKey)
	return token, c, err
}

// parseAccess verifies an access token: HS256 only (no "none", no RSA/ECDSA, no other HMAC
// size), our key, issuer, audience, exp required, nbf and iat not in the future, all with
// Leeway, then the claims our code relies on.
func (s *Service) parseAccess(raw string) (*Claims, error) {
	if len(s.jwtKey) < config.MinJWTSecretLen {
		return nil, errWeakKey
	}
	if len(raw) > maxTokenLen {
		return nil, errors.New("auth: token too long")
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(s.clock.Now),
	)
	c := &Claims{}
	_, err := p.ParseWithClaims(raw, c, func(t *jwt.Token) (any, error) {
		// WithValidMethods already refuses other algorithms; checking the type as well
		// means no future option can turn a public key into an HMAC secret.
		if m, ok := t.Method.(*jwt.SigningMethodHMAC); !ok || m != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
		}
		return s.jwtKey, nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := uuid.Parse(c.Subject); err != nil {
		return nil, errors.New("auth: bad subject")
	}
	if _, err := uuid.Parse(c.SessionID); err != nil {
		return nil, errors.New("auth: bad session id")
	}
	if c.ID == "" || c.IssuedAt == nil {
		return nil, errors.New("auth: token lacks jti or iat")
	}
	switch c.Role {
	case principal.RoleUser, principal.RoleAdmin:
		if _, err := uuid.Parse(c.ClientID); err != nil {
			return nil, errors.New("auth: client user without a client")
		}
	case principal.RolePlatformAdmin:
		if c.ClientID != "" {
			return nil, errors.New("auth: platform admin with a client")
		}
	default:
		return nil, errors.New("auth: unknown role")
	}
	return c, nil
}
