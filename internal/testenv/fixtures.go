package testenv

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Client inserts a client with the given licence tier and returns its id.
func Client(t testing.TB, pool *pgxpool.Pool, tier string) string {
	t.Helper()
	var id string
	if err := pool.QueryRow(context.Background(),
		`INSERT INTO clients (name, license_tier, max_machines) VALUES ('Test MSP ' || substr(md5(random()::text), 1, 6), $1, 100) RETURNING id`,
		tier).Scan(&id); err != nil {
		t.Fatalf("fixture client: %v", err)
	}
	return id
}

// Machine inserts a machine of the client and returns its id.
func Machine(t testing.TB, pool *pgxpool.Pool, clientID, hostname string) string {
	t.Helper()
	var id string
	if err := pool.QueryRow(context.Background(),
		`INSERT INTO machines (client_id, hostname, os, arch) VALUES ($1, $2, 'linux', 'amd64') RETURNING id`,
		clientID, hostname).Scan(&id); err != nil {
		t.Fatalf("fixture machine: %v", err)
	}
	return id
}
