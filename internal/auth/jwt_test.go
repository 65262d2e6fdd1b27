package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/principal"
)

// claimsAt returns the claims a genuine token issued at now would carry.
func claimsAt(now time.Time, u user) auth.Claims {
	return auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: auth.Issuer, Subject: u.ID, Audience: jwt.ClaimStrings{auth.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(auth.AccessTTL)), NotBefore: jwt.NewNumericDate(now),
			IssuedAt: jwt.NewNumericDate(now), ID: uuid.NewString(),
		},
		ClientID: u.ClientID, Role: u.Role, Email: u.Email, SessionID: uuid.NewString(),
		PasswordExpires: now.Add(30 * 24 * time.Hour).Unix(),
	}
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAccessTokenAttacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user(principal.RoleAdmin)
	now := e.clock.Now()

	// The baseline forged with the right key and method is accepted: the refusals below
	// are due to the one thing each case changes.
	if _, err := e.authenticate(sign(t, jwt.SigningMethodHS256, secret, claimsAt(now, u))); err != nil {
		t.Fatalf("baseline token refused: %v", err)
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	mod := func(f func(c *auth.Claims)) auth.Claims {
		c := claimsAt(now, u)
		f(&c)
		return c
	}
	otherUser := u
	otherUser.ClientID = uuid.NewString()
	cases := map[string]string{
		"alg none":                     sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsAt(now, u)),
		"other secret":                 sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-at-least-32-bytes"), claimsAt(now, u)),
		"HS512 with our secret":        sign(t, jwt.SigningMethodHS512, secret, claimsAt(now, u)),
		"RS256 with an RSA key":        sign(t, jwt.SigningMethodRS256, rsaKey, claimsAt(now, u)),
		"HS256 keyed by a public key":  sign(t, jwt.SigningMethodHS256, pubPEM, claimsAt(now, u)),
		"RS256 header, HS256 sig":      rsHeaderHSSignature(t, claimsAt(now, u)),
		"expired":                      sign(t, jwt.SigningMethodHS256, secret, claimsAt(now.Add(-auth.AccessTTL-auth.Leeway-time.Second), u)),
		"not yet valid":                sign(t, jwt.SigningMethodHS256, secret, mod(func(c *auth.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Minute)) })),
		"issued in the future":         sign(t, jwt.SigningMethodHS256, secret, mod(func(c *auth.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Minute)) })),
		"no expiry":                    sign(t, jwt.SigningMethodHS256, secret, mod(func(c *auth.Claims) { c.ExpiresAt = nil })),
		"wrong audience":               sign(t, jwt.SigningMethodHS256, secret, mod(func(c *auth.Claims) { c.Audience = jwt.ClaimStrings{"optralis-agent"} })),
		"no audience":                  sign(t, jwt.SigningMethodHS256, secret, mod(func(c *auth.Claims) { c.Audience = nil })),
		"wrong issuer":                 sign(t, jwt.SigningMethodHS256, secret, mod(func(c *auth.Claims) { c.Issuer = "evil" })),
		"no jti":                       sign(t, jwt.SigningMethodHS256, secret, mod(func(c *auth.Claims) { c.ID = "" })),
		"subject not a uuid":           sign(t, jwt.SigningMethodHS256, secret, mod(func(c *auth.Claims) { c.Subject = "admin" })),
		"unknown role":                 sign(t, jwt.SigningMethodHS256, secret, mod(func(c *auth.Claims) { c.Role = "root" })),
		"platform admin with a client": sign(t, jwt.SigningMethodHS256, secret, mod(func(c *auth.Claims) { c.Role = principal.RolePlatformAdmin })),
		"client user without client":   sign(t, jwt.SigningMethodHS256, secret, mod(func(c *auth.Claims) { c.ClientID = "" })),
		"tampered payload":             tamper(t, sign(t, jwt.SigningMethodHS256, secret, claimsAt(now, u)), claimsAt(now, otherUser)),
		"signature stripped":           strings.TrimRight(sign(t, jwt.SigningMethodHS256, secret, claimsAt(now, u)), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
		"oversized":                    sign(t, jwt.SigningMethodHS256, secret, mod(func(c *auth.Claims) { c.Email = strings.Repeat("a", 5000) })),
		"garbage":                      "not.a.jwt",
	}
	for name, tok := range cases {
		if _, err := e.authenticate(tok); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			mustUnauthenticated(t, err, name)
		}
	}

	// Clock skew: inside the leeway is accepted, explicitly.
	skewed := sign(t, jwt.SigningMethodHS256, secret, claimsAt(now.Add(-auth.AccessTTL-auth.Leeway+5*time.Second), u))
	if _, err := e.authenticate(skewed); err != nil {
		t.Errorf("token expired within the leeway refused: %v", err)
	}
	early := sign(t, jwt.SigningMethodHS256, secret, mod(func(c *auth.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(20 * time.Second)) }))
	if _, err := e.authenticate(early); err != nil {
		t.Errorf("nbf 20 s ahead (within the leeway) refused: %v", err)
	}
}

// rsHeaderHSSignature builds a token whose header says RS256 but whose signature is an
// HMAC with our secret: what an attacker tries when hoping the verifier picks its key by
// the header.
func rsHeaderHSSignature(t *testing.T, c auth.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["alg"] = "RS256"
	unsigned, err := tok.SigningString()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := jwt.SigningMethodHS256.Sign(unsigned, secret)
	if err != nil {
		t.Fatal(err)
	}
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// tamper swaps the payload of a signed token, keeping header and signature.
func tamper(t *testing.T, token string, c auth.Claims) string {
	t.Helper()
	parts := strings.Split(token, ".")
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestAuthorizationHeaderForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	is := e.login(e.user(principal.RoleUser))
	for _, h := range []string{"Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token " + is.AccessToken, is.AccessToken} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", h)
		// A good cookie does not rescue a bad Authorization header.
		r.AddCookie(&http.Cookie{Name: auth.AccessCookie, Value: is.AccessToken})
		if _, err := e.svc.Authenticate(r); err == nil {
			t.Errorf("Authorization %q accepted", h)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "bearer "+is.AccessToken)
	if s, err := e.svc.Authenticate(r); err != nil || s.ViaCookie {
		t.Errorf("lower-case bearer: %v %+v", err, s)
	}
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: auth.AccessCookie, Value: is.AccessToken})
	if s, err := e.svc.Authenticate(r); err != nil || !s.ViaCookie || s.FamilyID != is.FamilyID {
		t.Errorf("cookie: %v %+v", err, s)
	}
	if _, err := e.svc.Authenticate(httptest.NewRequest(http.MethodGet, "/", nil)); err == nil {
		t.Error("no credentials accepted")
	}
}

// A service whose secret is too short (misconfiguration) refuses every token and issues none.
func TestShortSecretFailsClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *auth.Options) { o.Secret = []byte("short") })
	u := e.user(principal.RoleUser)
	if _, err := e.svc.Login(t.Context(), u.Email, u.Password, meta); err == nil {
		t.Fatal("login issued a token with a short secret")
	}
	tok := sign(t, jwt.SigningMethodHS256, []byte("short"), claimsAt(e.clock.Now(), u))
	if _, err := e.authenticate(tok); err == nil {
		t.Fatal("token accepted with a short secret")
	}
}
