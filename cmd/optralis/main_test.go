package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func runWith(env map[string]string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return out.String(), err
}

func TestMigrateTwiceAndModeSelection(t *testing.T) {
	env := map[string]string{"DATABASE_URL": testenv.EmptyDatabase(t)}
	out, err := runWith(env, "migrate", "--mode", "postgres")
	if err != nil || !strings.Contains(out, "time-series mode postgres, 5 migration(s) applied") {
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
