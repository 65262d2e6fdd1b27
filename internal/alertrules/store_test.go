package alertrules_test

import (
	"context"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/alertrules"
	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

func patch(t *testing.T, js string) alertrules.Patch {
	t.Helper()
	var b alertrules.Body
	if err := json.Unmarshal([]byte(js), &b); err != nil {
		t.Fatal(err)
	}
	p, bad := b.Parse()
	if len(bad) > 0 {
		t.Fatal(bad)
	}
	return p
}

// Concurrent changes and deletes of one rule with open alerts: each answers success or
// "not found", never a database error; every firing alert ends resolved exactly once and
// no episode is left open on a rule that is gone.
func TestConcurrentChangesAndDelete(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	ctx := context.Background()
	client := testenv.Client(t, pool, "Pro")
	a := alertrules.Actor{ClientID: client}
	rule, err := alertrules.Create(ctx, pool, a, patch(t, `{"name":"cpu","kind":"metric","metric":"cpu","threshold":90}`), t0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		m := testenv.Machine(t, pool, client, "m-"+string(rune('a'+i)))
		state := "firing"
		if i%2 == 1 {
			state = "pending"
		}
		if _, err := pool.Exec(ctx, `INSERT INTO alert_rule_history (client_id, machine_id, rule_id, rule_name, metric_type, severity, state,
			started_at, triggered_at) VALUES ($1, $2, $3, 'cpu', 'cpu', 'warning', $4::text, $5, CASE WHEN $4::text = 'firing' THEN $5::timestamptz END)`,
			client, m, rule.ID, state, t0.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	toRAM, disable := patch(t, `{"metric":"ram"}`), patch(t, `{"enabled":false}`)
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var err error
			switch i % 3 {
			case 0:
				_, err = alertrules.Delete(ctx, pool, a, rule.ID, t0)
			case 1:
				_, _, err = alertrules.Update(ctx, pool, a, rule.ID, toRAM, t0)
			default:
				_, _, err = alertrules.Update(ctx, pool, a, rule.ID, disable, t0)
			}
			if e, ok := apperr.As(err); err != nil && !(ok && e.Code == apperr.NotFound) {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent change: %v", err)
	}
	var open, resolved, pending int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE resolved_at IS NULL), count(*) FILTER (WHERE state = 'resolved'),
		count(*) FILTER (WHERE state = 'pending') FROM alert_rule_history WHERE client_id = $1`, client).Scan(&open, &resolved, &pending); err != nil {
		t.Fatal(err)
	}
	if open != 0 || resolved != 10 || pending != 0 {
		t.Fatalf("after the changes: %d open, %d resolved, %d pending; want 0, 10, 0", open, resolved, pending)
	}
	if _, err := alertrules.Get(ctx, pool, client, rule.ID); err == nil {
		t.Fatal("the rule survived its deletes")
	}
	// Another client's rule: not found, whatever the body.
	other := testenv.Client(t, pool, "Pro")
	if _, _, err := alertrules.Update(ctx, pool, alertrules.Actor{ClientID: other}, rule.ID, patch(t, `{"name":"x"}`), t0); err == nil {
		t.Fatal("updated a rule of no such client")
	}
}
