package auth

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/ratelimit"
	"github.com/optralis/optralis/internal/validate"
)

// Rate limit buckets. Every request to login, forgot and reset counts (5 per 15 minutes
// per IP, each endpoint its own bucket, counted before any work so parallel bursts cannot
// slip through). Refresh counts only failures: a valid refresh token is 256 random bits,
// and counting successes would log out an office of users behind one NAT address.
// Password change counts every attempt per user (it checks the current password).
const (
	bucketLogin    = "login:"
	bucketRefresh  = "refresh:"
	bucketForgot   = "forgot:"
	bucketReset    = "reset:"
	bucketPassword = "password:"
)

func meta(r *http.Request) Meta { return Meta{IP: httpx.ClientIP(r), UserAgent: r.UserAgent()} }

func rateLimited(d ratelimit.Decision) error {
	e := apperr.New(apperr.RateLimited, "too many attempts; try again later")
	e.RetryAfter = ratelimit.RetryAfterSeconds(d.RetryAfter)
	return e
}

func (s *Service) allow(w http.ResponseWriter, r *http.Request, key string) bool {
	if d := s.limiter.Allow(r.Context(), key, AttemptLimit); !d.Allowed {
		httpx.WriteError(w, r, s.logger, rateLimited(d))
		return false
	}
	return true
}

// UserView is a user as the API shows it.
type UserView struct {
	ID          string     `json:"id"`
	Email       string     `json:"email"`
	Name        string     `json:"name"`
	Role        string     `json:"role"`
	ClientID    *string    `json:"client_id"`
	LastLoginAt *time.Time `json:"last_login_at"`
}

func userView(u User) UserView {
	v := UserView{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, LastLoginAt: u.LastLoginAt}
	if u.ClientID != "" {
		v.ClientID = &u.ClientID
	}
	return v
}

type tokenResponse struct {
	AccessToken            string    `json:"access_token"`
	TokenType              string    `json:"token_type"`
	ExpiresIn              int       `json:"expires_in"`
	RefreshToken           string    `json:"refresh_token,omitempty"`
	RefreshExpiresIn       int       `json:"refresh_expires_in,omitempty"`
	CSRFToken              string    `json:"csrf_token"`
	PasswordChangeRequired bool      `json:"password_change_required"`
	PasswordExpiresAt      time.Time `json:"password_expires_at"`
	User                   UserView  `json:"user"`
}

func (s *Service) tokens(is Issued) tokenResponse {
	out := tokenResponse{
		AccessToken: is.AccessToken, TokenType: "Bearer", ExpiresIn: int(AccessTTL / time.Second),
		CSRFToken: is.CSRFToken, PasswordChangeRequired: is.PasswordChangeRequired,
		PasswordExpiresAt: is.User.PasswordExpiresAt(), User: userView(is.User),
	}
	if is.RefreshToken != "" {
		out.RefreshToken = is.RefreshToken
		out.RefreshExpiresIn = int(is.RefreshExpiresAt.Sub(is.AccessClaims.IssuedAt.Time) / time.Second)
	}
	return out
}

// HandleLogin is POST /api/auth/login {email, password}: cookies, and the tokens in the
// body for Bearer clients.
func HandleLogin(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := meta(r)
		if !s.allow(w, r, bucketLogin+m.IP) {
			return
		}
		var in struct {
			Email    string `json:"email"`
			Password string `json:"password"`
		}
		if err := httpx.DecodeJSON(r, &in); err != nil {
			httpx.WriteError(w, r, s.logger, err)
			return
		}
		if in.Email == "" || in.Password == "" {
			httpx.WriteError(w, r, s.logger, apperr.InvalidFields(map[string]string{"email": "required", "password": "required"}))
			return
		}
		if !validate.Text(in.Email) {
			// No account can have such an address: saying so reveals nothing.
			httpx.WriteError(w, r, s.logger, errEmailBytes())
			return
		}
		is, err := s.Login(r.Context(), in.Email, in.Password, m)
		if err != nil {
			httpx.WriteError(w, r, s.logger, err)
			return
		}
		s.setCookies(w, is)
		httpx.WriteJSON(w, http.StatusOK, s.tokens(is))
	})
}

