package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/optralis/optralis/internal/testenv"
	"github.com/optralis/optralis/migrations"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func runWith(env map[string]string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return out.String(), err
}

// postgresMigrations counts the migration files a postgres-mode database applies.
func postgresMigrations(t *testing.T) int {
	t.Helper()
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") && !strings.HasSuffix(e.Name(), "_timescale.sql") {
			n++
		}
	}
	return n
}

func TestMigrateTwiceAndModeSelection(t *testing.T) {
	env := map[string]string{"DATABASE_URL": testenv.EmptyDatabase(t)}
	out, err := runWith(env, "migrate", "--mode", "postgres")
	if err != nil || !strings.Contains(out, fmt.Sprintf("time-series mode postgres, %d migration(s) applied", postgresMigrations(t))) {
		t.Fatalf("first migrate: %q %v", out, err)
	}
	out, err = runWith(env, "migrate")
	if err != nil || !strings.Contains(out, "0 migration(s) applied") {
		t.Fatalf("second migrate: %q %v", out, err)
	}
	if _, err := runWith(env, "migrate", "--mode", "timescale"); err == nil || !strings.Contains(err.Error(), "postgres mode") {
		t.Fatalf("switching mode accepted: %v", err)
	}
}

func TestConfigurationRefusals(t *testing.T) {
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{}, []string{"migrate"}, "DATABASE_URL is required"},
		{map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/db"}, []string{"seed"}, "JWT_SECRET is required"},
		{map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/db", "JWT_SECRET": "too-short"}, []string{"seed"}, "JWT_SECRET is too short"},
		{map[string]string{}, []string{"frobnicate"}, "unknown command"},
	}
	for _, tc := range cases {
		_, err := runWith(tc.env, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v with %v: err = %v, want one line with %q", tc.args, tc.env, err, tc.want)
		}
	}
}
