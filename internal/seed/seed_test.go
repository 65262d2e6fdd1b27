package seed_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/seed"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestSeedCreatesOnceWithGeneratedPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	now := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	first, err := seed.Run(ctx, pool, "", true, now)
	if err != nil {
		t.Fatal(err)
	}
	if !first.AdminCreated || first.GeneratedPassword == "" || first.DemoClientID == "" {
		t.Fatalf("first = %+v", first)
	}
	var hash, role string
	var mustChange bool
	var clientID *string
	if err := pool.QueryRow(ctx, `SELECT password_hash, role, must_change_password, client_id FROM users WHERE email = $1`, seed.AdminEmail).
		Scan(&hash, &role, &mustChange, &clientID); err != nil {
		t.Fatal(err)
	}
	if cost, _ := bcrypt.Cost([]byte(hash)); cost != seed.BcryptCost {
		t.Fatalf("bcrypt cost %d", cost)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(first.GeneratedPassword)) != nil {
		t.Fatal("stored hash does not match the printed password")
	}
	if role != "platform_admin" || !mustChange || clientID != nil {
		t.Fatalf("admin row: role %s must_change %v client %v", role, mustChange, clientID)
	}
	// Every timestamp comes from the clock passed in, the licence's year included.
	var userTimes, clientTimes int
	var expires time.Time
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE email = $1 AND password_changed_at = $2 AND created_at = $2 AND updated_at = $2`,
		seed.AdminEmail, now).Scan(&userTimes); err != nil || userTimes != 1 {
		t.Fatalf("admin timestamps not from the clock: %d rows, %v", userTimes, err)
	}
	if err := pool.QueryRow(ctx, `SELECT license_expires_at, (created_at = $2 AND updated_at = $2)::int FROM clients WHERE id = $1`,
		first.DemoClientID, now).Scan(&expires, &clientTimes); err != nil || clientTimes != 1 || !expires.Equal(now.AddDate(1, 0, 0)) {
		t.Fatalf("demo client: expires %v, stamped %d, %v", expires, clientTimes, err)
	}
	second, err := seed.Run(ctx, pool, "", true, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if second.AdminCreated || second.GeneratedPassword != "" || second.DemoClientID != first.DemoClientID {
		t.Fatalf("second run was not idempotent: %+v", second)
	}
}

func TestGeneratedPasswordsMeetPolicy(t *testing.T) {
	classes := []*regexp.Regexp{regexp.MustCompile(`[A-Z]`), regexp.MustCompile(`[a-z]`), regexp.MustCompile(`[0-9]`), regexp.MustCompile(`[^A-Za-z0-9]`)}
	seen := map[string]bool{}
	for range 200 {
		pw, err := seed.GeneratePassword(12)
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) < 12 || seen[pw] {
			t.Fatalf("bad or repeated password %q", pw)
		}
		seen[pw] = true
		for _, c := range classes {
			if !c.MatchString(pw) {
				t.Fatalf("%q lacks %s", pw, c)
			}
		}
	}
}