// HandleRefresh is POST /api/auth/refresh: the refresh token from the body
// {"refresh_token": ...} (Bearer clients) or else the refresh cookie, which then needs the
// CSRF header. Rotates the token; see Service.Refresh.
func HandleRefresh(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := meta(r)
		key := bucketRefresh + m.IP
		if d := s.limiter.Peek(r.Context(), key, AttemptLimit); !d.Allowed {
			httpx.WriteError(w, r, s.logger, rateLimited(d))
			return
		}
		token, fromCookie, err := refreshTokenFrom(r)
		if err != nil {
			httpx.WriteError(w, r, s.logger, err)
			return
		}
		var verify func(string) error
		if fromCookie {
			verify = func(familyID string) error { return s.checkCSRF(r, familyID) }
		}
		is, err := s.Refresh(r.Context(), token, m, verify)
		if err != nil {
			if e, ok := apperr.As(err); ok && e.Code == apperr.Unauthenticated {
				s.limiter.Allow(r.Context(), key, AttemptLimit)
				s.clearCookies(w)
			}
			httpx.WriteError(w, r, s.logger, err)
			return
		}
		s.setCookies(w, is)
		httpx.WriteJSON(w, http.StatusOK, s.tokens(is))
	})
}

// refreshTokenFrom reads the body's refresh_token, or the cookie when the body is empty.
func refreshTokenFrom(r *http.Request) (token string, fromCookie bool, err error) {
	body, err := httpx.ReadBody(r.Body, 0)
	if err != nil {
		return "", false, err
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
			return "", false, apperr.New(apperr.UnsupportedMedia, "Content-Type must be application/json")
		}
		var in struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := httpx.DecodeJSONBytes(body, &in); err != nil {
			return "", false, err
		}
		if in.RefreshToken != "" {
			return in.RefreshToken, false, nil
		}
	}
	if c, err := r.Cookie(RefreshCookie); err == nil && c.Value != "" {
		return c.Value, true, nil
	}
	return "", false, errBadRefresh
}

// HandleLogout is POST /api/auth/logout (authenticated): ends the session and clears the
// cookies. 204.
func HandleLogout(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := SessionFrom(r.Context())
		if !ok {
			httpx.WriteError(w, r, s.logger, apperr.ErrUnauthenticated)
			return
		}
		if err := s.Logout(r.Context(), sess, meta(r)); err != nil {
			httpx.WriteError(w, r, s.logger, err)
			return
		}
		s.clearCookies(w)
		w.WriteHeader(http.StatusNoContent)
	})
}

// HandleChangePassword is POST /api/auth/password {current_password, new_password}
// (authenticated, allowed while a change is required). Answers a fresh access token.
func HandleChangePassword(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := SessionFrom(r.Context())
		if !ok {
			httpx.WriteError(w, r, s.logger, apperr.ErrUnauthenticated)
			return
		}
		if !s.allow(w, r, bucketPassword+sess.UserID) {
			return
		}
		var in struct {
			Current string `json:"current_password"`
			New     string `json:"new_password"`
		}
		if err := httpx.DecodeJSON(r, &in); err != nil {
			httpx.WriteError(w, r, s.logger, err)
			return
		}
		is, err := s.ChangePassword(r.Context(), sess, in.Current, in.New, meta(r))
		if err != nil {
			httpx.WriteError(w, r, s.logger, err)
			return
		}
		s.setCookies(w, is)
		httpx.WriteJSON(w, http.StatusOK, s.tokens(is))
	})
}

type messageResponse struct {
	Message string `json:"message"`
}

// errEmailBytes refuses an email with NUL, control characters or invalid UTF-8 (login,
// forgot password): PostgreSQL cannot even compare such text, and no account has it.
func errEmailBytes() error {
	return apperr.InvalidFields(map[string]string{"email": "must be valid UTF-8 without control characters"})
}

