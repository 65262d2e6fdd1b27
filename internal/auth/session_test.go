package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/auth/authtest"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

func TestLoginStartsASessionStoredHashed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user(principal.RoleAdmin)
	is := e.login(u)
	if is.AccessToken == "" || len(is.RefreshToken) != 43 || is.CSRFToken == "" || is.PasswordChangeRequired {
		t.Fatalf("issued: %+v", is)
	}
	if !is.RefreshExpiresAt.Equal(t0.Add(7*24*time.Hour)) || !is.AccessClaims.ExpiresAt.Time.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("lifetimes: refresh %v access %v", is.RefreshExpiresAt, is.AccessClaims.ExpiresAt)
	}
	var hash, ip, ua, family string
	var rotation int
	var revoked bool
	if err := e.pool.QueryRow(t.Context(), `SELECT token_hash, ip_address, user_agent, family_id, rotation_count, is_revoked FROM refresh_tokens WHERE user_id = $1`, u.ID).
		Scan(&hash, &ip, &ua, &family, &rotation, &revoked); err != nil {
		t.Fatal(err)
	}
	if hash != sha(is.RefreshToken) || hash == is.RefreshToken || ip != meta.IP || ua != meta.UserAgent || family != is.FamilyID || rotation != 0 || revoked {
		t.Fatalf("stored token: hash=%s ip=%s ua=%s family=%s rotation=%d revoked=%v", hash, ip, ua, family, rotation, revoked)
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'login' AND user_id = $1 AND client_id = $2 AND ip_address = $3`, u.ID, u.ClientID, meta.IP); n != 1 {
		t.Fatalf("%d login audit entries", n)
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE details::text LIKE '%' || $1 || '%'`, is.RefreshToken); n != 0 {
		t.Fatal("a token reached the audit trail")
	}
	s, err := e.authenticate(is.AccessToken)
	if err != nil || s.UserID != u.ID || s.ClientID != u.ClientID || s.Role != principal.RoleAdmin || s.Email != u.Email || s.FamilyID != is.FamilyID {
		t.Fatalf("session %+v, %v", s, err)
	}
	// Email lookup ignores case and surrounding spaces.
	if _, err := e.svc.Login(t.Context(), "  "+strings.ToUpper(u.Email)+" ", u.Password, meta); err != nil {
		t.Fatalf("case-insensitive login: %v", err)
	}
}

