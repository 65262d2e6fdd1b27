package maintenance_test

import (
	"context"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/alertrules"
	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/maintenance"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func TestNextStart(t *testing.T) {
	start := time.Date(2026, 5, 1, 22, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		s    maintenance.Spec
		now  time.Time
		want *time.Time
	}{
		{"once, ahead", maintenance.Spec{StartsAt: start, Recurrence: "none"}, start.Add(-time.Second), &start},
		{"once, started", maintenance.Spec{StartsAt: start, Recurrence: "none"}, start, nil},
		{"daily, at a start", maintenance.Spec{StartsAt: start, Recurrence: "daily"}, start.AddDate(0, 0, 3), ptr(start.AddDate(0, 0, 4))},
		{"daily, between", maintenance.Spec{StartsAt: start, Recurrence: "daily"}, start.Add(30 * time.Hour), ptr(start.AddDate(0, 0, 2))},
		{"weekly", maintenance.Spec{StartsAt: start, Recurrence: "weekly"}, start.Add(time.Hour), ptr(start.AddDate(0, 0, 7))},
		{"until reached", maintenance.Spec{StartsAt: start, Recurrence: "daily", RecurrenceUntil: ptr(start.AddDate(0, 0, 2))}, start.Add(25 * time.Hour), nil},
		{"until ahead", maintenance.Spec{StartsAt: start, Recurrence: "daily", RecurrenceUntil: ptr(start.AddDate(0, 0, 2).Add(time.Second))}, start.Add(25 * time.Hour), ptr(start.AddDate(0, 0, 2))},
		{"centuries on", maintenance.Spec{StartsAt: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Recurrence: "weekly"}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ptr(time.Date(9999, 1, 4, 0, 0, 0, 0, time.UTC))}, // 1 Jan 0001 and 4 Jan 9999 are Mondays,
	} {
		got := maintenance.NextStart(c.s, c.now)
		if (got == nil) != (c.want == nil) || (got != nil && !got.Equal(*c.want)) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// NextStart agrees with the schema's optralis_window_covers, which the notification
// pipeline uses: the next start is covered, the second before it (between occurrences)
// is not, and no instant between now and it starts an occurrence.
func TestNextStartAgreesWithTheSchema(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	ctx := context.Background()
	start := time.Date(2026, 3, 28, 23, 30, 0, 0, time.UTC) // across a DST change in Europe: UTC has none
	specs := []maintenance.Spec{
		{StartsAt: start, DurationSeconds: 3600, Recurrence: "none"},
		{StartsAt: start, DurationSeconds: 3600, Recurrence: "daily"},
		{StartsAt: start, DurationSeconds: 7200, Recurrence: "weekly", RecurrenceUntil: ptr(start.AddDate(0, 0, 15))},
		{StartsAt: start, DurationSeconds: 600, Recurrence: "daily", RecurrenceUntil: ptr(start.AddDate(0, 0, 3).Add(time.Minute))},
	}
	for i, s := range specs {
		for h := -2; h < 24*25; h += 7 {
			now := start.Add(time.Duration(h) * time.Hour)
			next := maintenance.NextStart(s, now)
			if next == nil {
				// Nothing starts later: an instant well after now is not covered... unless it
				// is the occurrence running now.
				var covered bool
				later := now.Add(time.Duration(s.DurationSeconds)*time.Second + 30*24*time.Hour)
				if err := pool.QueryRow(ctx, `SELECT optralis_window_covers($1, $2, $3, $4, $5)`,
					s.StartsAt, s.DurationSeconds, s.Recurrence, s.RecurrenceUntil, later).Scan(&covered); err != nil {
					t.Fatal(err)
				}
				if covered {
					t.Errorf("window %d at %v: no next start, yet %v is covered", i, now, later)
				}
				continue
			}
			var at, before bool
			if err := pool.QueryRow(ctx, `SELECT optralis_window_covers($1, $2, $3, $4, $5), optralis_window_covers($1, $2, $3, $4, $6)`,
				s.StartsAt, s.DurationSeconds, s.Recurrence, s.RecurrenceUntil, *next, next.Add(-time.Second)).Scan(&at, &before); err != nil {
				t.Fatal(err)
			}
			if !at || before || !next.After(now) {
				t.Errorf("window %d at %v: next start %v (covered %v, second before covered %v)", i, now, next, at, before)
			}
		}
	}
}

// Another client's group or machine as a scope is a 400 naming the member, never a
// foreign-key 500; another client's window is not found.
func TestScopeAndTenant(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	ctx := context.Background()
	a, b := testenv.Client(t, pool, "Pro"), testenv.Client(t, pool, "Pro")
	theirs := testenv.Machine(t, pool, b, "theirs")
	body := func(js string) maintenance.Body {
		var out maintenance.Body
		if err := jsonUnmarshal(js, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	_, err := maintenance.Create(ctx, pool, alertrules.Actor{ClientID: a},
		body(`{"name":"x","starts_at":"2026-06-01T00:00:00Z","duration_seconds":60,"machine_id":"`+theirs+`"}`), t0)
	if e, ok := apperr.As(err); !ok || e.Code != apperr.Invalid || e.Fields["machine_id"] == "" {
		t.Fatalf("another client's machine: %v", err)
	}
	w, err := maintenance.Create(ctx, pool, alertrules.Actor{ClientID: b},
		body(`{"name":"x","starts_at":"2026-06-01T00:00:00.9Z","duration_seconds":60,"machine_id":"`+theirs+`"}`), t0)
	if err != nil || !w.StartsAt.Equal(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("create: %+v %v", w, err)
	}
	if _, err := maintenance.Get(ctx, pool, a, w.ID, t0); err != maintenance.ErrNotFound && !isNotFound(err) {
		t.Fatalf("another client's window: %v", err)
	}
	if err := maintenance.Delete(ctx, pool, alertrules.Actor{ClientID: a}, w.ID, t0); !isNotFound(err) {
		t.Fatalf("delete another client's window: %v", err)
	}
	if _, err := maintenance.Get(ctx, pool, b, w.ID, t0); err != nil {
		t.Fatalf("the window went: %v", err)
	}
}

func isNotFound(err error) bool {
	e, ok := apperr.As(err)
	return ok && e.Code == apperr.NotFound
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
