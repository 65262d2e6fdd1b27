package db_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv"
)

// ticking is a clock that moves a second forward on every reading and counts them.
type ticking struct {
	mu    sync.Mutex
	at    time.Time
	reads int
}

func (c *ticking) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	c.at = c.at.Add(time.Second)
	return c.at
}

// A transaction reads the clock once: two statements, a nested savepoint included, write
// the same instant, which is the clock's and not the database server's.
func TestInTxFixesNowOnce(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	ctx := context.Background()
	clk := &ticking{at: time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)}
	var txNow time.Time
	err := db.InTx(ctx, pool, clk, func(tx *db.Tx) error {
		txNow = tx.Now
		if _, err := tx.Exec(ctx, `INSERT INTO schema_settings (key, value, updated_at) VALUES ('t1', 'a', $1)`, tx.Now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_settings (key, value, updated_at) VALUES ('t2', 'b', $1)`, tx.Now); err != nil {
			return err
		}
		// A savepoint inside keeps the outer instant, whatever the clock says now.
		return db.InTx(ctx, tx, clk, func(inner *db.Tx) error {
			_, err := inner.Exec(ctx, `INSERT INTO schema_settings (key, value, updated_at) VALUES ('t3', 'c', $1)`, inner.Now)
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if clk.reads != 1 {
		t.Fatalf("the clock was read %d times, want once", clk.reads)
	}
	want := time.Date(2001, 2, 3, 4, 5, 7, 0, time.UTC)
	if !txNow.Equal(want) {
		t.Fatalf("tx.Now = %v, want %v", txNow, want)
	}
	rows, err := pool.Query(ctx, `SELECT updated_at FROM schema_settings WHERE key IN ('t1', 't2', 't3')`)
	if err != nil {
		t.Fatal(err)
	}
	stamps, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		t.Fatal(err)
	}
	if len(stamps) != 3 {
		t.Fatalf("%d rows committed, want 3", len(stamps))
	}
	for _, s := range stamps {
		if !s.Equal(want) {
			t.Fatalf("row stamped %v, want the transaction's %v", s, want)
		}
	}

	// An error rolls everything back and comes out as it went in.
	boom := errors.New("boom")
	err = db.InTxAt(ctx, pool, want, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO schema_settings (key, value, updated_at) VALUES ('t4', 'd', $1)`, tx.Now); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_settings WHERE key = 't4'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rolled-back row present: %d %v", n, err)
	}
}

