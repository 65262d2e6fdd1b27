package agentreq_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/agentreq"
	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestDefaultsAreTheSpecs(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	r, err := agentreq.Get(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	if !r.WindowsClientEnabled || r.WindowsClientMinBuild != 0 || !r.WindowsServerEnabled || r.WindowsServerMinBuild != 0 || !r.LinuxEnabled || r.UnsupportedOSMessage != "" {
		t.Fatalf("defaults %+v", r)
	}
}

func TestCheck(t *testing.T) {
	r := agentreq.Requirements{WindowsClientEnabled: true, WindowsClientMinBuild: 19045, WindowsServerEnabled: false, LinuxEnabled: true,
		UnsupportedOSMessage: "Upgrade to Windows 10 22H2."}
	cases := []struct {
		os, typ string
		build   int
		ok      bool
	}{
		{"linux", "", 0, true},
		{"windows", "client", 19045, true},
		{"windows", "client", 19044, false},
		{"windows", "server", 26100, false},
		{"windows", "", 26100, false},
		{"macos", "", 0, false},
	}
	for _, c := range cases {
		err := r.Check(c.os, c.typ, c.build)
		if (err == nil) != c.ok {
			t.Errorf("%s %s %d: %v", c.os, c.typ, c.build, err)
		}
		if err != nil {
			if ae, ok := apperr.As(err); !ok || ae.Code != apperr.Forbidden || ae.Message != "Upgrade to Windows 10 22H2." {
				t.Errorf("refusal %v", err)
			}
		}
	}
	r.UnsupportedOSMessage = ""
	if err := r.Check("macos", "", 0); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("default message: %v", err)
	}
}

func TestHandlers(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	now := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	d := agentreq.Deps{Pool: pool, Clock: clock.Fixed(now), Logger: testenv.Discard()}
	var admin string
	if err := pool.QueryRow(context.Background(), `INSERT INTO users (email, password_hash, role) VALUES ('root@example.com', 'x', 'platform_admin') RETURNING id`).Scan(&admin); err != nil {
		t.Fatal(err)
	}
	put := func(body string) (int, string) {
		r := httptest.NewRequest("PUT", "/api/admin/agent-requirements", strings.NewReader(body))
		r = r.WithContext(principal.With(r.Context(), principal.Principal{UserID: admin, Role: principal.RolePlatformAdmin}))
		w := httptest.NewRecorder()
		agentreq.HandlePut(d).ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	full := func(mod func(m map[string]any)) string {
		m := map[string]any{"windows_client_enabled": true, "windows_client_min_build": 17763, "windows_server_enabled": false,
			"windows_server_min_build": 20348, "linux_enabled": false, "unsupported_os_message": "  Linux support is coming.\nStay tuned.  "}
		if mod != nil {
			mod(m)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	code, body := put(full(nil))
	var got agentreq.Requirements
	_ = json.Unmarshal([]byte(body), &got)
	if code != 200 || got.WindowsClientMinBuild != 17763 || got.WindowsServerEnabled || got.LinuxEnabled ||
		got.UnsupportedOSMessage != "Linux support is coming.\nStay tuned." || !got.UpdatedAt.Equal(now) {
		t.Fatalf("put: %d %s", code, body)
	}
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM activity_logs WHERE action = 'agent_requirements_updated' AND user_id = $1`, admin).Scan(&n); err != nil || n != 1 {
		t.Fatalf("audit: %d %v", n, err)
	}

	for name, body := range map[string]string{
		"negative build":   full(func(m map[string]any) { m["windows_client_min_build"] = -1 }),
		"huge build":       full(func(m map[string]any) { m["windows_server_min_build"] = 1_000_001 }),
		"message too long": full(func(m map[string]any) { m["unsupported_os_message"] = strings.Repeat("x", 1001) }),
		"control char":     full(func(m map[string]any) { m["unsupported_os_message"] = "a\x07b" }),
		"missing field":    full(func(m map[string]any) { delete(m, "linux_enabled") }),
		"unknown field":    full(func(m map[string]any) { m["macos_enabled"] = true }),
		"build as text":    full(func(m map[string]any) { m["windows_client_min_build"] = "17763" }),
		"empty":            ``,
	} {
		if code, body := put(body); code != 400 {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}

	// The public read shows the stored values.
	w := httptest.NewRecorder()
	agentreq.HandleGet(d).ServeHTTP(w, httptest.NewRequest("GET", "/agent/requirements", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"windows_client_min_build":17763`) {
		t.Fatalf("get: %d %s", w.Code, w.Body.String())
	}
}
