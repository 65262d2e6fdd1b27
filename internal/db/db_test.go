package db_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestProfilesAndStatementTimeout(t *testing.T) {
	srv := db.ServerProfile()
	if srv.MaxConns != 25 || srv.MinIdleConns != 10 || srv.MaxConnLifetime != 5*time.Minute {
		t.Fatalf("server profile %+v is not the spec's 25/10/5min", srv)
	}
	if l := db.LambdaProfile(); l.MaxConns > 4 {
		t.Fatalf("a Lambda instance needs few connections, got %d", l.MaxConns)
	}
	pool := testenv.Pool(t, testenv.ServerURL(t), db.LambdaProfile())
	var timeout string
	if err := pool.QueryRow(context.Background(), `SHOW statement_timeout`).Scan(&timeout); err != nil {
		t.Fatal(err)
	}
	if timeout != "30s" {
		t.Fatalf("statement_timeout = %s, want 30s", timeout)
	}
}

func TestBadURLDoesNotLeakPassword(t *testing.T) {
	_, err := db.Config("postgres://user:s3cret@host:notaport/db", db.ToolProfile())
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnreachableDatabase(t *testing.T) {
	cfg, err := db.Config("postgres://u:s3cret@127.0.0.1:1/db?connect_timeout=2", db.ToolProfile())
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Open(context.Background(), cfg)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v", err)
	}
}