// The SQLSTATE mapping on real violations provoked on the real schema: the default client
// error per named code, a domain case overriding it, the database's text kept for the log,
// and an unnamed code left internal.
func TestErrorMapsRealViolations(t *testing.T) {
	t.Parallel()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	ctx := context.Background()
	client := testenv.Client(t, pool, "Pro")
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	exec := func(sql string, args ...any) error {
		_, err := pool.Exec(ctx, sql, args...)
		return err
	}
	if err := exec(`INSERT INTO schema_settings (key, value, updated_at) VALUES ('dup', 'x', $1)`, at); err != nil {
		t.Fatal(err)
	}
	// Two sessions: one holds a row lock, the other asks for it without waiting.
	lockErr := func() error {
		holder, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = holder.Rollback(ctx) }()
		if _, err := holder.Exec(ctx, `SELECT 1 FROM clients WHERE id = $1 FOR UPDATE`, client); err != nil {
			t.Fatal(err)
		}
		return exec(`SELECT 1 FROM clients WHERE id = $1 FOR UPDATE NOWAIT`, client)
	}
	timeoutErr := func() error {
		return db.InTxAt(ctx, pool, at, func(tx *db.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 50`); err != nil {
				t.Fatal(err)
			}
			_, err := tx.Exec(ctx, `SELECT pg_sleep(2)`)
			return err
		})
	}
	var noRow string
	cases := []struct {
		name     string
		err      error
		sqlstate string
		code     apperr.Code
	}{
		{"unique", exec(`INSERT INTO schema_settings (key, value, updated_at) VALUES ('dup', 'y', $1)`, at), db.UniqueViolation, apperr.Conflict},
		{"foreign key", exec(`INSERT INTO machines (client_id, hostname, os, arch, created_at, updated_at) VALUES (gen_random_uuid(), 'h', 'linux', 'amd64', $1, $1)`, at),
			db.ForeignKeyViolation, apperr.Conflict},
		{"check", exec(`UPDATE clients SET max_machines = -1 WHERE id = $1`, client), db.CheckViolation, apperr.Invalid},
		{"not null", exec(`UPDATE clients SET name = NULL WHERE id = $1`, client), db.NotNullViolation, apperr.Invalid},
		{"bad uuid", exec(`SELECT 'not-a-uuid'::uuid`), db.InvalidTextRepresentation, apperr.Invalid},
		{"out of range", exec(`SELECT 2147483648::int4`), db.NumericValueOutOfRange, apperr.Invalid},
		{"too long", exec(`UPDATE clients SET name = repeat('x', 300) WHERE id = $1`, client), db.StringDataRightTruncation, apperr.Invalid},
		{"nul in jsonb", exec(`SELECT $1::text::jsonb`, `{"a":"\u0000"}`), db.UntranslatableCharacter, apperr.Invalid},
		{"nul in text", exec(`SELECT $1::text`, "a\x00b"), db.CharacterNotInRepertoire, apperr.Invalid},
		{"invalid utf-8", exec(`SELECT $1::text`, "a\xffb"), db.CharacterNotInRepertoire, apperr.Invalid},
		{"lock not available", lockErr(), db.LockNotAvailable, apperr.Unavailable},
		{"statement timeout", timeoutErr(), db.QueryCanceled, apperr.Unavailable},
		{"agent refused", exec(`SELECT optralis_assert_agent('00ff', gen_random_uuid(), gen_random_uuid(), $1)`, at), db.AgentRefused, apperr.Unauthenticated},
		{"no rows", pool.QueryRow(ctx, `SELECT key FROM schema_settings WHERE key = 'absent'`).Scan(&noRow), db.NoRows, apperr.NotFound},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: the database accepted it", c.name)
			continue
		}
		if got := db.Code(c.err); got != c.sqlstate {
			t.Errorf("%s: db.Code = %q, want %q (%v)", c.name, got, c.sqlstate, c.err)
		}
		mapped := db.Error(c.err, "test: "+c.name)
		ae, ok := apperr.As(mapped)
		if !ok || ae.Code != c.code {
			t.Errorf("%s: mapped to %v, want code %s", c.name, mapped, c.code)
			continue
		}
		// The log keeps the operation and the database's own text; the original error
		// stays reachable.
		if !strings.HasPrefix(mapped.Error(), "test: "+c.name+": ") || !strings.Contains(mapped.Error(), c.err.Error()) || db.Code(mapped) != c.sqlstate {
			t.Errorf("%s: mapped error %q lost the database's error %q", c.name, mapped, c.err)
		}
	}
	if got := db.Code(cases[len(cases)-1].err); got != db.NoRows || !db.IsNoRows(cases[len(cases)-1].err) {
		t.Errorf("no rows: code %q", got)
	}
	if !db.Transient(lockErr()) || db.Transient(cases[0].err) {
		t.Error("Transient: a lock timeout is transient, a unique violation is not")
	}

	// A domain case wins over the default, and errors.Is finds the domain's sentinel.
	taken := apperr.New(apperr.Conflict, "that key is taken")
	err := db.Error(cases[0].err, "settings: insert", db.On(db.NoRows, apperr.New(apperr.NotFound, "x")), db.On(db.UniqueViolation, taken))
	if !errors.Is(err, taken) {
		t.Fatalf("case not applied: %v", err)
	}
	if ae, _ := apperr.As(err); ae != taken {
		t.Fatalf("client sees %v, want the domain message", ae)
	}
	// An already mapped error passes through unchanged (nested storage calls).
	if again := db.Error(err, "outer"); again != err {
		t.Fatalf("re-mapped: %v", again)
	}
	// A code with no client meaning (a syntax error: our bug) stays internal.
	syntax := exec(`SELEC 1`)
	if _, ok := apperr.As(db.Error(syntax, "test: syntax")); ok || db.Code(syntax) != "42601" {
		t.Fatalf("syntax error mapped to a client error: %v", db.Error(syntax, "test: syntax"))
	}
	if db.Error(nil, "nothing") != nil {
		t.Fatal("nil error mapped to non-nil")
	}
}
