// Package agentreq is the singleton agent_requirements row: which operating systems and
// Windows builds the agent installer accepts.
package agentreq

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/principal"
)

// Bounds of the admin's input.
const (
	MaxMessageLen = 1000
	MaxBuild      = 1_000_000
)

// Requirements are the installer's OS prerequisites (spec "agent_requirements").
type Requirements struct {
	WindowsClientEnabled  bool      `json:"windows_client_enabled"`
	WindowsClientMinBuild int       `json:"windows_client_min_build"` // 0: no restriction
	WindowsServerEnabled  bool      `json:"windows_server_enabled"`
	WindowsServerMinBuild int       `json:"windows_server_min_build"` // 0: no restriction
	LinuxEnabled          bool      `json:"linux_enabled"`
	UnsupportedOSMessage  string    `json:"unsupported_os_message"`
	UpdatedAt             time.Time `json:"updated_at"`
}

// Get reads the requirements.
func Get(ctx context.Context, q db.Querier) (Requirements, error) {
	var r Requirements
	err := q.QueryRow(ctx, `
		SELECT windows_client_enabled, windows_client_min_build, windows_server_enabled, windows_server_min_build,
		       linux_enabled, unsupported_os_message, updated_at
		FROM agent_requirements WHERE singleton`).Scan(&r.WindowsClientEnabled, &r.WindowsClientMinBuild,
		&r.WindowsServerEnabled, &r.WindowsServerMinBuild, &r.LinuxEnabled, &r.UnsupportedOSMessage, &r.UpdatedAt)
	if err != nil {
		return Requirements{}, db.Error(err, "agentreq: read")
	}
	return r, nil
}

// Windows product types as installers report them (RtlGetVersion ProductType 1 = client,
// 2 and 3 = server).
const (
	WindowsClient = "client"
	WindowsServer = "server"
)

// Check tells whether an OS may enrol: nil, or a Forbidden error carrying the admin's
// unsupported-OS message. windowsType and build matter for Windows only.
func (r Requirements) Check(os, windowsType string, build int) error {
	var ok bool
	switch os {
	case "linux":
		ok = r.LinuxEnabled
	case "windows":
		switch windowsType {
		case WindowsClient:
			ok = r.WindowsClientEnabled && build >= r.WindowsClientMinBuild
		case WindowsServer:
			ok = r.WindowsServerEnabled && build >= r.WindowsServerMinBuild
		}
	}
	if ok {
		return nil
	}
	msg := strings.TrimSpace(r.UnsupportedOSMessage)
	if msg == "" {
		msg = "this operating system is not supported by the Optralis agent"
	}
	return apperr.New(apperr.Forbidden, "%s", msg)
}

// Validate checks an admin's update.
func (r Requirements) Validate() error {
	bad := map[string]string{}
	if r.WindowsClientMinBuild < 0 || r.WindowsClientMinBuild > MaxBuild {
		bad["windows_client_min_build"] = "must be between 0 and 1000000"
	}
	if r.WindowsServerMinBuild < 0 || r.WindowsServerMinBuild > MaxBuild {
		bad["windows_server_min_build"] = "must be between 0 and 1000000"
	}
	m := r.UnsupportedOSMessage
	switch {
	case !utf8.ValidString(m):
		bad["unsupported_os_message"] = "must be UTF-8 text"
	case utf8.RuneCountInString(m) > MaxMessageLen:
		bad["unsupported_os_message"] = "at most 1000 characters"
	case strings.IndexFunc(m, func(c rune) bool { return unicode.IsControl(c) && c != '\n' }) >= 0:
		bad["unsupported_os_message"] = "must not contain control characters other than line breaks"
	}
	if len(bad) > 0 {
		return apperr.InvalidFields(bad)
	}
	return nil
}

// Update replaces the requirements and audits the change.
func Update(ctx context.Context, pool *pgxpool.Pool, r Requirements, userID, ip string, now time.Time) (Requirements, error) {
	r.UnsupportedOSMessage = strings.TrimSpace(r.UnsupportedOSMessage)
	if err := r.Validate(); err != nil {
		return Requirements{}, err
	}
	err := db.InTxAt(ctx, pool, now, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `
			UPDATE agent_requirements SET windows_client_enabled = $1, windows_client_min_build = $2,
			       windows_server_enabled = $3, windows_server_min_build = $4, linux_enabled = $5,
			       unsupported_os_message = $6, updated_at = $7
			WHERE singleton`, r.WindowsClientEnabled, r.WindowsClientMinBuild, r.WindowsServerEnabled,
			r.WindowsServerMinBuild, r.LinuxEnabled, r.UnsupportedOSMessage, tx.Now); err != nil {
			return db.Error(err, "agentreq: update")
		}
		return audit.Log(ctx, tx, tx.Now, audit.Entry{UserID: userID, IP: ip, Action: "agent_requirements_updated", Details: map[string]any{
			"windows_client_enabled": r.WindowsClientEnabled, "windows_client_min_build": r.WindowsClientMinBuild,
			"windows_server_enabled": r.WindowsServerEnabled, "windows_server_min_build": r.WindowsServerMinBuild,
			"linux_enabled": r.LinuxEnabled,
		}})
	})
	if err != nil {
		return Requirements{}, err
	}
	return Get(ctx, pool)
}

// Deps are what the handlers need.
type Deps struct {
	Pool   *pgxpool.Pool
	Clock  clock.Clock
	Logger *slog.Logger
}

// HandleGet serves the requirements: GET /agent/requirements (public, for installers) and
// GET /api/admin/agent-requirements.
func HandleGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := Get(r.Context(), d.Pool)
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, req)
	})
}

// update is the PUT body: every field required, so a partial body cannot silently reset
// the others to false or 0.
type update struct {
	WindowsClientEnabled  *bool   `json:"windows_client_enabled"`
	WindowsClientMinBuild *int    `json:"windows_client_min_build"`
	WindowsServerEnabled  *bool   `json:"windows_server_enabled"`
	WindowsServerMinBuild *int    `json:"windows_server_min_build"`
	LinuxEnabled          *bool   `json:"linux_enabled"`
	UnsupportedOSMessage  *string `json:"unsupported_os_message"`
}

// HandlePut is PUT /api/admin/agent-requirements (platform admins).
func HandlePut(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := principal.From(r.Context())
		var u update
		if err := httpx.DecodeJSON(r, &u); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		missing := map[string]string{}
		for name, v := range map[string]bool{
			"windows_client_enabled": u.WindowsClientEnabled == nil, "windows_client_min_build": u.WindowsClientMinBuild == nil,
			"windows_server_enabled": u.WindowsServerEnabled == nil, "windows_server_min_build": u.WindowsServerMinBuild == nil,
			"linux_enabled": u.LinuxEnabled == nil, "unsupported_os_message": u.UnsupportedOSMessage == nil,
		} {
			if v {
				missing[name] = "required"
			}
		}
		if len(missing) > 0 {
			httpx.WriteError(w, r, d.Logger, apperr.InvalidFields(missing))
			return
		}
		out, err := Update(r.Context(), d.Pool, Requirements{
			WindowsClientEnabled: *u.WindowsClientEnabled, WindowsClientMinBuild: *u.WindowsClientMinBuild,
			WindowsServerEnabled: *u.WindowsServerEnabled, WindowsServerMinBuild: *u.WindowsServerMinBuild,
			LinuxEnabled: *u.LinuxEnabled, UnsupportedOSMessage: *u.UnsupportedOSMessage,
		}, p.UserID, httpx.ClientIP(r), d.Clock.Now())
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, out)
	})
}
