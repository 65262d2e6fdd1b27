package auth

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/principal"
)

// Cookie names and paths (spec "HttpOnly Cookies & CSRF").
const (
	AccessCookie  = "optralis_access"
	RefreshCookie = "optralis_refresh"
	CSRFCookie    = "optralis_csrf"
	CSRFHeader    = "X-CSRF-Token"
	RefreshPath   = "/api/auth"
)

// Session is a verified access token.
type Session struct {
	UserID    string
	ClientID  string
	Role      string
	Email     string
	FamilyID  string
	JTI       string
	ExpiresAt time.Time
	// ViaCookie: the token came from the access cookie (CSRF applies), not a Bearer header.
	ViaCookie              bool
	PasswordChangeRequired bool
}

// Principal is who the session belongs to.
func (s Session) Principal() principal.Principal {
	return principal.Principal{UserID: s.UserID, ClientID: s.ClientID, Role: s.Role, Email: s.Email}
}

type sessionKey struct{}

// WithSession returns a context carrying the session and its principal. Only the guard
// calls it, after Authenticate.
func WithSession(ctx context.Context, s Session) context.Context {
	return principal.With(context.WithValue(ctx, sessionKey{}, s), s.Principal())
}

// SessionFrom returns the request's verified session.
func SessionFrom(ctx context.Context) (Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(Session)
	return s, ok && s.UserID != ""
}

// Authenticate verifies the request's access token — the Authorization Bearer header when
// present (then the cookie is ignored), otherwise the access cookie — and checks the
// blacklist. Every refusal is the same generic 401; the reason goes to the log.
func (s *Service) Authenticate(r *http.Request) (Session, error) {
	ctx := r.Context()
	raw, viaCookie := "", false
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return Session{}, apperr.ErrUnauthenticated
		}
		raw = strings.TrimSpace(tok)
	} else if c, err := r.Cookie(AccessCookie); err == nil && c.Value != "" {
		raw, viaCookie = c.Value, true
	} else {
		return Session{}, apperr.ErrUnauthenticated
	}
	c, err := s.parseAccess(raw)
	if err != nil {
		s.logger.InfoContext(ctx, "auth: access token refused", "reason", err.Error())
		return Session{}, apperr.ErrUnauthenticated
	}
	now := s.clock.Now()
	black, err := s.isBlacklisted(ctx, c.ID, c.SessionID, now)
	if err != nil {
		// Neither Redis nor the database can say: refuse (fail closed), as unavailable.
		s.logger.ErrorContext(ctx, "auth: blacklist unavailable", "error", err.Error())
		return Session{}, apperr.New(apperr.Unavailable, "authentication is temporarily unavailable")
	}
	if black {
		s.logger.InfoContext(ctx, "auth: access token refused", "reason", "blacklisted", "user_id", c.Subject)
		return Session{}, apperr.ErrUnauthenticated
	}
	return Session{
		UserID: c.Subject, ClientID: c.ClientID, Role: c.Role, Email: c.Email,
		FamilyID: c.SessionID, JTI: c.ID, ExpiresAt: c.ExpiresAt.Time, ViaCookie: viaCookie,
		PasswordChangeRequired: c.MustChange || !now.Before(time.Unix(c.PasswordExpires, 0)),
	}, nil
}

var errCSRF = apperr.New(apperr.Forbidden, "missing or invalid CSRF token (send the optralis_csrf cookie's value in X-CSRF-Token)")

// safeMethod: no state change, no CSRF check.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// CheckCSRF enforces the double-submit check on unsafe methods of a cookie-authenticated
// request: the X-CSRF-Token header must equal the optralis_csrf cookie and the session's
// token, compared in constant time. Bearer requests are exempt: a browser never attaches
// that header on its own, so a forged cross-site request cannot carry it.
func (s *Service) CheckCSRF(r *http.Request, sess Session) error {
	if !sess.ViaCookie || safeMethod(r.Method) {
		return nil
	}
	return s.checkCSRF(r, sess.FamilyID)
}

func (s *Service) checkCSRF(r *http.Request, familyID string) error {
	header := r.Header.Get(CSRFHeader)
	cookie, err := r.Cookie(CSRFCookie)
	if header == "" || err != nil {
		return errCSRF
	}
	want := s.CSRFToken(familyID)
	okCookie := subtle.ConstantTimeCompare([]byte(header), []byte(cookie.Value))
	okSession := subtle.ConstantTimeCompare([]byte(header), []byte(want))
	if okCookie&okSession != 1 {
		return errCSRF
	}
	return nil
}

func (s *Service) cookie(name, value, path string, maxAge time.Duration, httpOnly bool) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: httpOnly, Secure: s.secure, SameSite: http.SameSiteStrictMode}
	if value == "" {
		c.MaxAge = -1 // delete
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

// setCookies sets the session's cookies: access (HttpOnly, /), refresh (HttpOnly,
// /api/auth) when a refresh token was issued, and CSRF (readable by scripts, /).
func (s *Service) setCookies(w http.ResponseWriter, is Issued) {
	issued := is.AccessClaims.IssuedAt.Time
	http.SetCookie(w, s.cookie(AccessCookie, is.AccessToken, "/", AccessTTL, true))
	if is.RefreshToken != "" {
		life := is.RefreshExpiresAt.Sub(issued)
		http.SetCookie(w, s.cookie(RefreshCookie, is.RefreshToken, RefreshPath, life, true))
		http.SetCookie(w, s.cookie(CSRFCookie, is.CSRFToken, "/", life, false))
	}
}

// clearCookies deletes the session's cookies.
func (s *Service) clearCookies(w http.ResponseWriter) {
	http.SetCookie(w, s.cookie(AccessCookie, "", "/", 0, true))
	http.SetCookie(w, s.cookie(RefreshCookie, "", RefreshPath, 0, true))
	http.SetCookie(w, s.cookie(CSRFCookie, "", "/", 0, false))
}
