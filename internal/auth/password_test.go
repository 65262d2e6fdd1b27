package auth_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/principal"
)

func TestPasswordPolicy(t *testing.T) {
	ok := []string{"Correct-Horse-7", "Aa1!aaaaaaaa", "Éléphant-rose-42", "Pass word 1234!", "Zz9" + strings.Repeat("€", 9) + "a"}
	for _, p := range ok {
		if problem := auth.PasswordProblem(p); problem != "" {
			t.Errorf("%q refused: %s", p, problem)
		}
	}
	bad := map[string]string{
		"Aa1!aaaaaaa":                    "at least 12",
		"aaaaaaaaaaa1!":                  "upper-case",
		"AAAAAAAAAAA1!":                  "lower-case",
		"Aaaaaaaaaaaa!":                  "digit",
		"Aaaaaaaaaaaa1":                  "special",
		"Aa1!" + strings.Repeat("a", 69): "72 bytes",
		"Aa1!aaaaaaaa\n":                 "control",
		"Aa1!aaaaaaaa\xff":               "UTF-8",
		"abcdefghijkl":                   "upper-case letter, a digit, a special",
		"Aa1!" + strings.Repeat("€", 23): "72 bytes",
	}
	for p, want := range bad {
		if problem := auth.PasswordProblem(p); !strings.Contains(problem, want) {
			t.Errorf("%q: %q, want mention of %q", p, problem, want)
		}
	}
}

const newPassword = "Another-Good-Pass-99"

func TestChangePassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user(principal.RoleAdmin)
	e.exec(`UPDATE users SET must_change_password = TRUE WHERE id = $1`, u.ID)
	mine := e.login(u)
	if !mine.PasswordChangeRequired {
		t.Fatal("first login not flagged")
	}
	other := e.login(u)
	sess, err := e.authenticate(mine.AccessToken)
	if err != nil || !sess.PasswordChangeRequired {
		t.Fatalf("session: %+v %v", sess, err)
	}
	invalid := func(err error, field string) {
		t.Helper()
		ae, ok := apperr.As(err)
		if !ok || ae.Code != apperr.Invalid || ae.Fields[field] == "" {
			t.Fatalf("want invalid %s, got %v", field, err)
		}
	}
	_, err = e.svc.ChangePassword(t.Context(), sess, "wrong", newPassword, meta)
	invalid(err, "current_password")
	_, err = e.svc.ChangePassword(t.Context(), sess, u.Password, "short", meta)
	invalid(err, "new_password")
	_, err = e.svc.ChangePassword(t.Context(), sess, u.Password, u.Password, meta)
	invalid(err, "new_password")

	e.clock.Advance(time.Minute)
	is, err := e.svc.ChangePassword(t.Context(), sess, u.Password, newPassword, meta)
	if err != nil {
		t.Fatal(err)
	}
	if is.PasswordChangeRequired || is.FamilyID != mine.FamilyID || is.RefreshToken != "" {
		t.Fatalf("after change: %+v", is)
	}
	s2, err := e.authenticate(is.AccessToken)
	if err != nil || s2.PasswordChangeRequired {
		t.Fatalf("new access token: %+v %v", s2, err)
	}
	// This session continues; the user's other session ends at once.
	if _, err := e.svc.Refresh(t.Context(), mine.RefreshToken, meta, nil); err != nil {
		t.Fatalf("own session ended: %v", err)
	}
	_, err = e.authenticate(other.AccessToken)
	mustUnauthenticated(t, err, "other session's access token")
	_, err = e.svc.Refresh(t.Context(), other.RefreshToken, meta, nil)
	mustUnauthenticated(t, err, "other session's refresh token")
	// Old password refused, new accepted; the expiry clock restarted.
	if _, err := e.svc.Login(t.Context(), u.Email, u.Password, meta); err == nil {
		t.Fatal("old password still works")
	}
	after := e.login(user{Email: u.Email, Password: newPassword})
	if !after.User.PasswordChangedAt.Equal(e.clock.Now()) || after.User.MustChangePassword {
		t.Fatalf("user after change: %+v", after.User)
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'password_changed' AND user_id = $1 AND (details->>'sessions_ended')::int = 1`, u.ID); n != 1 {
		t.Fatal("change not audited")
	}
}

// New passwords are stored with bcrypt cost 12 by the production hasher.
func TestPasswordsHashedAtCost12(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *auth.Options) { o.Hasher = nil })
	id, err := e.svc.CreateUser(t.Context(), auth.NewUser{Email: "cost@example.com", Role: principal.RoleUser, ClientID: e.client, Password: goodPassword})
	if err != nil {
		t.Fatal(err)
	}
	var hash string
	if err := e.pool.QueryRow(t.Context(), `SELECT password_hash FROM users WHERE id = $1`, id).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if c, err := bcrypt.Cost([]byte(hash)); err != nil || c != 12 {
		t.Fatalf("cost %d %v", c, err)
	}
}

// An expired password (90 days) requires a change, checked at each request: a password
// expiring while an access token lives is caught at once.
func TestPasswordExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user(principal.RoleUser)
	e.exec(`UPDATE users SET password_changed_at = $2 WHERE id = $1`, u.ID, e.clock.Now().Add(-auth.PasswordMaxAge+5*time.Minute))
	is := e.login(u)
	if is.PasswordChangeRequired {
		t.Fatal("required 5 minutes early")
	}
	s, _ := e.authenticate(is.AccessToken)
	if s.PasswordChangeRequired {
		t.Fatal("session flagged early")
	}
	e.clock.Advance(5 * time.Minute)
	s, err := e.authenticate(is.AccessToken)
	if err != nil || !s.PasswordChangeRequired {
		t.Fatalf("expired password not flagged on a live token: %+v %v", s, err)
	}
}

func resetTokenFrom(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`reset-password\?token=([A-Za-z0-9_-]{43})`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no reset link in %q", body)
	}
	return m[1]
}

func TestForgotAndReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user(principal.RoleUser)
	session := e.login(u)

	// Unknown, malformed and inactive addresses: nothing sent, no error.
	inactive := e.user(principal.RoleUser)
	e.exec(`UPDATE users SET is_active = FALSE WHERE id = $1`, inactive.ID)
	for _, addr := range []string{"nobody@example.com", "garbage", inactive.Email} {
		if err := e.svc.RequestReset(t.Context(), addr, meta); err != nil {
			t.Fatal(err)
		}
	}
	if len(e.mailer.Sent()) != 0 {
		t.Fatalf("mail sent for unknown addresses: %+v", e.mailer.Sent())
	}

	if err := e.svc.RequestReset(t.Context(), strings.ToUpper(u.Email), meta); err != nil {
		t.Fatal(err)
	}
	sent := e.mailer.Sent()
	if len(sent) != 1 || sent[0].To != u.Email {
		t.Fatalf("sent: %+v", sent)
	}
	token := resetTokenFrom(t, sent[0].Body)
	if n := e.count(`SELECT count(*) FROM password_reset_tokens WHERE user_id = $1 AND token_hash = $2 AND expires_at = $3`, u.ID, sha(token), e.clock.Now().Add(time.Hour)); n != 1 {
		t.Fatal("reset token not stored hashed with a 1 h expiry")
	}

	// A weak password or the current one is refused without using the token up.
	err := e.svc.ResetPassword(t.Context(), token, "weak", meta)
	if ae, ok := apperr.As(err); !ok || ae.Fields["new_password"] == "" {
		t.Fatalf("weak: %v", err)
	}
	err = e.svc.ResetPassword(t.Context(), token, u.Password, meta)
	if ae, ok := apperr.As(err); !ok || ae.Fields["new_password"] == "" {
		t.Fatalf("current password: %v", err)
	}
	if err := e.svc.ResetPassword(t.Context(), token, newPassword, meta); err != nil {
		t.Fatal(err)
	}
	// Single use.
	err = e.svc.ResetPassword(t.Context(), token, "Yet-Another-Pass-77", meta)
	if ae, ok := apperr.As(err); !ok || ae.Fields["token"] == "" {
		t.Fatalf("second use: %v", err)
	}
	// Every session of the user ended; the new password works.
	_, err = e.authenticate(session.AccessToken)
	mustUnauthenticated(t, err, "access after reset")
	_, err = e.svc.Refresh(t.Context(), session.RefreshToken, meta, nil)
	mustUnauthenticated(t, err, "refresh after reset")
	e.login(user{Email: u.Email, Password: newPassword})
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'password_reset' AND user_id = $1`, u.ID); n != 1 {
		t.Fatal("reset not audited")
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE details::text LIKE '%' || $1 || '%'`, token); n != 0 {
		t.Fatal("reset token in the audit trail")
	}
}

func TestResetTokenExpiresAfterAnHour(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user(principal.RoleUser)
	if err := e.svc.RequestReset(t.Context(), u.Email, meta); err != nil {
		t.Fatal(err)
	}
	first := resetTokenFrom(t, e.mailer.Sent()[0].Body)
	// A second request replaces the first link.
	if err := e.svc.RequestReset(t.Context(), u.Email, meta); err != nil {
		t.Fatal(err)
	}
	second := resetTokenFrom(t, e.mailer.Sent()[1].Body)
	if err := e.svc.ResetPassword(t.Context(), first, newPassword, meta); err == nil {
		t.Fatal("replaced link still works")
	}
	e.clock.Advance(time.Hour)
	if err := e.svc.ResetPassword(t.Context(), second, newPassword, meta); err == nil {
		t.Fatal("link works after an hour")
	}
}

// Two resets racing with one token: exactly one wins.
func TestResetTokenSingleUseUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user(principal.RoleUser)
	if err := e.svc.RequestReset(t.Context(), u.Email, meta); err != nil {
		t.Fatal(err)
	}
	token := resetTokenFrom(t, e.mailer.Sent()[0].Body)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if e.svc.ResetPassword(context.Background(), token, newPassword+string(rune('a'+i)), meta) == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d resets succeeded with one token", wins)
	}
}

func TestResetMailWithoutDashboardURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *auth.Options) { o.DashboardURL = "" })
	u := e.user(principal.RoleUser)
	if err := e.svc.RequestReset(t.Context(), u.Email, meta); err != nil {
		t.Fatal(err)
	}
	body := e.mailer.Sent()[0].Body
	code := regexp.MustCompile(`\n([A-Za-z0-9_-]{43})\n`).FindStringSubmatch(body)
	if code == nil || strings.Contains(body, "http") {
		t.Fatalf("body: %q", body)
	}
	if err := e.svc.ResetPassword(t.Context(), code[1], newPassword, meta); err != nil {
		t.Fatal(err)
	}
}

// A mail failure is logged, not returned: the forgot answer must not depend on it.
func TestResetMailFailureIsSilent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.mailer.Err = errors.New("smtp down")
	u := e.user(principal.RoleUser)
	if err := e.svc.RequestReset(t.Context(), u.Email, meta); err != nil {
		t.Fatalf("mail failure surfaced: %v", err)
	}
	// The work was done: the link was stored and a send attempted, the failure swallowed.
	attempts := e.mailer.Attempts()
	if len(attempts) != 1 || attempts[0].To != u.Email || len(e.mailer.Sent()) != 0 {
		t.Fatalf("send attempts %+v, sent %+v: want one failed attempt to %s", attempts, e.mailer.Sent(), u.Email)
	}
	token := resetTokenFrom(t, attempts[0].Body)
	if n := e.count(`SELECT count(*) FROM password_reset_tokens WHERE user_id = $1 AND token_hash = $2 AND expires_at = $3`,
		u.ID, sha(token), e.clock.Now().Add(auth.ResetTTL)); n != 1 {
		t.Fatal("the reset token of the failed mail is not stored")
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'password_reset_requested' AND user_id = $1`, u.ID); n != 1 {
		t.Fatalf("%d reset requests audited, want 1", n)
	}
}

func TestUsersWithPasswordExpiringOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := e.clock.Now() // 2026-04-01 09:00 UTC
	day := func(d int) time.Time { return now.AddDate(0, 0, d) }
	mk := func(changed time.Time, mustChange, active bool) string {
		u := e.user(principal.RoleUser)
		e.exec(`UPDATE users SET password_changed_at = $2, must_change_password = $3, is_active = $4 WHERE id = $1`, u.ID, changed, mustChange, active)
		return u.ID
	}
	// Expiring on now+30 days means changed on now+30-90 = now-60 days (any time that day).
	in30a := mk(time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC), false, true)
	in30b := mk(time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC), false, true)
	mk(time.Date(2026, 1, 30, 23, 59, 59, 0, time.UTC), false, true) // a day earlier
	mk(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), false, true)     // a day later
	mk(time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC), true, true)    // must change anyway
	mk(time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC), false, false)  // inactive
	in10 := mk(day(10).Add(-auth.PasswordMaxAge), false, true)
	in3 := mk(day(3).Add(-auth.PasswordMaxAge), false, true)

	check := func(d int, want ...string) {
		t.Helper()
		users, err := e.svc.UsersWithPasswordExpiringOn(t.Context(), day(d))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range users {
			got = append(got, u.ID)
			if u.Email == "" || u.PasswordExpiresAt().Format("2006-01-02") != day(d).Format("2006-01-02") {
				t.Errorf("user %+v does not expire on %s", u, day(d).Format("2006-01-02"))
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("day +%d: %v, want %v", d, got, want)
		}
	}
	check(30, in30a, in30b)
	check(10, in10)
	check(3, in3)
	check(5)
}

func TestCreateUserErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user(principal.RoleUser)
	cases := map[string]struct {
		nu   auth.NewUser
		want error
	}{
		"email taken (any case)": {auth.NewUser{Email: strings.ToUpper(u.Email), Role: principal.RoleUser, ClientID: e.client, Password: goodPassword}, auth.ErrEmailTaken},
		"unknown client":         {auth.NewUser{Email: "a@example.com", Role: principal.RoleUser, ClientID: "00000000-0000-0000-0000-000000000001", Password: goodPassword}, auth.ErrUnknownClient},
		"admin with a client":    {auth.NewUser{Email: "b@example.com", Role: principal.RolePlatformAdmin, ClientID: e.client, Password: goodPassword}, auth.ErrInvalidRole},
		"user without a client":  {auth.NewUser{Email: "c@example.com", Role: principal.RoleUser, Password: goodPassword}, auth.ErrInvalidRole},
	}
	for name, tc := range cases {
		if _, err := e.svc.CreateUser(t.Context(), tc.nu); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	for name, nu := range map[string]auth.NewUser{
		"bad email":     {Email: "nope", Role: principal.RoleUser, ClientID: e.client, Password: goodPassword},
		"weak password": {Email: "d@example.com", Role: principal.RoleUser, ClientID: e.client, Password: "password"},
	} {
		if _, err := e.svc.CreateUser(t.Context(), nu); err == nil {
			t.Errorf("%s accepted", name)
		} else if ae, ok := apperr.As(err); !ok || ae.Code != apperr.Invalid {
			t.Errorf("%s: %v", name, err)
		}
	}
}