// Every failure answers the same error and costs one bcrypt comparison, whether or not the
// email exists.
func TestLoginFailuresLookAlike(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user(principal.RoleUser)
	inactive := e.user(principal.RoleUser)
	e.exec(`UPDATE users SET is_active = FALSE WHERE id = $1`, inactive.ID)
	otherClient := testenv.Client(t, e.pool, "Pro")
	e.exec(`UPDATE clients SET is_active = FALSE WHERE id = $1`, otherClient)
	disabledClientUser := user{Email: "dc@example.com", Password: goodPassword}
	if _, err := e.svc.CreateUser(t.Context(), auth.NewUser{Email: disabledClientUser.Email, Role: principal.RoleUser, ClientID: otherClient, Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	long := goodPassword + strings.Repeat("x", 72-len(goodPassword)) // exactly 72 bytes
	longUser := user{Email: "long@example.com", Password: long}
	if _, err := e.svc.CreateUser(t.Context(), auth.NewUser{Email: longUser.Email, Role: principal.RoleUser, ClientID: e.client, Password: long}); err != nil {
		t.Fatal(err)
	}

	attempts := map[string][2]string{
		"unknown email":           {"nobody@example.com", goodPassword},
		"malformed email":         {"not an email", goodPassword},
		"wrong password":          {u.Email, goodPassword + "x"},
		"inactive user":           {inactive.Email, inactive.Password},
		"inactive client":         {disabledClientUser.Email, goodPassword},
		"73 bytes, 72 that match": {longUser.Email, long + "y"},
	}
	var first *apperr.Error
	for name, a := range attempts {
		before := e.hasher.Compares.Load()
		_, err := e.svc.Login(t.Context(), a[0], a[1], meta)
		ae, ok := apperr.As(err)
		if !ok || ae.Code != apperr.Unauthenticated {
			t.Fatalf("%s: %v", name, err)
		}
		if first == nil {
			first = ae
		} else if ae.Message != first.Message || len(ae.Fields) != 0 {
			t.Errorf("%s: message %q differs from %q", name, ae.Message, first.Message)
		}
		if n := e.hasher.Compares.Load() - before; n != 1 {
			t.Errorf("%s: %d bcrypt comparisons, want exactly 1", name, n)
		}
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'login_failed'`); n != len(attempts) {
		t.Fatalf("%d login_failed entries, want %d", n, len(attempts))
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'login_failed' AND details->>'reason' = 'unknown_email' AND user_id IS NULL`); n != 2 {
		t.Fatalf("unknown-email failures: %d", n)
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE details::text LIKE '%Correct-Horse%'`); n != 0 {
		t.Fatal("a password reached the audit trail")
	}
	if n := e.count(`SELECT count(*) FROM refresh_tokens`); n != 0 {
		t.Fatalf("failed logins created %d sessions", n)
	}
	if _, err := e.svc.Login(t.Context(), longUser.Email, long, meta); err != nil {
		t.Fatalf("72-byte password refused: %v", err)
	}
}

// An unknown email costs one bcrypt comparison at the production cost: counted, with the
// cost read from the hash compared against (a cost-4 or malformed dummy would be cheap).
// The production default hasher and its constant dummy are checked in dummy_test.go.
func TestUnknownEmailCostsARealBcrypt(t *testing.T) {
	t.Parallel()
	hasher := &authtest.Hasher{Cost: auth.BcryptCost}
	e := newEnv(t, func(o *auth.Options) { o.Hasher = hasher })
	for _, email := range []string{"nobody@example.com", "not an email"} {
		before := hasher.Compares.Load()
		_, err := e.svc.Login(context.Background(), email, "whatever", meta)
		mustUnauthenticated(t, err, email)
		if n := hasher.Compares.Load() - before; n != 1 {
			t.Errorf("%s: %d bcrypt comparisons, want exactly 1", email, n)
		}
		if cost := hasher.LastCompare.Load(); cost != auth.BcryptCost {
			t.Errorf("%s: compared against a hash of bcrypt cost %d, want %d", email, cost, auth.BcryptCost)
		}
	}
}

func TestRefreshRotates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user(principal.RoleUser)
	is := e.login(u)
	e.clock.Advance(10 * time.Minute)
	next, err := e.svc.Refresh(t.Context(), is.RefreshToken, auth.Meta{IP: "198.51.100.1", UserAgent: "tab-2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if next.RefreshToken == is.RefreshToken || next.FamilyID != is.FamilyID || next.AccessToken == is.AccessToken || next.CSRFToken != is.CSRFToken {
		t.Fatalf("rotation: %+v", next)
	}
	var revoked bool
	var reason string
	if err := e.pool.QueryRow(t.Context(), `SELECT is_revoked, revoked_reason FROM refresh_tokens WHERE token_hash = $1`, sha(is.RefreshToken)).Scan(&revoked, &reason); err != nil || !revoked || reason != "rotated" {
		t.Fatalf("old token: revoked=%v reason=%q err=%v", revoked, reason, err)
	}
	var rotation int
	var ip string
	if err := e.pool.QueryRow(t.Context(), `SELECT rotation_count, ip_address FROM refresh_tokens WHERE token_hash = $1 AND NOT is_revoked`, sha(next.RefreshToken)).Scan(&rotation, &ip); err != nil || rotation != 1 || ip != "198.51.100.1" {
		t.Fatalf("new token: rotation=%d ip=%s err=%v", rotation, ip, err)
	}
	if !next.RefreshExpiresAt.Equal(e.clock.Now().Add(auth.RefreshTTL)) {
		t.Fatalf("refresh expiry %v", next.RefreshExpiresAt)
	}
	third, err := e.svc.Refresh(t.Context(), next.RefreshToken, meta, nil)
	if err != nil || third.FamilyID != is.FamilyID {
		t.Fatalf("second rotation: %v", err)
	}
	if n := e.count(`SELECT max(rotation_count) FROM refresh_tokens WHERE family_id = $1`, is.FamilyID); n != 2 {
		t.Fatalf("rotation count %d", n)
	}
}

// The spec's five-step theft flow, at the service level (the HTTP version is in internal/app).
func TestTheftFlowRevokesTheWholeFamily(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user(principal.RoleUser)
	victim := e.login(u)
	other := e.login(u) // another device: another family, unaffected
	// 1. The attacker copies the victim's refresh token.
	stolen := victim.RefreshToken
	// 2. The victim refreshes: the stolen token is now revoked.
	e.clock.Advance(5 * time.Minute)
	victim2, err := e.svc.Refresh(t.Context(), victim.RefreshToken, meta, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 3. The attacker presents the stolen token, after the grace window.
	e.clock.Advance(auth.RefreshGrace + time.Second)
	attacker := auth.Meta{IP: "203.0.113.66", UserAgent: "curl/8"}
	_, err = e.svc.Refresh(t.Context(), stolen, attacker, nil)
	mustUnauthenticated(t, err, "reused token")
	// 4. The whole family is revoked, and the event recorded with the attacker's address.
	if n := e.count(`SELECT count(*) FROM refresh_tokens WHERE family_id = $1 AND NOT is_revoked`, victim.FamilyID); n != 0 {
		t.Fatalf("%d live tokens left in the family", n)
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'refresh_token_reuse_detected' AND user_id = $1 AND ip_address = $2 AND details->>'session' = $3`,
		u.ID, attacker.IP, victim.FamilyID); n != 1 {
		t.Fatalf("%d reuse audit entries", n)
	}
	// 5. Both are logged out: the victim's current refresh token fails, and the session's
	// access tokens are refused at once.
	_, err = e.svc.Refresh(t.Context(), victim2.RefreshToken, meta, nil)
	mustUnauthenticated(t, err, "victim's refresh after theft")
	_, err = e.authenticate(victim2.AccessToken)
	mustUnauthenticated(t, err, "victim's access token after theft")
	// The user's other session lives on.
	if _, err := e.authenticate(other.AccessToken); err != nil {
		t.Fatalf("other session's access refused: %v", err)
	}
	if _, err := e.svc.Refresh(t.Context(), other.RefreshToken, meta, nil); err != nil {
		t.Fatalf("other session's refresh refused: %v", err)
	}
}

// Concurrent refresh: the immediately previous token, within the grace window, answers
// the same successor and revokes nothing; past the window it is reuse.
func TestRefreshGraceWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	is := e.login(e.user(principal.RoleUser))

	const tabs = 8
	results := make([]auth.Issued, tabs)
	errs := make([]error, tabs)
	var wg sync.WaitGroup
	for i := range tabs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = e.svc.Refresh(context.Background(), is.RefreshToken, meta, nil)
		}()
	}
	wg.Wait()
	for i := range tabs {
		if errs[i] != nil {
			t.Fatalf("tab %d: %v", i, errs[i])
		}
		if results[i].RefreshToken != results[0].RefreshToken {
			t.Fatalf("tabs got different successors")
		}
	}
	if n := e.count(`SELECT count(*) FROM refresh_tokens WHERE family_id = $1`, is.FamilyID); n != 2 {
		t.Fatalf("%d tokens in the family, want the original and one successor", n)
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'refresh_token_reuse_detected'`); n != 0 {
		t.Fatal("concurrent refresh counted as theft")
	}

	// Still inside the window (30 s after the rotation): same successor again.
	e.clock.Advance(auth.RefreshGrace)
	again, err := e.svc.Refresh(t.Context(), is.RefreshToken, meta, nil)
	if err != nil || again.RefreshToken != results[0].RefreshToken {
		t.Fatalf("inside the grace window: %v", err)
	}
	// Past the window the previous token is reuse: the family dies.
	e.clock.Advance(time.Second)
	_, err = e.svc.Refresh(t.Context(), is.RefreshToken, meta, nil)
	mustUnauthenticated(t, err, "previous token after the window")
	_, err = e.svc.Refresh(t.Context(), results[0].RefreshToken, meta, nil)
	mustUnauthenticated(t, err, "current token after reuse")
	// One detection revoked the family; the later attempt with its dead token is recorded too.
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'refresh_token_reuse_detected' AND (details->>'tokens_revoked')::int > 0`); n != 1 {
		t.Fatalf("%d revoking reuse entries", n)
	}
}

