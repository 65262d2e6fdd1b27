package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/routes"
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
	if err != nil || !strings.Contains(out, fmt.Sprintf("time-series mode postgres, %d migration(s) applied", postgresMigrations(t))) ||
		!strings.Contains(out, "initial aggregate refresh done") {
		t.Fatalf("first migrate: %q %v", out, err)
	}
	out, err = runWith(env, "migrate")
	if err != nil || !strings.Contains(out, "0 migration(s) applied") || strings.Contains(out, "refresh") {
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

func TestJobRunCleanup(t *testing.T) {
	pool := testenv.NewDB(t, "postgres")
	ctx := context.Background()
	client := testenv.Client(t, pool, "Pro")
	machine := testenv.Machine(t, pool, client, "web-01")
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for _, age := range []int{89, 91, 120} {
		if _, err := pool.Exec(ctx, `INSERT INTO metrics (machine_id, recorded_at, cpu_percent, ram_percent) VALUES ($1, $2, 1, 1)`,
			machine, now.AddDate(0, 0, -age)); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"DATABASE_URL": pool.Config().ConnString()}
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"job", "run", "cleanup", "--now", now.Format(time.RFC3339)}, func(k string) string { return env[k] }, &out, &errb); err != nil {
		t.Fatalf("job run cleanup: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "job cleanup ran at 2026-11-24T10:00:00Z") {
		t.Errorf("stdout = %q", out.String())
	}
	if want := "[Cleanup] Deleted 2 rows from metrics for client " + client; !strings.Contains(errb.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, errb.String())
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM metrics WHERE machine_id = $1`, machine).Scan(&left); err != nil || left != 1 {
		t.Fatalf("%d rows left (%v), want the 89-day-old one", left, err)
	}
	// The name may follow the flags; the run is idempotent.
	errb.Reset()
	if err := run(ctx, []string{"job", "run", "--now", now.Format(time.RFC3339), "cleanup"}, func(k string) string { return env[k] }, &out, &errb); err != nil ||
		strings.Contains(errb.String(), "[Cleanup] Deleted") {
		t.Fatalf("second run: %v\n%s", err, errb.String())
	}

	out.Reset()
	if err := run(ctx, []string{"job", "list"}, func(string) string { return "" }, &out, &errb); err != nil ||
		!strings.Contains(out.String(), "cleanup") || !strings.Contains(out.String(), "rate(1 hour)") {
		t.Errorf("job list: %q %v", out.String(), err)
	}
	var names []string
	for _, j := range routes.Jobs() {
		names = append(names, j.Name)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"job", "run", "frobnicate"}, `unknown job "frobnicate"; the jobs are ` + strings.Join(names, ", ")},
		{[]string{"job", "run"}, "which job? one of " + strings.Join(names, ", ")},
		{[]string{"job", "run", "cleanup", "--now", "yesterday"}, `--now "yesterday" is not an RFC 3339 time`},
		{[]string{"job", "wat"}, `unknown subcommand "wat"`},
	} {
		if _, err := runWith(env, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}
