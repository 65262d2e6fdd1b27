package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/clients"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

// withoutMail disables mail: invitations then answer their one-time link.
func withoutMail(o *auth.Options, _ *testDeps) { o.Mailer = nil }

// bearer signs the account in and returns its access token.
func (s *stack) bearer(a account) string {
	s.t.Helper()
	is, err := s.d.Auth.Login(context.Background(), a.Email, a.Password, auth.Meta{IP: "192.0.2.77"})
	if err != nil {
		s.t.Fatalf("login %s: %v", a.Email, err)
	}
	return is.AccessToken
}

// api calls the stack with a bearer token and decodes a JSON answer into out (when not nil).
func (s *stack) api(method, path, token, body string, out any) (int, string) {
	s.t.Helper()
	code, raw := call(s.h, method, path, token, body)
	if out != nil && code < 300 {
		if err := json.Unmarshal([]byte(raw), out); err != nil {
			s.t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
	return code, raw
}

type invited struct {
	User struct {
		ID, Email, Role string
		ClientID        string `json:"client_id"`
	} `json:"user"`
	Invitation struct {
		Sent      bool      `json:"sent"`
		ExpiresAt time.Time `json:"expires_at"`
		Link      string    `json:"link"`
		Token     string    `json:"token"`
		MailError string    `json:"mail_error"`
	} `json:"invitation"`
}

type clientView struct {
	clients.View
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Scheme+"://"+u.Host+u.Path != "https://dash.example.com/reset-password" || u.Query().Get("token") == "" {
		t.Fatalf("set-password link %q", link)
	}
	return u.Query().Get("token")
}

// A platform admin onboards a customer through HTTP only: creates the client, sees it
// listed with its licence usage, invites its first admin (mail disabled: the answer holds
// the link), who sets a password meeting the policy and signs in.
func TestOnboardingWithoutMail(t *testing.T) {
	t.Parallel()
	s := newStack(t, withoutMail)
	admin := s.bearer(s.account("", principal.RolePlatformAdmin))

	var c clientView
	code, raw := s.api("POST", "/api/admin/clients", admin,
		`{"name":"  Acme MSP ","license_tier":"Pro","license_expires_at":"2027-01-31T23:59:59+01:00","max_machines":40,"agent_channel":"beta"}`, &c)
	if code != 201 || c.Name != "Acme MSP" || c.LicenseTier != "Pro" || c.MaxMachines != 40 || !c.Active || c.AgentChannel != "beta" ||
		c.MetricsRetentionDays != 90 || c.LicenseExpiresAt == nil || !c.LicenseExpiresAt.Equal(time.Date(2027, 1, 31, 22, 59, 59, 0, time.UTC)) ||
		c.MachineCount != 0 || c.LicenseUsage == nil || *c.LicenseUsage != 0 || !c.CreatedAt.Equal(s.clock.Now()) {
		t.Fatalf("create: %d %s", code, raw)
	}
	testenv.Machine(t, s.d.Pool, c.ID, "acme-1")
	var list struct{ Clients []clientView }
	if code, raw := s.api("GET", "/api/admin/clients", admin, "", &list); code != 200 {
		t.Fatalf("list: %d %s", code, raw)
	}
	found := false
	for _, v := range list.Clients {
		if v.ID == c.ID {
			found = v.MachineCount == 1 && v.LicenseUsage != nil && *v.LicenseUsage == 1.0/40
		}
	}
	if !found {
		t.Fatalf("list: %+v", list)
	}
	// Defaults: only the name is required.
	var d clientView
	if code, raw := s.api("POST", "/api/admin/clients", admin, `{"name":"Tiny"}`, &d); code != 201 || d.LicenseTier != "Trial" ||
		d.MaxMachines != 5 || !d.Active || d.AgentChannel != "stable" || d.LicenseExpiresAt != nil {
		t.Fatalf("defaults: %d %s", code, raw)
	}

	var inv invited
	code, raw = s.api("POST", "/api/admin/clients/"+c.ID+"/users", admin, `{"email":"Boss@Acme.example","name":"Boss"}`, &inv)
	if code != 201 || inv.User.Role != "admin" || inv.User.ClientID != c.ID || inv.Invitation.Sent || inv.Invitation.Link == "" ||
		!inv.Invitation.ExpiresAt.Equal(s.clock.Now().Add(7*24*time.Hour)) {
		t.Fatalf("invite: %d %s", code, raw)
	}
	token := tokenOf(t, inv.Invitation.Link)
	if n := count(t, s, `SELECT count(*) FROM activity_logs WHERE details::text LIKE '%' || $1 || '%'`, token); n != 0 {
		t.Fatal("the invitation token reached the audit trail")
	}
	// The same email, in another case, is taken.
	if code, raw := s.api("POST", "/api/admin/clients/"+d.ID+"/users", admin, `{"email":"boss@acme.EXAMPLE"}`, nil); code != 409 {
		t.Fatalf("duplicate email: %d %s", code, raw)
	}
	// Before the password is set, nobody can sign in with anything.
	b := s.browser("192.0.2.31")
	if w := b.do("POST", "/api/auth/login", `{"email":"boss@acme.example","password":"`+pw+`"}`); w.Code != 401 {
		t.Fatalf("login before the invitation is used: %d", w.Code)
	}
	// The password policy applies; a refused attempt leaves the token usable.
	if w := b.do("POST", "/api/auth/password/reset", `{"token":"`+token+`","new_password":"short"}`); w.Code != 400 || !strings.Contains(w.Body.String(), "new_password") {
		t.Fatalf("weak password: %d %s", w.Code, w.Body.String())
	}
	if w := b.do("POST", "/api/auth/password/reset", `{"token":"`+token+`","new_password":"`+pw+`"}`); w.Code != 200 {
		t.Fatalf("set password: %d %s", w.Code, w.Body.String())
	}
	if w := b.do("POST", "/api/auth/password/reset", `{"token":"`+token+`","new_password":"Another-Password-2027"}`); w.Code != 400 {
		t.Fatalf("token used twice: %d %s", w.Code, w.Body.String())
	}
	tk := b.login(account{Email: "boss@acme.example", Password: pw})
	if tk.PasswordChangeRequired {
		t.Fatal("a password chosen through the invitation must not need changing")
	}
	if n := count(t, s, `SELECT count(*) FROM activity_logs WHERE action = 'invitation_accepted' AND user_id = $1`, inv.User.ID); n != 1 {
		t.Fatalf("%d invitation_accepted entries", n)
	}
	// The new admin manages the client: sees it, and themselves as an active admin.
	var own clientView
	if code, raw := s.api("GET", "/api/client", tk.AccessToken, "", &own); code != 200 || own.ID != c.ID || own.MachineCount != 1 ||
		own.EventsRetentionDays != 90 {
		t.Fatalf("own client: %d %s", code, raw)
	}
	var users struct {
		Users []struct{ ID, Status, Role string }
	}
	if code, raw := s.api("GET", "/api/users", tk.AccessToken, "", &users); code != 200 || len(users.Users) != 1 ||
		users.Users[0].Status != "active" || users.Users[0].Role != "admin" {
		t.Fatalf("users: %d %s", code, raw)
	}
	// Every change was audited with its actor and client.
	for _, action := range []string{clients.ActionCreated, clients.ActionInvited} {
		if n := count(t, s, `SELECT count(*) FROM activity_logs WHERE action = $1 AND client_id = $2 AND user_id IS NOT NULL`, action, c.ID); n != 1 {
			t.Errorf("%d %s entries", n, action)
		}
	}
}

// An invitation expires after 7 days; a reset link still after one hour.
func TestInvitationExpires(t *testing.T) {
	t.Parallel()
	s := newStack(t, withoutMail)
	admin := s.bearer(s.account("", principal.RolePlatformAdmin))
	client := testenv.Client(t, s.d.Pool, "Starter")
	var inv invited
	if code, raw := s.api("POST", "/api/admin/clients/"+client+"/users", admin, `{"email":"late@example.com"}`, &inv); code != 201 {
		t.Fatalf("invite: %d %s", code, raw)
	}
	s.clock.Advance(7*24*time.Hour - time.Second)
	// Still valid; the user lists as invited until then.
	a := s.account(client, principal.RoleAdmin)
	var users struct {
		Users []struct{ Email, Status string }
	}
	s.api("GET", "/api/users", s.bearer(a), "", &users)
	statuses := map[string]string{}
	for _, u := range users.Users {
		statuses[u.Email] = u.Status
	}
	if statuses["late@example.com"] != "invited" {
		t.Fatalf("statuses %v", statuses)
	}
	s.clock.Advance(time.Second)
	b := s.browser("192.0.2.32")
	if w := b.do("POST", "/api/auth/password/reset", `{"token":"`+tokenOf(t, inv.Invitation.Link)+`","new_password":"`+pw+`"}`); w.Code != 400 {
		t.Fatalf("expired invitation: %d %s", w.Code, w.Body.String())
	}
	s.api("GET", "/api/users", s.bearer(a), "", &users)
	for _, u := range users.Users {
		if u.Email == "late@example.com" && u.Status != "invitation_expired" {
			t.Fatalf("expired invitation lists as %s", u.Status)
		}
	}
	var reset string
	if err := s.d.Pool.QueryRow(context.Background(), `SELECT purpose FROM password_reset_tokens WHERE user_id = $1`, inv.User.ID).Scan(&reset); err != nil || reset != "invite" {
		t.Fatalf("stored purpose %q %v", reset, err)
	}
}

func count(t *testing.T, s *stack, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.d.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Every bad field is a 400 naming it; unknown or malformed ids are 404; nothing is 500.
func TestClientInputIsValidated(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.bearer(s.account("", principal.RolePlatformAdmin))
	client := testenv.Client(t, s.d.Pool, "Pro")
	for _, c := range []struct{ body, field string }{
		{`{"name":"   "}`, "name"},
		{`{"name":"` + strings.Repeat("x", 256) + `"}`, "name"},
		{`{"name":"a\u0007b"}`, "name"},
		{`{"name":5}`, "name"},
		{`{"license_tier":"Gold"}`, "license_tier"},
		{`{"license_tier":"pro"}`, "license_tier"},
		{`{"license_expires_at":"tomorrow"}`, "license_expires_at"},
		{`{"license_expires_at":"2027-01-31"}`, "license_expires_at"},
		{`{"max_machines":-1}`, "max_machines"},
		{`{"max_machines":1.5}`, "max_machines"},
		{`{"max_machines":"5"}`, "max_machines"},
		{`{"max_machines":1000001}`, "max_machines"},
		{`{"is_active":"no"}`, "is_active"},
		{`{"is_active":null}`, "is_active"},
		{`{"agent_channel":"Beta"}`, "agent_channel"},
		{`{"agent_channel":""}`, "agent_channel"},
		{`{"agent_channel":"a-very-long-channel-name"}`, "agent_channel"},
	} {
		for _, path := range []string{"/api/admin/clients/" + client} {
			code, raw := s.api("PATCH", path, admin, c.body, nil)
			var e struct {
				Error struct{ Fields map[string]string } `json:"error"`
			}
			_ = json.Unmarshal([]byte(raw), &e)
			if code != 400 || e.Error.Fields[c.field] == "" {
				t.Errorf("PATCH %s: %d %s, want 400 naming %s", c.body, code, raw, c.field)
			}
		}
	}
	for _, c := range []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/api/admin/clients", `{}`, 400},
		{"POST", "/api/admin/clients", `{"name":"x","colour":"red"}`, 400},
		{"POST", "/api/admin/clients", `[1]`, 400},
		{"PATCH", "/api/admin/clients/" + client, `{}`, 400},
		{"GET", "/api/admin/clients/not-a-uuid", ``, 404},
		{"GET", "/api/admin/clients/00000000-0000-0000-0000-000000000000", ``, 404},
		{"PATCH", "/api/admin/clients/00000000-0000-0000-0000-000000000000", `{"name":"x"}`, 404},
		{"PATCH", "/api/admin/clients/123", `{"name":"x"}`, 404},
		{"POST", "/api/admin/clients/00000000-0000-0000-0000-000000000000/users", `{"email":"a@example.com"}`, 404},
		{"POST", "/api/admin/clients/" + client + "/users", `{"email":"not an email"}`, 400},
		{"POST", "/api/admin/clients/" + client + "/users", `{"name":"no email"}`, 400},
		{"POST", "/api/admin/clients/" + client + "/users", `{"email":"a@example.com","role":"platform_admin"}`, 400},
	} {
		if code, raw := s.api(c.method, c.path, admin, c.body, nil); code != c.code {
			t.Errorf("%s %s %s: %d %s, want %d", c.method, c.path, c.body, code, raw, c.code)
		}
	}
	// A disabled client takes no invitation.
	if code, raw := s.api("PATCH", "/api/admin/clients/"+client, admin, `{"is_active":false,"license_expires_at":null}`, nil); code != 200 {
		t.Fatalf("disable: %d %s", code, raw)
	}
	if code, raw := s.api("POST", "/api/admin/clients/"+client+"/users", admin, `{"email":"a@example.com"}`, nil); code != 409 {
		t.Errorf("invitation into a disabled client: %d %s", code, raw)
	}
}

// The client cache (client:id:<uuid>, 5 min) is never stale after a change made through
// the API, and every route works with Redis down.
func TestClientCache(t *testing.T) {
	t.Parallel()
	for _, down := range []bool{false, true} {
		t.Run(fmt.Sprintf("redis down %v", down), func(t *testing.T) {
			t.Parallel()
			var opts []stackOption
			if down {
				opts = append(opts, withoutRedis(authtest.DownRedis()))
			}
			s := newStack(t, opts...)
			admin := s.bearer(s.account("", principal.RolePlatformAdmin))
			client := testenv.Client(t, s.d.Pool, "Pro")
			cadmin := s.bearer(s.account(client, principal.RoleAdmin))
			var v clientView
			for _, tok := range []string{admin, cadmin} { // fill the cache from both routes
				path := "/api/client"
				if tok == admin {
					path = "/api/admin/clients/" + client
				}
				if code, raw := s.api("GET", path, tok, "", &v); code != 200 || v.ID != client {
					t.Fatalf("GET %s: %d %s", path, code, raw)
				}
			}
			if !down {
				ttl, err := s.redis.TTL(context.Background(), s.prefix+clients.CacheKey(client)).Result()
				if err != nil || ttl <= 4*time.Minute || ttl > 5*time.Minute {
					t.Fatalf("client:id key TTL %v %v", ttl, err)
				}
			}
			if code, raw := s.api("PATCH", "/api/client", cadmin, `{"name":"Renamed by its admin"}`, &v); code != 200 || v.Name != "Renamed by its admin" {
				t.Fatalf("rename: %d %s", code, raw)
			}
			if s.api("GET", "/api/admin/clients/"+client, admin, "", &v); v.Name != "Renamed by its admin" {
				t.Fatalf("stale after the client admin's rename: %s", v.Name)
			}
			if code, raw := s.api("PATCH", "/api/admin/clients/"+client, admin, `{"license_tier":"Enterprise","max_machines":7}`, &v); code != 200 || v.MetricsRetentionDays != 365 {
				t.Fatalf("licence: %d %s", code, raw)
			}
			if s.api("GET", "/api/client", cadmin, "", &v); v.LicenseTier != "Enterprise" || v.MaxMachines != 7 || v.MetricsRetentionDays != 365 {
				t.Fatalf("stale after the platform admin's change: %+v", v)
			}
			// Machine count: a machine added is counted once the caches are invalidated (its
			// creator's job), and a deleted one is not counted.
			m := testenv.Machine(t, s.d.Pool, client, "m1")
			if _, err := s.d.Pool.Exec(context.Background(), `UPDATE machines SET deleted_at = $2 WHERE id = $1`, m, s.clock.Now()); err != nil {
				t.Fatal(err)
			}
			testenv.Machine(t, s.d.Pool, client, "m2")
			s.api("PATCH", "/api/client", cadmin, `{"name":"Renamed again"}`, nil) // a client update invalidates the machine caches
			if s.api("GET", "/api/client", cadmin, "", &v); v.MachineCount != 1 || v.LicenseUsage == nil || *v.LicenseUsage != 1.0/7 {
				t.Fatalf("count: %+v", v)
			}
			// The client admin cannot touch the licence; a user cannot rename.
			if code, raw := s.api("PATCH", "/api/client", cadmin, `{"name":"x","max_machines":1000,"license_tier":"Pro"}`, nil); code != 400 ||
				!strings.Contains(raw, `"max_machines"`) || !strings.Contains(raw, `"license_tier"`) {
				t.Fatalf("licence by a client admin: %d %s", code, raw)
			}
			user := s.bearer(s.account(client, principal.RoleUser))
			if code, _ := s.api("PATCH", "/api/client", user, `{"name":"x"}`, nil); code != 403 {
				t.Fatalf("rename by a user: %d", code)
			}
			if code, raw := s.api("GET", "/api/client", user, "", &v); code != 200 || v.Name != "Renamed again" {
				t.Fatalf("GET /api/client as a user: %d %s", code, raw)
			}
			if code, _ := s.api("GET", "/api/users", user, "", nil); code != 403 {
				t.Fatalf("users list by a user: %d", code)
			}
		})
	}
}

// Disabling a client cuts every session of its users at once (access and refresh
// tokens), and refuses its agents with 403 from their next heartbeat; re-enabling lets
// the users sign in again and the agents report, while the ended sessions stay ended.
func TestDisablingAClient(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	admin := s.bearer(s.account("", principal.RolePlatformAdmin))
	client := testenv.Client(t, s.d.Pool, "Pro")
	other := testenv.Client(t, s.d.Pool, "Pro")
	u1, u2, bystander := s.account(client, principal.RoleAdmin), s.account(client, principal.RoleUser), s.account(other, principal.RoleUser)
	b1 := s.browser("192.0.2.41")
	tk1 := b1.login(u1)
	tk2 := s.bearer(u2)
	tk3 := s.bearer(bystander)

	authority, err := ca.LoadOrCreateLocal(t.TempDir(), s.clock.Now().AddDate(-1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	machine := testenv.Machine(t, s.d.Pool, client, "agent-1")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issued, err := certs.Issue(ctx, s.d.Pool, authority, certs.IssueRequest{ClientID: client, MachineID: machine, PublicKey: &key.PublicKey}, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	agent := s.d.AgentHandler()
	heartbeat := func(cert *x509.Certificate) (int, string) {
		s.clock.Advance(time.Second)
		body := fmt.Sprintf(`{"recorded_at":%q,"metrics":{"cpu_percent":10,"ram_percent":20}}`, s.clock.Now().Format(time.RFC3339Nano))
		r := httptest.NewRequest("POST", "/agent/heartbeat", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r = r.WithContext(identity.WithClientCert(r.Context(), cert))
		w := httptest.NewRecorder()
		agent.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	if code, raw := heartbeat(issued.Cert); code != 200 {
		t.Fatalf("heartbeat: %d %s", code, raw)
	}
	for _, tok := range []string{tk1.AccessToken, tk2} {
		if code, raw := s.api("GET", "/api/client", tok, "", nil); code != 200 {
			t.Fatalf("before: %d %s", code, raw)
		}
	}

	var v clientView
	if code, raw := s.api("PATCH", "/api/admin/clients/"+client, admin, `{"is_active":false}`, &v); code != 200 || v.Active {
		t.Fatalf("disable: %d %s", code, raw)
	}
	for _, tok := range []string{tk1.AccessToken, tk2} {
		if code, raw := s.api("GET", "/api/client", tok, "", nil); code != 401 {
			t.Errorf("access token after the client was disabled: %d %s", code, raw)
		}
	}
	if w := b1.do("POST", "/api/auth/refresh", `{"refresh_token":"`+tk1.RefreshToken+`"}`); w.Code != 401 {
		t.Errorf("refresh after the client was disabled: %d %s", w.Code, w.Body.String())
	}
	if w := s.browser("192.0.2.42").do("POST", "/api/auth/login", `{"email":"`+u2.Email+`","password":"`+pw+`"}`); w.Code != 401 {
		t.Errorf("login while disabled: %d", w.Code)
	}
	if code, raw := heartbeat(issued.Cert); code != 403 {
		t.Errorf("heartbeat of a disabled client: %d %s, want 403", code, raw)
	}
	if code, _ := s.api("GET", "/api/client", tk3, "", nil); code != 200 {
		t.Errorf("another client's user was cut too: %d", code)
	}
	// Without Redis's copy (flushed), the database's blacklist still refuses them.
	keys, err := s.redis.Keys(ctx, s.prefix+"bl:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("blacklist in Redis: %v %v", keys, err)
	}
	if err := s.redis.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	if code, _ := s.api("GET", "/api/client", tk1.AccessToken, "", nil); code != 401 {
		t.Errorf("access token with the Redis copy gone: %d", code)
	}
	if n := count(t, s, `SELECT count(*) FROM refresh_tokens WHERE user_id IN ($1, $2) AND NOT is_revoked`, u1.ID, u2.ID); n != 0 {
		t.Errorf("%d live refresh tokens after disabling", n)
	}
	if n := count(t, s, `SELECT count(*) FROM activity_logs WHERE action = 'client_updated' AND client_id = $1 AND (details->>'sessions_ended')::int = 2`, client); n != 1 {
		t.Errorf("%d audit entries with the ended sessions", n)
	}

	if code, raw := s.api("PATCH", "/api/admin/clients/"+client, admin, `{"is_active":true}`, nil); code != 200 {
		t.Fatalf("enable: %d %s", code, raw)
	}
	if code, _ := s.api("GET", "/api/client", tk2, "", nil); code != 401 {
		t.Errorf("an ended session came back: %d", code)
	}
	if code, _ := s.api("GET", "/api/client", s.bearer(u2), "", nil); code != 200 {
		t.Errorf("login after re-enabling: %d", code)
	}
	if code, raw := heartbeat(issued.Cert); code != 200 {
		t.Errorf("heartbeat after re-enabling: %d %s", code, raw)
	}
}

// A client admin manages the client's users: invites (mail disabled: the link is in the
// answer), changes roles, deactivates and deletes, each cutting the user's sessions at
// once; never platform admin, never themselves.
func TestUserManagement(t *testing.T) {
	t.Parallel()
	s := newStack(t, withoutMail)
	client := testenv.Client(t, s.d.Pool, "Pro")
	me := s.account(client, principal.RoleAdmin)
	tok := s.bearer(me)

	var inv invited
	if code, raw := s.api("POST", "/api/users", tok, `{"email":"new.user@example.com","name":"New"}`, &inv); code != 201 ||
		inv.User.Role != "user" || inv.User.ClientID != client || inv.Invitation.Link == "" {
		t.Fatalf("invite: %d %s", code, raw)
	}
	for _, c := range []struct{ body, field string }{
		{`{"email":"x@example.com","role":"platform_admin"}`, "role"},
		{`{"email":"x@example.com","role":"owner"}`, "role"},
		{`{"email":"x@@example.com"}`, "email"},
		{`{"email":"x@example.com","name":"` + strings.Repeat("n", 256) + `"}`, "name"},
	} {
		if code, raw := s.api("POST", "/api/users", tok, c.body, nil); code != 400 || !strings.Contains(raw, `"`+c.field+`"`) {
			t.Errorf("POST %s: %d %s, want 400 naming %s", c.body, code, raw, c.field)
		}
	}
	if code, _ := s.api("POST", "/api/users", tok, `{"email":"NEW.user@example.com"}`, nil); code != 409 {
		t.Errorf("duplicate email: %d", code)
	}

	other := s.account(client, principal.RoleUser)
	otherTok := s.bearer(other)
	var u struct{ ID, Role, Status, Name string }
	if code, raw := s.api("PATCH", "/api/users/"+other.ID, tok, `{"role":"admin","name":" Promoted "}`, &u); code != 200 || u.Role != "admin" || u.Name != "Promoted" {
		t.Fatalf("promote: %d %s", code, raw)
	}
	// The role is in the access token: a role change ends the sessions.
	if code, _ := s.api("GET", "/api/client", otherTok, "", nil); code != 401 {
		t.Errorf("token after a role change: %d", code)
	}
	otherTok = s.bearer(other)
	if code, _ := s.api("GET", "/api/users", otherTok, "", nil); code != 200 {
		t.Errorf("the new admin lists users: %d", code)
	}
	for _, c := range []struct{ body, field string }{
		{`{"role":"platform_admin"}`, "role"},
		{`{"is_active":"false"}`, "is_active"},
		{`{"name":7}`, "name"},
	} {
		if code, raw := s.api("PATCH", "/api/users/"+other.ID, tok, c.body, nil); code != 400 || !strings.Contains(raw, `"`+c.field+`"`) {
			t.Errorf("PATCH %s: %d %s, want 400 naming %s", c.body, code, raw, c.field)
		}
	}
	for _, c := range []struct{ method, path, body string }{
		{"PATCH", "/api/users/" + me.ID, `{"role":"user"}`},
		{"PATCH", "/api/users/" + me.ID, `{"is_active":false}`},
		{"DELETE", "/api/users/" + me.ID, ``},
	} {
		if code, raw := s.api(c.method, c.path, tok, c.body, nil); code != 409 || !strings.Contains(raw, "yourself") {
			t.Errorf("%s %s %s on oneself: %d %s, want 409", c.method, c.path, c.body, code, raw)
		}
	}
	if code, raw := s.api("PATCH", "/api/users/"+me.ID, tok, `{"name":"Still me"}`, nil); code != 200 {
		t.Errorf("renaming oneself: %d %s", code, raw)
	}
	for _, c := range []struct{ method, path string }{
		{"PATCH", "/api/users/not-a-uuid"}, {"DELETE", "/api/users/00000000-0000-0000-0000-000000000000"},
	} {
		if code, _ := s.api(c.method, c.path, tok, `{"name":"x"}`, nil); code != 404 {
			t.Errorf("%s %s: %d", c.method, c.path, code)
		}
	}

	// Deactivation cuts at once; reactivation lets them sign in again.
	if code, raw := s.api("PATCH", "/api/users/"+other.ID, tok, `{"is_active":false}`, &u); code != 200 || u.Status != "inactive" {
		t.Fatalf("deactivate: %d %s", code, raw)
	}
	if code, _ := s.api("GET", "/api/users", otherTok, "", nil); code != 401 {
		t.Errorf("token after deactivation: %d", code)
	}
	if _, err := s.d.Auth.Login(context.Background(), other.Email, pw, auth.Meta{}); err == nil {
		t.Error("a deactivated user signed in")
	}
	s.api("PATCH", "/api/users/"+other.ID, tok, `{"is_active":true}`, nil)
	otherTok = s.bearer(other)
	// Deletion too.
	if code, raw := s.api("DELETE", "/api/users/"+other.ID, tok, "", nil); code != 204 {
		t.Fatalf("delete: %d %s", code, raw)
	}
	if code, _ := s.api("GET", "/api/users", otherTok, "", nil); code != 401 {
		t.Errorf("token after deletion: %d", code)
	}
	if code, _ := s.api("DELETE", "/api/users/"+other.ID, tok, "", nil); code != 404 {
		t.Errorf("second delete: %d", code)
	}
	var list struct{ Users []struct{ ID, Status string } }
	s.api("GET", "/api/users", tok, "", &list)
	if len(list.Users) != 2 {
		t.Fatalf("users after delete: %+v", list)
	}
	for _, action := range []string{"user_invited", "user_updated", "user_deleted"} {
		if n := count(t, s, `SELECT count(*) FROM activity_logs WHERE action = $1 AND client_id = $2 AND user_id = $3`, action, client, me.ID); n == 0 {
			t.Errorf("no %s audit entry", action)
		}
	}
}

// Two admins demoting each other at the same moment: one wins, the other finds it is no
// longer an admin. The client keeps an active admin.
func TestAdminsDemotingEachOther(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	client := testenv.Client(t, s.d.Pool, "Pro")
	for i := 0; i < 5; i++ {
		x, y := s.account(client, principal.RoleAdmin), s.account(client, principal.RoleAdmin)
		tx, ty := s.bearer(x), s.bearer(y)
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for j, c := range []struct{ tok, target string }{{tx, y.ID}, {ty, x.ID}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[j], _ = call(s.h, "PATCH", "/api/users/"+c.target, c.tok, `{"role":"user"}`)
			}()
		}
		wg.Wait()
		if n := count(t, s, `SELECT count(*) FROM users WHERE id IN ($1, $2) AND role = 'admin'`, x.ID, y.ID); n != 1 {
			t.Fatalf("round %d: %d of the two are admins (answers %v)", i, n, codes)
		}
	}
}
