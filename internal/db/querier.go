package db

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/clock"
)

// Querier is what storage code runs its statements on: a *pgxpool.Pool, a *pgxpool.Conn,
// a pgx.Tx or a *Tx. It is the only such interface in the code base.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

var (
	_ Querier = (*pgxpool.Pool)(nil)
	_ Querier = (*pgxpool.Conn)(nil)
	_ Querier = pgx.Tx(nil)
	_ Querier = (*Tx)(nil)
)

// Beginner starts a transaction: a *pgxpool.Pool, a *pgxpool.Conn, or a transaction (a
// savepoint inside it).
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Tx is a transaction and its one instant (WTF Dial's Tx.now): every row the transaction
// writes is stamped with Now, and every time comparison it makes uses Now, so its rows
// share one timestamp and a test with a fixed clock sees fixed times. SQL now() is never
// used for that (it is the database server's clock, not the application's).
type Tx struct {
	pgx.Tx
	// Now is read once from the injected clock when the transaction begins.
	Now time.Time
}

// InTx runs fn in a transaction whose Now is read once from clk: committed when fn returns
// nil, rolled back otherwise (fn's error is returned as it is). Inside another *Tx it opens
// a savepoint that keeps the outer transaction's Now.
func InTx(ctx context.Context, b Beginner, clk clock.Clock, fn func(tx *Tx) error) error {
	if outer, ok := b.(*Tx); ok {
		return InTxAt(ctx, b, outer.Now, fn)
	}
	return InTxAt(ctx, b, clk.Now(), fn)
}

// InTxAt is InTx for a caller that already holds the instant (a job's now, or a handler
// that read the clock before the transaction to compute expiries).
func InTxAt(ctx context.Context, b Beginner, now time.Time, fn func(tx *Tx) error) error {
	return pgx.BeginFunc(ctx, b, func(t pgx.Tx) error {
		return fn(&Tx{Tx: t, Now: now})
	})
}