// ForgotAnswer is the one answer of POST /api/auth/password/forgot.
const ForgotAnswer = "If an account exists for this address, a password reset link has been sent to it."

// HandleForgotPassword is POST /api/auth/password/forgot {email}: always 202 with the same
// body, and never faster than the service's minimum duration, so neither the answer nor
// its timing says whether the email has an account.
func HandleForgotPassword(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.sleeper.Now()
		m := meta(r)
		if !s.allow(w, r, bucketForgot+m.IP) {
			return
		}
		var in struct {
			Email string `json:"email"`
		}
		if err := httpx.DecodeJSON(r, &in); err != nil {
			httpx.WriteError(w, r, s.logger, err)
			return
		}
		if in.Email == "" {
			httpx.WriteError(w, r, s.logger, apperr.InvalidFields(map[string]string{"email": "required"}))
			return
		}
		if !validate.Text(in.Email) {
			httpx.WriteError(w, r, s.logger, errEmailBytes())
			return
		}
		err := s.RequestReset(r.Context(), in.Email, m)
		s.sleeper.Sleep(r.Context(), start.Add(s.forgotMin).Sub(s.sleeper.Now()))
		if err != nil {
			httpx.WriteError(w, r, s.logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusAccepted, messageResponse{ForgotAnswer})
	})
}

// HandleResetPassword is POST /api/auth/password/reset {token, new_password}.
func HandleResetPassword(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := meta(r)
		if !s.allow(w, r, bucketReset+m.IP) {
			return
		}
		var in struct {
			Token string `json:"token"`
			New   string `json:"new_password"`
		}
		if err := httpx.DecodeJSON(r, &in); err != nil {
			httpx.WriteError(w, r, s.logger, err)
			return
		}
		if err := s.ResetPassword(r.Context(), in.Token, in.New, m); err != nil {
			httpx.WriteError(w, r, s.logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, messageResponse{"Your password has been changed. Sign in with the new password."})
	})
}

type passwordState struct {
	MustChange      bool      `json:"must_change"`
	ChangedAt       time.Time `json:"changed_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	Expired         bool      `json:"expired"`
	DaysUntilExpiry int       `json:"days_until_expiry"`
	ChangeRequired  bool      `json:"change_required"`
}

type meResponse struct {
	User     UserView      `json:"user"`
	Client   *clientView   `json:"client"`
	Role     string        `json:"role"`
	Password passwordState `json:"password"`
}

// HandleMe is GET /api/auth/me (authenticated, allowed while a change is required): the
// user, their client, role and password expiry state, read fresh from the database.
func HandleMe(s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, ok := SessionFrom(r.Context())
		if !ok {
			httpx.WriteError(w, r, s.logger, apperr.ErrUnauthenticated)
			return
		}
		u, err := userByID(r.Context(), s.pool, sess.UserID)
		if errors.Is(err, ErrNotFound) || (err == nil && !u.Active) {
			httpx.WriteError(w, r, s.logger, apperr.ErrUnauthenticated)
			return
		}
		if err != nil {
			httpx.WriteError(w, r, s.logger, err)
			return
		}
		now := s.clock.Now()
		out := meResponse{User: userView(u), Role: u.Role, Password: passwordState{
			MustChange: u.MustChangePassword, ChangedAt: u.PasswordChangedAt, ExpiresAt: u.PasswordExpiresAt(),
			Expired: !now.Before(u.PasswordExpiresAt()), ChangeRequired: u.PasswordChangeRequired(now),
			DaysUntilExpiry: max(0, int(u.PasswordExpiresAt().Sub(now)/(24*time.Hour))),
		}}
		if u.ClientID != "" {
			c, err := clientByID(r.Context(), s.pool, u.ClientID)
			if err != nil {
				httpx.WriteError(w, r, s.logger, err)
				return
			}
			out.Client = &c
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	})
}