// The grace covers only the immediately previous token: once its successor rotated too,
// presenting it is reuse even inside the window.
func TestRefreshGraceOnlyForTheImmediatelyPreviousToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	is := e.login(e.user(principal.RoleUser))
	t1, err := e.svc.Refresh(t.Context(), is.RefreshToken, meta, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(5 * time.Second)
	t2, err := e.svc.Refresh(t.Context(), t1.RefreshToken, meta, nil)
	if err != nil {
		t.Fatal(err)
	}
	// t1 is the immediately previous token: same successor.
	if again, err := e.svc.Refresh(t.Context(), t1.RefreshToken, meta, nil); err != nil || again.RefreshToken != t2.RefreshToken {
		t.Fatalf("immediately previous token: %v", err)
	}
	// The original is two rotations back: reuse, even 5 s after its rotation.
	_, err = e.svc.Refresh(t.Context(), is.RefreshToken, meta, nil)
	mustUnauthenticated(t, err, "token two rotations back")
	_, err = e.svc.Refresh(t.Context(), t2.RefreshToken, meta, nil)
	mustUnauthenticated(t, err, "current token after reuse")
}

func TestRefreshRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user(principal.RoleUser)
	a := e.login(u)
	for name, tok := range map[string]string{"empty": "", "unknown": "A" + a.RefreshToken[1:], "huge": strings.Repeat("a", 500), "access token": a.AccessToken} {
		_, err := e.svc.Refresh(t.Context(), tok, meta, nil)
		mustUnauthenticated(t, err, name)
	}
	// An expired refresh token is refused, without treating it as theft.
	e.clock.Advance(auth.RefreshTTL)
	_, err := e.svc.Refresh(t.Context(), a.RefreshToken, meta, nil)
	mustUnauthenticated(t, err, "expired")
	if n := e.count(`SELECT count(*) FROM refresh_tokens WHERE is_revoked`); n != 0 {
		t.Fatal("an expired token revoked something")
	}

	// A deactivated user's refresh fails and ends the session.
	e2 := newEnv(t)
	u2 := e2.user(principal.RoleUser)
	b := e2.login(u2)
	e2.exec(`UPDATE users SET is_active = FALSE WHERE id = $1`, u2.ID)
	_, err = e2.svc.Refresh(t.Context(), b.RefreshToken, meta, nil)
	mustUnauthenticated(t, err, "inactive user")
	if n := e2.count(`SELECT count(*) FROM refresh_tokens WHERE revoked_reason = 'account_disabled'`); n != 1 {
		t.Fatal("session of a disabled account not revoked")
	}

	// The verify hook (CSRF of a cookie-borne token) runs before anything changes.
	e3 := newEnv(t)
	c := e3.login(e3.user(principal.RoleUser))
	var seen string
	refuse := errors.New("csrf")
	_, err = e3.svc.Refresh(t.Context(), c.RefreshToken, meta, func(f string) error { seen = f; return refuse })
	if !errors.Is(err, refuse) || seen != c.FamilyID {
		t.Fatalf("verify hook: %v, family %q", err, seen)
	}
	if n := e3.count(`SELECT count(*) FROM refresh_tokens WHERE is_revoked`); n != 0 {
		t.Fatal("a refused verify rotated the token")
	}
}

