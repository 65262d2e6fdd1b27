package db_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/db"
)

func TestOutageErrorsAreUnavailable(t *testing.T) {
	unavailable := map[string]error{
		"admin shutdown":       &pgconn.PgError{Code: "57P01"},
		"crash shutdown":       &pgconn.PgError{Code: "57P02"},
		"cannot connect now":   &pgconn.PgError{Code: "57P03"},
		"connection failure":   &pgconn.PgError{Code: "08006"},
		"too many connections": &pgconn.PgError{Code: "53300"},
		"refused":              &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")},
		"lost mid-statement":   fmt.Errorf("read: %w", io.ErrUnexpectedEOF),
		"acquire deadline":     fmt.Errorf("acquire: %w", context.DeadlineExceeded),
	}
	for name, err := range unavailable {
		e, ok := apperr.As(db.Error(err, "op", db.On(db.NoRows, apperr.New(apperr.NotFound, "x"))))
		if !ok || e.Code != apperr.Unavailable || apperr.Status(e.Code) != 503 {
			t.Errorf("%s: mapped to %v, want 503 unavailable", name, e)
		}
	}
	for name, err := range map[string]error{
		"unique violation": &pgconn.PgError{Code: db.UniqueViolation},
		"syntax error":     &pgconn.PgError{Code: "42601"},
		"a plain bug":      errors.New("boom"),
	} {
		if db.Unreachable(err) {
			t.Errorf("%s is classified as an outage", name)
		}
		if _, ok := db.AsUnavailable(err); ok {
			t.Errorf("%s: AsUnavailable is true", name)
		}
	}
	if !db.Unreachable(&pgconn.ConnectError{Config: &pgconn.Config{}}) {
		t.Error("a pgconn.ConnectError is not an outage")
	}
	// Raw errors reaching the HTTP writer: only those that are surely the database's.
	for name, err := range map[string]error{
		"connect error":  fmt.Errorf("acquire: %w", &pgconn.ConnectError{Config: &pgconn.Config{}}),
		"admin shutdown": &pgconn.PgError{Code: "57P01"},
	} {
		if _, ok := db.AsUnavailable(err); !ok {
			t.Errorf("%s: AsUnavailable is false", name)
		}
	}
	if _, ok := db.AsUnavailable(io.ErrUnexpectedEOF); ok {
		t.Error("a bare EOF of unknown origin is taken for a database outage")
	}
}

// The outage log: one line down, one line up, whatever the number of failures between;
// a caller that gives up while connecting says nothing about the server.
func TestOutagesLogTransitionsOnly(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cfg, err := db.Config("postgres://u@127.0.0.1:1/db", db.ToolProfile())
	if err != nil {
		t.Fatal(err)
	}
	o := db.WatchOutages(cfg, logger)
	tracer := cfg.ConnConfig.Tracer.(pgx.ConnectTracer)
	ctx := context.Background()
	_, refused := pgconn.Connect(ctx, "postgres://u@127.0.0.1:1/db?connect_timeout=2")
	if refused == nil {
		t.Fatal("connected to port 1")
	}
	tracer.TraceConnectEnd(ctx, pgx.TraceConnectEndData{Err: fmt.Errorf("canceled: %w", context.Canceled)})
	if o.Down() {
		t.Fatal("a canceled connection attempt marked the database down")
	}
	for i := 0; i < 50; i++ {
		tracer.TraceConnectEnd(ctx, pgx.TraceConnectEndData{Err: refused})
	}
	if !o.Down() {
		t.Fatal("not down after refused connections")
	}
	for i := 0; i < 50; i++ {
		tracer.TraceConnectEnd(ctx, pgx.TraceConnectEndData{})
	}
	if o.Down() {
		t.Fatal("still down after a successful connection")
	}
	if n := strings.Count(logs.String(), "database unavailable"); n != 1 {
		t.Errorf("%d down lines, want 1:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "database available again"); n != 1 {
		t.Errorf("%d up lines, want 1:\n%s", n, logs.String())
	}
}
