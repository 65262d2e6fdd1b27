package migrate_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv"
)

// TestAutoModeSaysWhy: the chosen mode and the reason are logged and returned.
func TestAutoModeSaysWhy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.Pool(t, testenv.EmptyDatabase(t), db.ToolProfile())
	ts, err := migrate.DetectTimescale(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	res, err := migrate.Run(ctx, pool, migrate.ModeAuto, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	want := migrate.ModePostgres
	if ts.Usable() {
		want = migrate.ModeTimescale
	}
	if res.Mode != want || res.Reason == "" {
		t.Fatalf("mode %q (%q), want %q with a reason (detected %+v)", res.Mode, res.Reason, want, ts)
	}
	if !strings.Contains(logs.String(), `"msg":"time-series mode `+want+`: `) || !strings.Contains(logs.String(), `"reason":`) {
		t.Fatalf("the choice is not logged:\n%s", logs.String())
	}
	// A second run keeps the recorded mode and says so.
	res, err = migrate.Run(ctx, pool, migrate.ModeAuto, testenv.Discard())
	if err != nil || !strings.Contains(res.Reason, "recorded mode wins") {
		t.Fatalf("second run: %q %v", res.Reason, err)
	}
}
