package db

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
)

// SQLSTATEs of a server that is going away or not there yet: the whole class 08
// (connection exception) and these.
const (
	AdminShutdown      = "57P01" // admin_shutdown (pg_ctl stop -m fast terminated the session)
	CrashShutdown      = "57P02" // crash_shutdown
	CannotConnectNow   = "57P03" // cannot_connect_now (starting up, shutting down, recovering)
	TooManyConnections = "53300" // too_many_connections
)

// ErrUnavailable is what a client sees when the database cannot be reached: 503, with a
// Retry-After the HTTP layer adds. The message names no host.
var ErrUnavailable = apperr.New(apperr.Unavailable, "the database is unavailable; retry later")

// Unreachable reports whether err says the database server cannot be talked to: a failed
// connection (refused, reset, DNS, TLS, timeout while connecting), a connection lost in the
// middle of a statement, or a server shutting down, starting up or full. It is the one
// classification of outages; a context deadline is not one (see Error).
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	if code := Code(err); code != "" {
		if len(code) == 5 && code[:2] == "08" {
			return true
		}
		switch code {
		case AdminShutdown, CrashShutdown, CannotConnectNow, TooManyConnections:
			return true
		}
		return false
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed)
}

// unavailable reports the errors Error maps to ErrUnavailable: an unreachable server, or a
// deadline that ran out while acquiring a connection or waiting for the server.
func unavailable(err error) bool {
	return Unreachable(err) || errors.Is(err, context.DeadlineExceeded)
}

// AsUnavailable returns ErrUnavailable when err, an error no storage code mapped, is
// unmistakably the database's: a failed connection or an outage SQLSTATE. The HTTP error
// writer uses it so such an error is a 503, not an internal error. A bare network error
// or EOF is not enough here (its origin is unknown); db.Error, which knows, maps those.
func AsUnavailable(err error) (*apperr.Error, bool) {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || (Code(err) != "" && Unreachable(err)) {
		return ErrUnavailable, true
	}
	return nil, false
}

// Outages logs the database's availability as seen by one pool: one line when it becomes
// unreachable (the first failed connection or lost session) and one when it answers again
// (the next successful connection or statement), never one per request. It is a pgx
// tracer: WatchOutages installs it.
type Outages struct {
	logger *slog.Logger

	// state is read lock-free on every statement: the steady state costs one atomic load.
	state atomic.Bool // true: down
	mu    sync.Mutex
	down  bool
	since time.Time
}

// WatchOutages installs an Outages on cfg's connections (unless a tracer is already set)
// and returns it.
func WatchOutages(cfg *pgxpool.Config, logger *slog.Logger) *Outages {
	o := &Outages{logger: logger}
	if cfg.ConnConfig.Tracer == nil {
		cfg.ConnConfig.Tracer = o
	}
	return o
}

// Down reports whether the last observation was a failure.
func (o *Outages) Down() bool { return o.state.Load() }

func (o *Outages) observe(ctx context.Context, err error, connecting bool) {
	if errors.Is(err, context.Canceled) {
		return // the caller gave up (a client went away): nothing learnt about the server
	}
	failed := err != nil && (Unreachable(err) || (connecting && errors.Is(err, context.DeadlineExceeded)))
	if err != nil && !failed {
		return // a statement's own error says nothing about availability
	}
	if o.state.Load() == failed {
		return
	}
	o.mu.Lock()
	if o.down == failed {
		o.mu.Unlock()
		return
	}
	o.down = failed
	o.state.Store(failed)
	now := time.Now()
	since := o.since
	o.since = now
	o.mu.Unlock()
	if failed {
		o.logger.ErrorContext(ctx, "database unavailable: answering 503 until it is back", "error", err.Error())
	} else {
		o.logger.InfoContext(ctx, "database available again", "outage_ms", now.Sub(since).Milliseconds())
	}
}

// TraceConnectStart implements pgx.ConnectTracer.
func (o *Outages) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return ctx
}

// TraceConnectEnd implements pgx.ConnectTracer.
func (o *Outages) TraceConnectEnd(ctx context.Context, d pgx.TraceConnectEndData) {
	o.observe(ctx, d.Err, true)
}

// TraceQueryStart implements pgx.QueryTracer.
func (o *Outages) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (o *Outages) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	o.observe(ctx, d.Err, false)
}

// TraceBatchStart implements pgx.BatchTracer.
func (o *Outages) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

// TraceBatchQuery implements pgx.BatchTracer.
func (o *Outages) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	o.observe(ctx, d.Err, false)
}

// TraceBatchEnd implements pgx.BatchTracer.
func (o *Outages) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchEndData) {
	o.observe(ctx, d.Err, false)
}