func TestLogoutRevokesAndBlacklists(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user(principal.RoleUser)
	is := e.login(u)
	e.clock.Advance(time.Minute)
	refreshed, err := e.svc.Refresh(t.Context(), is.RefreshToken, meta, nil)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := e.authenticate(refreshed.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Logout(t.Context(), sess, meta); err != nil {
		t.Fatal(err)
	}
	// The current token and the session's earlier one (still unexpired) are both refused.
	for name, tok := range map[string]string{"current": refreshed.AccessToken, "earlier": is.AccessToken} {
		_, err := e.authenticate(tok)
		mustUnauthenticated(t, err, name+" access token after logout")
	}
	_, err = e.svc.Refresh(t.Context(), refreshed.RefreshToken, meta, nil)
	mustUnauthenticated(t, err, "refresh after logout")
	// Redis holds the jti with a TTL of the token's remaining life (+ leeway).
	ttl, err := e.redis.TTL(t.Context(), e.prefix+"bl:"+sess.JTI).Result()
	want := sess.ExpiresAt.Add(auth.Leeway).Sub(e.clock.Now())
	if err != nil || ttl <= 0 || ttl > want || ttl < want-5*time.Second {
		t.Fatalf("Redis TTL %v (%v), want ≈ %v", ttl, err, want)
	}
	if n := e.count(`SELECT count(*) FROM token_blacklist WHERE jti = $1 AND reason = 'logout' AND user_id = $2`, sess.JTI, u.ID); n != 1 {
		t.Fatal("jti not in token_blacklist")
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'logout' AND user_id = $1`, u.ID); n != 1 {
		t.Fatal("logout not audited")
	}
}

// The blacklist is checked in the database when Redis is down, and when Redis lost its
// copy (restart, flush): the copy is then rebuilt from the database.
func TestBlacklistWithoutRedis(t *testing.T) {
	t.Parallel()
	// Redis down for the whole life of the service.
	down := newEnv(t, withRedis(nil))
	is := down.login(down.user(principal.RoleUser))
	sess, _ := down.authenticate(is.AccessToken)
	if err := down.svc.Logout(t.Context(), sess, meta); err != nil {
		t.Fatal(err)
	}
	_, err := down.authenticate(is.AccessToken)
	mustUnauthenticated(t, err, "no Redis")

	// Logout recorded while Redis worked; then the service loses Redis: the DB answers.
	e := newEnv(t)
	u := e.user(principal.RoleUser)
	is = e.login(u)
	keep := e.login(u)
	sess, _ = e.authenticate(is.AccessToken)
	if err := e.svc.Logout(t.Context(), sess, meta); err != nil {
		t.Fatal(err)
	}
	downRC := redisDown()
	calls := &authtest.Calls{}
	downRC.AddHook(calls)
	broken := auth.New(auth.Options{Pool: e.pool, Redis: downRC, Secret: secret, Clock: e.clock, KeyPrefix: e.prefix})
	r := bearer(is.AccessToken)
	if _, err := broken.Authenticate(r); err == nil {
		t.Fatal("blacklisted token accepted while Redis is down")
	}
	if _, err := broken.Authenticate(bearer(keep.AccessToken)); err != nil {
		t.Fatalf("live token refused while Redis is down: %v", err)
	}
	// One failed Redis call, then the database alone until the pause ends.
	if n := calls.N.Load(); n != 1 {
		t.Fatalf("%d Redis calls, want 1 then a pause", n)
	}

	// Redis restarted empty: the marker is gone, so the DB answers and the copy is rebuilt.
	keys, _ := e.redis.Keys(t.Context(), e.prefix+"bl:*").Result()
	if len(keys) == 0 {
		t.Fatal("nothing in Redis after logout")
	}
	e.redis.Del(t.Context(), keys...)
	if _, err := e.authenticate(is.AccessToken); err == nil {
		t.Fatal("blacklisted token accepted after Redis lost its copy")
	}
	if n, _ := e.redis.Exists(t.Context(), e.prefix+"bl:"+sess.JTI, e.prefix+"bl:synced").Result(); n != 2 {
		t.Fatalf("copy not rebuilt (%d of 2 keys)", n)
	}
	if _, err := e.authenticate(keep.AccessToken); err != nil {
		t.Fatalf("live token refused after resync: %v", err)
	}
}

func TestCleanup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user(principal.RoleUser)
	is := e.login(u)
	sess, _ := e.authenticate(is.AccessToken)
	if err := e.svc.Logout(t.Context(), sess, meta); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RequestReset(t.Context(), u.Email, meta); err != nil {
		t.Fatal(err)
	}
	live := e.login(u)
	_ = live
	if n, err := e.svc.CleanupBlacklist(t.Context(), e.clock.Now()); err != nil || n != 0 {
		t.Fatalf("cleanup removed live entries: %d %v", n, err)
	}
	later := e.clock.Now().Add(auth.AccessTTL + time.Minute)
	if n, err := e.svc.CleanupBlacklist(t.Context(), later); err != nil || n != 2 {
		t.Fatalf("blacklist cleanup: %d %v, want 2 (jti and session)", n, err)
	}
	rt, pr, err := e.svc.CleanupTokens(t.Context(), e.clock.Now().Add(2*time.Hour))
	if err != nil || rt != 0 || pr != 1 {
		t.Fatalf("token cleanup after 2 h: refresh %d reset %d %v", rt, pr, err)
	}
	rt, _, err = e.svc.CleanupTokens(t.Context(), e.clock.Now().Add(auth.RefreshTTL+time.Second))
	if err != nil || rt != 2 {
		t.Fatalf("refresh cleanup after 7 days: %d %v", rt, err)
	}
	if err := e.svc.CleanupJob(t.Context(), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
}
