package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	json "github.com/goccy/go-json"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/routes"
	"github.com/optralis/optralis/internal/testenv"
)

var jwtSecret = []byte(strings.Repeat("k", 32))

// stack is the real handler stack (PublicHandler) on a fresh database and the test Redis.
type stack struct {
	t      *testing.T
	d      *testDeps
	h      http.Handler
	clock  *authtest.Clock
	mailer *authtest.Mailer
	redis  *redis.Client
	prefix string
}

type stackOption func(*auth.Options, *testDeps)

func withoutRedis(rc *redis.Client) stackOption {
	return func(o *auth.Options, d *testDeps) { o.Redis, d.Redis = rc, rc }
}

func newStack(t *testing.T, opts ...stackOption) *stack {
	t.Helper()
	s := &stack{t: t, clock: authtest.NewClock(time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)), mailer: &authtest.Mailer{}}
	s.redis, s.prefix = testenv.Redis(t)
	s.d = &testDeps{
		Config:    config.Config{JWTSecret: jwtSecret},
		Pool:      testenv.NewDB(t, migrate.ModePostgres),
		Redis:     s.redis,
		Logger:    testenv.Discard(),
		Clock:     s.clock,
		KeyPrefix: s.prefix,
	}
	o := auth.Options{Pool: s.d.Pool, Redis: s.redis, Secret: jwtSecret, Clock: s.clock, Logger: s.d.Logger,
		Mailer: s.mailer, DashboardURL: "https://dash.example.com", KeyPrefix: s.prefix,
		Hasher: &authtest.Hasher{Cost: 4}, ForgotMinDuration: -1}
	for _, f := range opts {
		f(&o, s.d)
	}
	s.redis = o.Redis
	s.d.Auth = auth.New(o)
	s.h = contract(t, s.d.PublicHandler())
	return s
}

const pw = "Sturdy-Password-2026"

type account struct {
	ID, ClientID, Email, Password, Role string
}

// account creates a user of client (or a platform admin when client is "") whose password
// is current.
func (s *stack) account(client, role string) account {
	s.t.Helper()
	a := account{ClientID: client, Email: "p" + uuid.NewString()[:8] + "@example.com", Password: pw, Role: role}
	id, err := s.d.Auth.CreateUser(context.Background(), auth.NewUser{Email: a.Email, Name: "Pat", Role: role, ClientID: client, Password: pw})
	if err != nil {
		s.t.Fatal(err)
	}
	a.ID = id
	return a
}

// browser keeps cookies the way a browser does for one site (path-scoped, deleted by
// Max-Age<=0) and sends them, and whatever headers are set, with each request.
type browser struct {
	s       *stack
	ip      string
	cookies map[string]*http.Cookie
	header  http.Header
}

func (s *stack) browser(ip string) *browser {
	return &browser{s: s, ip: ip, cookies: map[string]*http.Cookie{}, header: http.Header{}}
}

type response struct {
	*httptest.ResponseRecorder
	t *testing.T
}

func (r response) json(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body.Bytes(), v); err != nil {
		r.t.Fatalf("body %q: %v", r.Body.String(), err)
	}
}

func (r response) code() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(r.Body.Bytes(), &e)
	return e.Error.Code
}

