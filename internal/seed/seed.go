// Package seed creates the first platform administrator and a demo client on a new database.
package seed

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/optralis/optralis/internal/db"
)

// BcryptCost is the spec's password hashing cost.
const BcryptCost = 12

// AdminEmail is the platform administrator the seed creates.
const AdminEmail = "admin@optralis.local"

// DemoClientName names the demo tenant of the local stack.
const DemoClientName = "Demo MSP"

// Result says what the seed did. Password is set only when the admin was created with a
// generated password, which is then shown once and never stored in clear.
type Result struct {
	AdminCreated      bool
	GeneratedPassword string
	DemoClientID      string
}

// Run creates the platform admin (password given, or generated) and the demo client when
// they do not exist yet, stamping the rows (and starting the demo licence's year) at now.
// It is idempotent. The admin must change the password at first login.
func Run(ctx context.Context, pool *pgxpool.Pool, adminPassword string, withDemoClient bool, now time.Time) (Result, error) {
	var res Result
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE LOWER(email) = LOWER($1))`, AdminEmail).Scan(&exists); err != nil {
		return res, fmt.Errorf("seed: %w", err)
	}
	if !exists {
		pw := adminPassword
		if pw == "" {
			var err error
			if pw, err = GeneratePassword(20); err != nil {
				return res, err
			}
			res.GeneratedPassword = pw
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(pw), BcryptCost)
		if err != nil {
			return res, fmt.Errorf("seed: hashing: %w", err)
		}
		tag, err := pool.Exec(ctx, `
			INSERT INTO users (email, password_hash, name, role, client_id, must_change_password,
			    password_changed_at, created_at, updated_at)
			VALUES ($1, $2, 'Platform administrator', 'platform_admin', NULL, TRUE, $3, $3, $3)
			ON CONFLICT (LOWER(email)) DO NOTHING`, AdminEmail, string(hash), now)
		if err != nil {
			return res, fmt.Errorf("seed: admin: %w", err)
		}
		res.AdminCreated = tag.RowsAffected() == 1
		if !res.AdminCreated {
			res.GeneratedPassword = "" // another process seeded first
		}
	}
	if withDemoClient {
		err := pool.QueryRow(ctx, `SELECT id FROM clients WHERE name = $1`, DemoClientName).Scan(&res.DemoClientID)
		if db.IsNoRows(err) {
			err = pool.QueryRow(ctx, `
				INSERT INTO clients (name, license_tier, max_machines, license_expires_at, created_at, updated_at)
				VALUES ($1, 'Pro', 1000, $2, $3, $3) RETURNING id`, DemoClientName, now.AddDate(1, 0, 0), now).Scan(&res.DemoClientID)
		}
		if err != nil {
			return res, fmt.Errorf("seed: demo client: %w", err)
		}
	}
	return res, nil
}

// GeneratePassword returns a random password of n characters (n >= 12) that satisfies the
// password policy: upper, lower, digit and special character.
func GeneratePassword(n int) (string, error) {
	if n < 12 {
		n = 12
	}
	sets := []string{"ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789", "!@#%^*-_=+?"}
	all := sets[0] + sets[1] + sets[2] + sets[3]
	pick := func(s string) (byte, error) {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(s))))
		if err != nil {
			return 0, err
		}
		return s[i.Int64()], nil
	}
	out := make([]byte, n)
	for i := range out {
		set := all
		if i < len(sets) {
			set = sets[i]
		}
		c, err := pick(set)
		if err != nil {
			return "", err
		}
		out[i] = c
	}
	// Shuffle so the guaranteed classes are not always first.
	for i := len(out) - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return "", err
		}
		out[i], out[j.Int64()] = out[j.Int64()], out[i]
	}
	return string(out), nil
}
