package enrol_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/enrol"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
	"github.com/optralis/optralis/internal/tokenhash"
)

var urlSafe44 = regexp.MustCompile(`^[A-Za-z0-9_-]{43}=$`)

func TestTokenFormat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		_, secret := e.token(0, 0)
		if !urlSafe44.MatchString(secret) || !enrol.WellFormed(secret) || seen[secret] {
			t.Fatalf("token %q: not 44 URL-safe base64 characters, or repeated", secret)
		}
		seen[secret] = true
		if h := tokenhash.Sum(secret); len(h) != 64 || strings.ToLower(h) != h {
			t.Fatalf("hash %q", h)
		}
	}
	for _, bad := range []string{"", strings.Repeat("A", 43), strings.Repeat("A", 44), strings.Repeat("A", 42) + "==", strings.Repeat("+", 43) + "="} {
		if enrol.WellFormed(bad) {
			t.Errorf("WellFormed(%q)", bad)
		}
	}
}

type created struct {
	enrol.Token
	Secret         string `json:"token"`
	InstallCommand string `json:"install_command"`
	Error          struct {
		Code   string            `json:"code"`
		Fields map[string]string `json:"fields"`
	} `json:"error"`
}

func TestCreateToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.do("POST", "/api/install-tokens", `{"name":"  Paris office  "}`, &e.user)
	var c created
	a.decode(t, &c)
	if a.Code != 201 || a.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %s", a.Code, a.Body)
	}
	if c.Name != "Paris office" || !c.ExpiresAt.Equal(t0.Add(15*time.Minute)) || c.MaxUsage != 0 || c.UsageCount != 0 || c.Status != "active" {
		t.Fatalf("defaults: %+v", c.Token)
	}
	if !enrol.WellFormed(c.Secret) {
		t.Fatalf("token %q", c.Secret)
	}
	if want := "curl -fsSL 'https://api.example.test/install.sh' | sudo sh -s -- '" + c.Secret + "'"; c.InstallCommand != want {
		t.Fatalf("install command %q, want %q", c.InstallCommand, want)
	}
	// Only the hash is stored; the token itself is nowhere in the database.
	if n := e.count(`SELECT count(*) FROM install_tokens WHERE id = $1 AND token_hash = $2 AND client_id = $3 AND created_by = $4`,
		c.ID, tokenhash.Sum(c.Secret), e.clientID, e.user.UserID); n != 1 {
		t.Fatal("stored row")
	}
	if n := e.count(`SELECT count(*) FROM install_tokens t WHERE t::text LIKE '%' || $1 || '%'`, c.Secret); n != 0 {
		t.Fatal("the token is stored in clear")
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'install_token_created' AND user_id = $1 AND details->>'token_id' = $2
		AND details::text NOT LIKE '%' || $3 || '%'`, e.user.UserID, c.ID, c.Secret); n != 1 {
		t.Fatal("audit entry missing or carrying the token")
	}

	a = e.do("POST", "/api/install-tokens", `{"expires_in_minutes":60,"max_usage":5}`, &e.user)
	a.decode(t, &c)
	if a.Code != 201 || !c.ExpiresAt.Equal(t0.Add(time.Hour)) || c.MaxUsage != 5 {
		t.Fatalf("60 minutes, 5 uses: %d %s", a.Code, a.Body)
	}

	for name, tc := range map[string]struct{ body, field string }{
		"61 minutes":        {`{"expires_in_minutes":61}`, "expires_in_minutes"},
		"0 minutes":         {`{"expires_in_minutes":0}`, "expires_in_minutes"},
		"negative minutes":  {`{"expires_in_minutes":-5}`, "expires_in_minutes"},
		"negative usage":    {`{"max_usage":-1}`, "max_usage"},
		"huge usage":        {`{"max_usage":100001}`, "max_usage"},
		"name too long":     {`{"name":"` + strings.Repeat("é", 101) + `"}`, "name"},
		"name control char": {`{"name":"a\tb"}`, "name"},
	} {
		a := e.do("POST", "/api/install-tokens", tc.body, &e.user)
		var c created
		a.decode(t, &c)
		if a.Code != 400 || c.Error.Fields[tc.field] == "" {
			t.Errorf("%s: %d %s", name, a.Code, a.Body)
		}
	}
	for name, body := range map[string]string{"unknown field": `{"ttl":5}`, "minutes as text": `{"expires_in_minutes":"15"}`, "empty": ``} {
		if a := e.do("POST", "/api/install-tokens", body, &e.user); a.Code != 400 {
			t.Errorf("%s: %d %s", name, a.Code, a.Body)
		}
	}
	if a := e.do("POST", "/api/install-tokens", `{}`, nil); a.Code != 401 {
		t.Errorf("without principal: %d", a.Code)
	}
	if a := e.do("POST", "/api/install-tokens", `{}`, &principal.Principal{UserID: e.user.UserID, Role: principal.RolePlatformAdmin}); a.Code != 401 {
		t.Errorf("a caller without client: %d", a.Code)
	}
	if n := e.count(`SELECT count(*) FROM install_tokens`); n != 2 {
		t.Fatalf("%d tokens stored, want 2", n)
	}
}

func TestListAndRevokeTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	active, activeSecret := e.token(0, 0)
	expired, _ := e.token(time.Minute, 0)
	used, usedSecret := e.token(0, 1)
	if a, _ := e.bootstrap(bootstrapBody(t, usedSecret, csrFor(t, newKey(t), nil), nil)); a.Code != 201 {
		t.Fatalf("%d %s", a.Code, a.Body)
	}
	revoked, _ := e.token(0, 0)
	e.clock.Advance(2 * time.Minute)

	// Another client's token: neither listed nor revocable.
	var otherID string
	other := e.newUser(testenv.Client(t, e.pool, "Pro"))
	if a := e.do("POST", "/api/install-tokens", `{"name":"theirs"}`, &other); a.Code != 201 {
		t.Fatalf("%d %s", a.Code, a.Body)
	} else {
		var c created
		a.decode(t, &c)
		otherID = c.ID
	}

	if a := e.do("DELETE", "/api/install-tokens/"+revoked.ID, "", &e.user); a.Code != 204 {
		t.Fatalf("revoke: %d %s", a.Code, a.Body)
	}
	if a := e.do("DELETE", "/api/install-tokens/"+revoked.ID, "", &e.user); a.Code != 204 {
		t.Fatalf("revoke again: %d %s", a.Code, a.Body)
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'install_token_revoked' AND details->>'token_id' = $1`, revoked.ID); n != 1 {
		t.Fatalf("%d revocation entries, want 1", n)
	}
	for name, id := range map[string]string{"other client's": otherID, "unknown": "00000000-0000-0000-0000-000000000007", "malformed": "abc"} {
		if a := e.do("DELETE", "/api/install-tokens/"+id, "", &e.user); a.Code != 404 {
			t.Errorf("revoke %s token: %d %s", name, a.Code, a.Body)
		}
	}
	if n := e.count(`SELECT count(*) FROM install_tokens WHERE id = $1 AND revoked_at IS NULL`, otherID); n != 1 {
		t.Fatal("another client's token was revoked")
	}

	a := e.do("GET", "/api/install-tokens", "", &e.user)
	var list struct{ Tokens []enrol.Token }
	a.decode(t, &list)
	if a.Code != 200 || len(list.Tokens) != 4 {
		t.Fatalf("list: %d %s", a.Code, a.Body)
	}
	status := map[string]string{}
	for _, tk := range list.Tokens {
		status[tk.ID] = tk.Status
	}
	want := map[string]string{active.ID: "active", expired.ID: "expired", used.ID: "exhausted", revoked.ID: "revoked"}
	for id, s := range want {
		if status[id] != s {
			t.Errorf("token %s: status %q, want %q", id, status[id], s)
		}
	}
	var hash string
	if err := e.pool.QueryRow(ctx, `SELECT token_hash FROM install_tokens WHERE id = $1`, active.ID).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(a.Body, activeSecret) || strings.Contains(a.Body, hash) || strings.Contains(a.Body, "token_hash") || strings.Contains(a.Body, otherID) {
		t.Fatalf("the list shows a secret, a hash or another client's token: %s", a.Body)
	}
}

func TestCleanupExpiredTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	old, _ := e.token(time.Minute, 0)  // expires t0+1m: expired 24 h 29 min ago below
	recent, _ := e.token(time.Hour, 0) // expires t0+1h: expired 23 h 30 min ago below
	e.clock.Advance(24*time.Hour + 30*time.Minute)
	fresh, _ := e.token(0, 0)
	n, err := enrol.CleanupExpiredTokens(context.Background(), e.pool, e.clock.Now())
	if err != nil || n != 1 {
		t.Fatalf("deleted %d, %v; want 1 (expired more than 24 h ago)", n, err)
	}
	for id, keep := range map[string]bool{old.ID: false, recent.ID: true, fresh.ID: true} {
		if got := e.count(`SELECT count(*) FROM install_tokens WHERE id = $1`, id) == 1; got != keep {
			t.Errorf("token %s kept=%v, want %v", id, got, keep)
		}
	}
}