func (b *browser) do(method, path, body string, hdr ...string) response {
	b.s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	r.RemoteAddr = b.ip + ":41234"
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range b.header {
		r.Header[k] = v
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	for _, c := range b.cookies {
		if strings.HasPrefix(path, c.Path) {
			r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	w := httptest.NewRecorder()
	b.s.h.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return response{w, b.s.t}
}

func (b *browser) csrf() string {
	if c := b.cookies[auth.CSRFCookie]; c != nil {
		return c.Value
	}
	return ""
}

type tokens struct {
	AccessToken            string `json:"access_token"`
	RefreshToken           string `json:"refresh_token"`
	CSRFToken              string `json:"csrf_token"`
	ExpiresIn              int    `json:"expires_in"`
	PasswordChangeRequired bool   `json:"password_change_required"`
}

func (b *browser) login(a account) tokens {
	b.s.t.Helper()
	w := b.do("POST", "/api/auth/login", `{"email":"`+a.Email+`","password":"`+a.Password+`"}`)
	if w.Code != 200 {
		b.s.t.Fatalf("login: %d %s", w.Code, w.Body.String())
	}
	var tk tokens
	w.json(&tk)
	return tk
}

func TestLoginSetsTheSpecsCookies(t *testing.T) {
	t.Parallel()
	for _, dev := range []bool{false, true} {
		s := newStack(t, func(o *auth.Options, _ *testDeps) { o.Dev = dev })
		a := s.account(testenv.Client(t, s.d.Pool, "Pro"), principal.RoleUser)
		b := s.browser("192.0.2.20")
		w := b.do("POST", "/api/auth/login", `{"email":"`+a.Email+`","password":"`+pw+`"}`)
		if w.Code != 200 {
			t.Fatalf("login: %d %s", w.Code, w.Body.String())
		}
		var tk tokens
		w.json(&tk)
		want := map[string]struct {
			path     string
			httpOnly bool
			maxAge   int
			value    string
		}{
			auth.AccessCookie:  {"/", true, 900, tk.AccessToken},
			auth.RefreshCookie: {"/api/auth", true, 7 * 24 * 3600, tk.RefreshToken},
			auth.CSRFCookie:    {"/", false, 7 * 24 * 3600, tk.CSRFToken},
		}
		got := map[string]*http.Cookie{}
		for _, c := range w.Result().Cookies() {
			got[c.Name] = c
		}
		for name, wc := range want {
			c := got[name]
			if c == nil {
				t.Fatalf("dev=%v: cookie %s missing", dev, name)
			}
			if c.Path != wc.path || c.HttpOnly != wc.httpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure == dev ||
				c.MaxAge != wc.maxAge || c.Value != wc.value || c.Value == "" {
				t.Errorf("dev=%v: %s = %+v", dev, name, c)
			}
		}
		if tk.ExpiresIn != 900 || len(tk.RefreshToken) != 43 {
			t.Errorf("body: %+v", tk)
		}
	}
}

// The spec's five-step theft flow, through HTTP.
func TestTheftFlowOverHTTP(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a := s.account(testenv.Client(t, s.d.Pool, "Pro"), principal.RoleAdmin)
	victim := s.browser("192.0.2.30")
	victim.login(a)
	// 1. The attacker copies the victim's refresh cookie.
	stolen := victim.cookies[auth.RefreshCookie].Value
	// 2. The victim's dashboard refreshes (cookie + CSRF header): the stolen token is revoked.
	s.clock.Advance(14 * time.Minute)
	if w := victim.do("POST", "/api/auth/refresh", "", auth.CSRFHeader, victim.csrf()); w.Code != 200 {
		t.Fatalf("victim refresh: %d %s", w.Code, w.Body.String())
	}
	if victim.cookies[auth.RefreshCookie].Value == stolen {
		t.Fatal("refresh cookie not rotated")
	}
	// 3. The attacker presents the stolen token (as a Bearer client would), later.
	s.clock.Advance(time.Minute)
	attacker := s.browser("203.0.113.5")
	w := attacker.do("POST", "/api/auth/refresh", `{"refresh_token":"`+stolen+`"}`)
	if w.Code != 401 || strings.Contains(w.Body.String(), "reuse") {
		t.Fatalf("attacker: %d %s", w.Code, w.Body.String())
	}
	// 4. Reuse detected: the family is revoked and the event audited.
	var n int
	if err := s.d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM activity_logs WHERE action = 'refresh_token_reuse_detected' AND user_id = $1 AND ip_address = '203.0.113.5'`, a.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("reuse audit: %d %v", n, err)
	}
	// 5. Both are logged out: the victim's access cookie and refresh cookie stop working.
	if w := victim.do("GET", "/api/auth/me", ""); w.Code != 401 {
		t.Fatalf("victim still signed in: %d", w.Code)
	}
	if w := victim.do("POST", "/api/auth/refresh", "", auth.CSRFHeader, victim.csrf()); w.Code != 401 {
		t.Fatalf("victim refresh after theft: %d", w.Code)
	}
	if _, ok := victim.cookies[auth.RefreshCookie]; ok {
		t.Fatal("failed refresh left the refresh cookie in place")
	}
}

func TestLogoutThenReuseOfTheAccessToken(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a := s.account(testenv.Client(t, s.d.Pool, "Pro"), principal.RoleUser)
	b := s.browser("192.0.2.40")
	tk := b.login(a)
	bearer := "Bearer " + tk.AccessToken
	if w := b.do("GET", "/api/auth/me", "", "Authorization", bearer); w.Code != 200 {
		t.Fatalf("me: %d", w.Code)
	}
	w := b.do("POST", "/api/auth/logout", "", "Authorization", bearer)
	if w.Code != 204 {
		t.Fatalf("logout: %d %s", w.Code, w.Body.String())
	}
	if len(b.cookies) != 0 {
		t.Fatalf("cookies not cleared: %v", b.cookies)
	}
	if w := b.do("GET", "/api/auth/me", "", "Authorization", bearer); w.Code != 401 || w.code() != "unauthenticated" {
		t.Fatalf("access token after logout: %d %s", w.Code, w.Body.String())
	}
	if w := b.do("POST", "/api/auth/refresh", `{"refresh_token":"`+tk.RefreshToken+`"}`); w.Code != 401 {
		t.Fatalf("refresh after logout: %d", w.Code)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	client := testenv.Client(t, s.d.Pool, "Pro")
	a := s.account(client, principal.RoleUser)
	b := s.browser("192.0.2.50")
	tk := b.login(a)
	other := s.browser("192.0.2.51")
	otherTk := other.login(s.account(client, principal.RoleUser))

	// Safe methods need no header.
	if w := b.do("GET", "/api/auth/me", ""); w.Code != 200 {
		t.Fatalf("GET with cookie: %d", w.Code)
	}
	refused := map[string][]string{
		"missing header":           nil,
		"wrong header":             {auth.CSRFHeader, "nope"},
		"another session's token":  {auth.CSRFHeader, otherTk.CSRFToken},
		"header and cookie forged": {auth.CSRFHeader, "forged", "Cookie", auth.CSRFCookie + "=forged"},
	}
	for name, hdr := range refused {
		w := b.do("POST", "/api/auth/password", `{"current_password":"x","new_password":"y"}`, hdr...)
		if w.Code != 403 || w.code() != "forbidden" {
			t.Errorf("%s: %d %s", name, w.Code, w.Body.String())
		}
		w = b.do("POST", "/api/auth/refresh", "", hdr...)
		if w.Code != 403 {
			t.Errorf("refresh by cookie, %s: %d %s", name, w.Code, w.Body.String())
		}
	}
	// Bearer needs no header (a browser cannot forge one cross-site), even with cookies.
	w := b.do("POST", "/api/auth/password", `{"current_password":"x","new_password":"y"}`, "Authorization", "Bearer "+tk.AccessToken)
	if w.Code != 400 {
		t.Fatalf("Bearer without CSRF: %d %s (want to reach the handler: 400)", w.Code, w.Body.String())
	}
	// The right header passes.
	if w := b.do("POST", "/api/auth/refresh", "", auth.CSRFHeader, b.csrf()); w.Code != 200 {
		t.Fatalf("refresh with CSRF: %d %s", w.Code, w.Body.String())
	}
	if w := b.do("POST", "/api/auth/logout", "", auth.CSRFHeader, b.csrf()); w.Code != 204 {
		t.Fatalf("logout with CSRF: %d %s", w.Code, w.Body.String())
	}
}

func TestBruteForceIsLimitedPerIP(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a := s.account(testenv.Client(t, s.d.Pool, "Pro"), principal.RoleUser)
	bruteForce(t, s, a)
}

// With Redis down the limit still holds (in process) and logout still sticks (database).
func TestRedisDown(t *testing.T) {
	t.Parallel()
	s := newStack(t, withoutRedis(authtest.DownRedis()))
	a := s.account(testenv.Client(t, s.d.Pool, "Pro"), principal.RoleUser)
	b := s.browser("192.0.2.60")
	tk := b.login(a)
	if w := b.do("POST", "/api/auth/logout", "", "Authorization", "Bearer "+tk.AccessToken); w.Code != 204 {
		t.Fatalf("logout: %d %s", w.Code, w.Body.String())
	}
	if w := b.do("GET", "/api/auth/me", "", "Authorization", "Bearer "+tk.AccessToken); w.Code != 401 {
		t.Fatalf("blacklist not checked without Redis: %d", w.Code)
	}
	bruteForce(t, s, s.account(a.ClientID, principal.RoleUser))
}

func bruteForce(t *testing.T, s *stack, a account) {
	t.Helper()
	attacker := s.browser("198.51.100.99")
	for i := 0; i < 5; i++ {
		if w := attacker.do("POST", "/api/auth/login", `{"email":"`+a.Email+`","password":"guess-`+strconv.Itoa(i)+`"}`); w.Code != 401 {
			t.Fatalf("attempt %d: %d %s", i+1, w.Code, w.Body.String())
		}
	}
	limited := func(w response, what string) {
		t.Helper()
		ra, err := strconv.Atoi(w.Header().Get("Retry-After"))
		if w.Code != 429 || w.code() != "rate_limited" || err != nil || ra < 1 || ra > 180 {
			t.Fatalf("%s: %d Retry-After=%q %s", what, w.Code, w.Header().Get("Retry-After"), w.Body.String())
		}
	}
	limited(attacker.do("POST", "/api/auth/login", `{"email":"`+a.Email+`","password":"guess-6"}`), "sixth attempt")
	// Even the right password waits: the limit is on attempts, not failures.
	limited(attacker.do("POST", "/api/auth/login", `{"email":"`+a.Email+`","password":"`+pw+`"}`), "right password past the limit")
	// A forged X-Forwarded-For does not make a new client.
	for _, xff := range []string{"10.0.0.1", "203.0.113.7, 198.51.100.1", uuid.NewString()} {
		limited(attacker.do("POST", "/api/auth/login", `{"email":"`+a.Email+`","password":"x"}`, "X-Forwarded-For", xff, "X-Real-IP", xff), "X-Forwarded-For "+xff)
	}
	// Another address is not affected.
	if w := s.browser("198.51.100.100").do("POST", "/api/auth/login", `{"email":"`+a.Email+`","password":"`+pw+`"}`); w.Code != 200 {
		t.Fatalf("another IP: %d %s", w.Code, w.Body.String())
	}
	// Forgot and reset have their own budgets, with the same limit.
	for i := 0; i < 5; i++ {
		if w := attacker.do("POST", "/api/auth/password/forgot", `{"email":"x@example.com"}`); w.Code != 202 {
			t.Fatalf("forgot %d: %d", i+1, w.Code)
		}
		if w := attacker.do("POST", "/api/auth/password/reset", `{"token":"bogus","new_password":"Valid-Password-123"}`); w.Code != 400 {
			t.Fatalf("reset %d: %d %s", i+1, w.Code, w.Body.String())
		}
	}
	limited(attacker.do("POST", "/api/auth/password/forgot", `{"email":"x@example.com"}`), "sixth forgot")
	limited(attacker.do("POST", "/api/auth/password/reset", `{"token":"bogus","new_password":"Valid-Password-123"}`), "sixth reset")
	// Refresh counts failures only.
	for i := 0; i < 5; i++ {
		if w := attacker.do("POST", "/api/auth/refresh", `{"refresh_token":"bogus"}`); w.Code != 401 {
			t.Fatalf("refresh %d: %d", i+1, w.Code)
		}
	}
	limited(attacker.do("POST", "/api/auth/refresh", `{"refresh_token":"bogus"}`), "sixth failed refresh")
	user := s.browser("198.51.100.101")
	user.login(a)
	for i := 0; i < 8; i++ {
		if w := user.do("POST", "/api/auth/refresh", "", auth.CSRFHeader, user.csrf()); w.Code != 200 {
			t.Fatalf("successful refresh %d limited: %d %s", i+1, w.Code, w.Body.String())
		}
	}
}

func TestMalformedAndOversizeBodies(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	b := s.browser("192.0.2.70")
	cases := []struct {
		path, body, ctype string
		status            int
		code              string
	}{
		{"/api/auth/login", `{"email":`, "application/json", 400, "invalid"},
		{"/api/auth/login", `{"email":"a@b.co","password":"x","admin":true}`, "application/json", 400, "invalid"},
		{"/api/auth/login", `{"email":["a@b.co"],"password":"x"}`, "application/json", 400, "invalid"},
		{"/api/auth/login", `{}`, "application/json", 400, "invalid"},
		{"/api/auth/login", `email=a@b.co`, "application/x-www-form-urlencoded", 415, "unsupported_media_type"},
		{"/api/auth/refresh", `{"refresh_token":`, "application/json", 400, "invalid"},
		{"/api/auth/password/forgot", `[1,2]`, "application/json", 400, "invalid"},
		{"/api/auth/password/reset", `{"token":"x"} {"token":"y"}`, "application/json", 400, "invalid"},
	}
	for i, tc := range cases {
		r := httptest.NewRequest("POST", tc.path, strings.NewReader(tc.body))
		r.RemoteAddr = "192.0.3." + strconv.Itoa(i) + ":5555" // each its own rate-limit budget
		r.Header.Set("Content-Type", tc.ctype)
		w := httptest.NewRecorder()
		s.h.ServeHTTP(w, r)
		res := response{w, t}
		if w.Code != tc.status || res.code() != tc.code {
			t.Errorf("%s %q: %d %s", tc.path, tc.body, w.Code, w.Body.String())
		}
	}
	big := `{"email":"a@b.co","password":"` + strings.Repeat("x", httpx.MaxBodyBytes) + `"}`
	for _, path := range []string{"/api/auth/login", "/api/auth/refresh"} {
		if w := b.do("POST", path, big); w.Code != 413 || w.code() != "payload_too_large" {
			t.Errorf("%s oversize: %d %s", path, w.Code, w.Body.String())
		}
		r := httptest.NewRequest("POST", path, io.MultiReader(strings.NewReader(big)))
		r.ContentLength = -1
		r.RemoteAddr = "192.0.4.1:5555"
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.h.ServeHTTP(w, r)
		if w.Code != 413 {
			t.Errorf("%s streamed oversize: %d", path, w.Code)
		}
	}
}

func TestForgotAnswersAlike(t *testing.T) {
	t.Parallel()
	// The padding is read on a sleeper clock that sleeping moves, not on a stopwatch.
	pacer := authtest.NewClock(time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC))
	s := newStack(t, func(o *auth.Options, _ *testDeps) { o.ForgotMinDuration, o.Sleeper = 150*time.Millisecond, pacer })
	a := s.account(testenv.Client(t, s.d.Pool, "Pro"), principal.RoleUser)
	var bodies []string
	for i, email := range []string{a.Email, "nobody@example.com", "not-an-email"} {
		start := pacer.Now()
		w := s.browser("192.0.2."+strconv.Itoa(80+i)).do("POST", "/api/auth/password/forgot", `{"email":"`+email+`"}`)
		if took := pacer.Now().Sub(start); w.Code != 202 || took < 150*time.Millisecond {
			t.Fatalf("%s: %d after %v", email, w.Code, took)
		}
		bodies = append(bodies, w.Body.String())
	}
	if bodies[0] != bodies[1] || bodies[1] != bodies[2] || !strings.Contains(bodies[0], auth.ForgotAnswer) {
		t.Fatalf("answers differ: %q", bodies)
	}
	if sent := s.mailer.Sent(); len(sent) != 1 || sent[0].To != a.Email {
		t.Fatalf("sent: %+v", sent)
	}
	// The link works once through the API.
	token := strings.SplitN(strings.SplitN(s.mailer.Sent()[0].Body, "token=", 2)[1], "\n", 2)[0]
	b := s.browser("192.0.2.90")
	if w := b.do("POST", "/api/auth/password/reset", `{"token":"`+token+`","new_password":"Brand-New-Pass-01"}`); w.Code != 200 {
		t.Fatalf("reset: %d %s", w.Code, w.Body.String())
	}
	if w := b.do("POST", "/api/auth/password/reset", `{"token":"`+token+`","new_password":"Brand-New-Pass-02"}`); w.Code != 400 {
		t.Fatalf("second reset: %d", w.Code)
	}
	b.login(account{Email: a.Email, Password: "Brand-New-Pass-01"})
}

func TestMe(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	client := testenv.Client(t, s.d.Pool, "Pro")
	a := s.account(client, principal.RoleAdmin)
	admin := s.account("", principal.RolePlatformAdmin)
	b := s.browser("192.0.2.100")
	b.login(a)
	var me struct {
		User struct {
			ID, Email, Role string
			ClientID        *string `json:"client_id"`
		}
		Client *struct {
			ID          string
			LicenseTier string `json:"license_tier"`
		}
		Role     string
		Password struct {
			MustChange      bool `json:"must_change"`
			Expired         bool
			ChangeRequired  bool `json:"change_required"`
			DaysUntilExpiry int  `json:"days_until_expiry"`
			ExpiresAt       time.Time
		}
	}
	w := b.do("GET", "/api/auth/me", "")
	w.json(&me)
	if w.Code != 200 || me.User.ID != a.ID || me.User.ClientID == nil || *me.User.ClientID != client || me.Role != "admin" ||
		me.Client == nil || me.Client.ID != client || me.Client.LicenseTier != "Pro" || me.Password.ChangeRequired || me.Password.DaysUntilExpiry != 90 {
		t.Fatalf("me: %d %s", w.Code, w.Body.String())
	}
	if strings.Contains(w.Body.String(), "password_hash") || strings.Contains(w.Body.String(), "$2a$") {
		t.Fatal("hash exposed")
	}
	pb := s.browser("192.0.2.101")
	pb.login(admin)
	w = pb.do("GET", "/api/auth/me", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"client":null`) || !strings.Contains(w.Body.String(), `"role":"platform_admin"`) {
		t.Fatalf("platform admin me: %d %s", w.Code, w.Body.String())
	}
}

// The login event replayed through the Lambda JSON path: cookies come back as multi-value
// headers, and the rate limit keys on API Gateway's sourceIp, not X-Forwarded-For.
func TestLambdaLoginEvent(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	a := s.account(testenv.Client(t, s.d.Pool, "Pro"), principal.RoleUser)
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(event(t, "rest_post_login.json"), &ev); err != nil {
		t.Fatal(err)
	}
	ev.Path, ev.Resource, ev.RequestContext.Path, ev.RequestContext.ResourcePath = "/api/auth/login", "/api/auth/login", "/api/auth/login", "/api/auth/login"
	h := s.d.FunctionHandler(routes.FnAuth)
	invoke := func(password, xff string) events.APIGatewayProxyResponse {
		t.Helper()
		e := ev
		e.Body = `{"email":"` + a.Email + `","password":"` + password + `"}`
		e.Headers = map[string]string{"Content-Type": "application/json", "X-Forwarded-For": xff}
		e.MultiValueHeaders = map[string][]string{"Content-Type": {"application/json"}, "X-Forwarded-For": {xff}}
		in, _ := json.Marshal(e)
		return invokeREST(t, h, in)
	}
	resp := invoke(pw, "203.0.113.1")
	if resp.StatusCode != 200 || len(resp.MultiValueHeaders["Set-Cookie"]) != 3 {
		t.Fatalf("login via REST event: %d %v %s", resp.StatusCode, resp.MultiValueHeaders, resp.Body)
	}
	for i := 0; i < 4; i++ {
		invoke("wrong", "203.0.113."+strconv.Itoa(10+i))
	}
	if resp := invoke(pw, "203.0.113.250"); resp.StatusCode != 429 {
		t.Fatalf("sixth attempt from sourceIp %s with a new X-Forwarded-For: %d", ev.RequestContext.Identity.SourceIP, resp.StatusCode)
	}
	var n int
	if err := s.d.Pool.QueryRow(t.Context(), `SELECT count(*) FROM refresh_tokens WHERE ip_address = $1`, ev.RequestContext.Identity.SourceIP).Scan(&n); err != nil || n != 1 {
		t.Fatalf("session not recorded with the source IP: %d %v", n, err)
	}
}

// TestCleanupJobIsScheduled: the hourly cleanup job (the cleanup Lambda on AWS) removes
// expired blacklist entries and install tokens expired for more than 24 hours.
func TestCleanupJobIsScheduled(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	now := s.clock.Now()
	client := testenv.Client(t, s.d.Pool, "Pro")
	if _, err := s.d.Pool.Exec(t.Context(), `
		INSERT INTO token_blacklist (jti, expires_at) VALUES ('expired-jti', $1), ('live-jti', $2);
		`, now.Add(-time.Minute), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.d.Pool.Exec(t.Context(), `INSERT INTO install_tokens (client_id, token_hash, expires_at) VALUES
		($1, 'old', $2), ($1, 'recent', $3)`, client, now.Add(-25*time.Hour), now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, j := range s.d.Jobs() {
		if j.Name != "cleanup" {
			continue
		}
		if j.Cadence != routes.EveryDuration(time.Hour) {
			t.Fatalf("cleanup cadence %+v", j.Cadence)
		}
		if err := j.Run(t.Context(), now); err != nil {
			t.Fatal(err)
		}
		var jtis, tokens []string
		rows, _ := s.d.Pool.Query(t.Context(), `SELECT jti FROM token_blacklist WHERE jti IN ('expired-jti', 'live-jti')`)
		jtis, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		rows, _ = s.d.Pool.Query(t.Context(), `SELECT token_hash FROM install_tokens WHERE client_id = $1`, client)
		tokens, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		if len(jtis) != 1 || jtis[0] != "live-jti" || len(tokens) != 1 || tokens[0] != "recent" {
			t.Fatalf("after cleanup: blacklist %v, install tokens %v", jtis, tokens)
		}
		return
	}
	t.Fatal("no cleanup job")
}
