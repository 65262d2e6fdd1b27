package enrol

import (
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/principal"
)

func caller(r *http.Request) (principal.Principal, error) {
	p, ok := principal.From(r.Context())
	if !ok || p.ClientID == "" {
		return p, apperr.ErrUnauthenticated
	}
	return p, nil
}

type createBody struct {
	Name             string `json:"name"`
	ExpiresInMinutes *int   `json:"expires_in_minutes"` // default 15, at most 60
	MaxUsage         *int   `json:"max_usage"`          // default 0: unlimited
}

// Created is the answer to a token creation: the only time the token is shown.
type Created struct {
	Token
	Secret string `json:"token"`
	// InstallCommand is the ready-to-paste Linux command (absent when PUBLIC_API_URL is
	// not configured).
	InstallCommand string `json:"install_command,omitempty"`
}

// InstallCommand is what an administrator pastes on a Linux machine. The token and URL
// hold no character a single-quoted shell word cannot (checked by config and WellFormed).
func InstallCommand(publicAPIURL, token string) string {
	if publicAPIURL == "" {
		return ""
	}
	return "curl -fsSL '" + strings.TrimSuffix(publicAPIURL, "/") + "/install.sh' | sudo sh -s -- '" + token + "'"
}

// HandleCreateToken is POST /api/install-tokens {name, expires_in_minutes, max_usage}.
func HandleCreateToken(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		p, err := caller(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		var b createBody
		if err := httpx.DecodeJSON(r, &b); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		req := CreateRequest{ClientID: p.ClientID, UserID: p.UserID, Name: strings.TrimSpace(b.Name), IP: httpx.ClientIP(r)}
		bad := map[string]string{}
		if !utf8.ValidString(req.Name) || utf8.RuneCountInString(req.Name) > MaxNameLen || strings.IndexFunc(req.Name, unicode.IsControl) >= 0 {
			bad["name"] = "at most 100 characters of text"
		}
		if b.ExpiresInMinutes != nil {
			if m := *b.ExpiresInMinutes; m < 1 || m > int(MaxTTL/time.Minute) {
				bad["expires_in_minutes"] = "must be between 1 and 60 (default 15)"
			} else {
				req.TTL = time.Duration(m) * time.Minute
			}
		}
		if b.MaxUsage != nil {
			if m := *b.MaxUsage; m < 0 || m > MaxUsage {
				bad["max_usage"] = "must be between 0 (unlimited) and 100000"
			} else {
				req.MaxUsage = m
			}
		}
		if len(bad) > 0 {
			httpx.WriteError(w, r, d.Logger, apperr.InvalidFields(bad))
			return
		}
		t, secret, err := CreateToken(r.Context(), d.Pool, req, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusCreated, Created{Token: t, Secret: secret, InstallCommand: InstallCommand(d.PublicAPIURL, secret)})
	})
}

// HandleListTokens is GET /api/install-tokens: the client's tokens, without secrets.
func HandleListTokens(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := caller(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		list, err := ListTokens(r.Context(), d.Pool, p.ClientID, d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"tokens": list})
	})
}

// HandleRevokeToken is DELETE /api/install-tokens/{id}: the token stops working at once.
func HandleRevokeToken(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := caller(r)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		id, ok := httpx.ParseID(r.PathValue("id"))
		if !ok {
			httpx.WriteError(w, r, d.Logger, ErrTokenNotFound)
			return
		}
		if err := RevokeToken(r.Context(), d.Pool, p.ClientID, id, p.UserID, httpx.ClientIP(r), d.Clock.Now()); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
