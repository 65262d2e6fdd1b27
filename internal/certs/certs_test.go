package certs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type env struct {
	t         *testing.T
	pool      *pgxpool.Pool
	ca        *ca.CA
	clientID  string
	machineID string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool := testenv.NewDB(t, migrate.ModePostgres)
	authority, err := ca.LoadOrCreateLocal(t.TempDir(), t0.AddDate(-1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	c := testenv.Client(t, pool, "Pro")
	return &env{t: t, pool: pool, ca: authority, clientID: c, machineID: testenv.Machine(t, pool, c, "web-01")}
}

func (e *env) issue(machineID string, now time.Time) certs.Issued {
	e.t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	out, err := certs.Issue(context.Background(), e.pool, e.ca, certs.IssueRequest{
		ClientID: e.clientID, MachineID: machineID, PublicKey: &key.PublicKey, Reason: "test",
	}, now)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

type machineCols struct {
	Serial              *string
	Issued, Exp, Revoke *time.Time
}

func (e *env) machine(id string) machineCols {
	e.t.Helper()
	var m machineCols
	if err := e.pool.QueryRow(context.Background(), `SELECT cert_serial, cert_issued_at, cert_expires_at, cert_revoked_at FROM machines WHERE id = $1`, id).
		Scan(&m.Serial, &m.Issued, &m.Exp, &m.Revoke); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func TestIssueRecordsAndSupersedes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.issue(e.machineID, t0)
	if first.Cert.Subject.CommonName != e.clientID+":"+e.machineID {
		t.Fatalf("CN %q", first.Cert.Subject.CommonName)
	}
	if !first.ExpiresAt.Equal(t0.AddDate(1, 0, 0)) || len(first.Serial) > 32 || len(first.Superseded) != 0 {
		t.Fatalf("first: expires %v serial %q superseded %v", first.ExpiresAt, first.Serial, first.Superseded)
	}
	if _, err := first.Cert.Verify(x509.VerifyOptions{Roots: e.ca.Pool(), CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
	second := e.issue(e.machineID, t0.Add(time.Hour))
	if len(second.Superseded) != 1 || second.Superseded[0] != first.Serial {
		t.Fatalf("second superseded %v, want [%s]", second.Superseded, first.Serial)
	}
	if n := e.count(`SELECT count(*) FROM client_certificates WHERE serial = $1 AND revocation_reason = 'superseded' AND revoked_at = $2`, first.Serial, t0.Add(time.Hour)); n != 1 {
		t.Fatal("first certificate not superseded")
	}
	m := e.machine(e.machineID)
	if m.Serial == nil || *m.Serial != second.Serial || m.Revoke != nil || !m.Exp.Equal(second.ExpiresAt) || !m.Issued.Equal(second.IssuedAt) {
		t.Fatalf("machine columns %+v, want the second certificate", m)
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE machine_id = $1 AND action = 'certificate_issued' AND details->>'serial' = $2`, e.machineID, first.Serial); n != 1 {
		t.Fatal("no certificate_issued entry")
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE machine_id = $1 AND action = 'certificate_renewed' AND details->'superseded'->>0 = $2`, e.machineID, first.Serial); n != 1 {
		t.Fatal("no certificate_renewed entry naming the superseded serial")
	}
}

func TestIssueForUnknownOrForeignMachine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := testenv.Client(t, e.pool, "Pro")
	foreign := testenv.Machine(t, e.pool, other, "theirs")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, id := range []string{foreign, "00000000-0000-0000-0000-000000000009"} {
		_, err := certs.Issue(context.Background(), e.pool, e.ca, certs.IssueRequest{ClientID: e.clientID, MachineID: id, PublicKey: &key.PublicKey}, t0)
		if !errors.Is(err, certs.ErrMachineNotFound) {
			t.Fatalf("machine %s: %v", id, err)
		}
	}
	if n := e.count(`SELECT count(*) FROM client_certificates`); n != 0 {
		t.Fatalf("%d certificates recorded", n)
	}
}

// N issuances for one machine at once: all succeed, exactly one certificate stays
// unrevoked, every other one is superseded, and the machine's columns name the survivor.
func TestConcurrentIssuanceLeavesOneActive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	serials := make(chan string, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			<-start
			out, err := certs.Issue(context.Background(), e.pool, e.ca, certs.IssueRequest{ClientID: e.clientID, MachineID: e.machineID, PublicKey: &key.PublicKey}, t0)
			if err != nil {
				errs <- err
				return
			}
			serials <- out.Serial
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	close(serials)
	for err := range errs {
		t.Errorf("concurrent issuance failed: %v", err)
	}
	if len(serials) != n {
		t.Fatalf("%d of %d issuances succeeded", len(serials), n)
	}
	if got := e.count(`SELECT count(*) FROM client_certificates WHERE machine_id = $1 AND revoked_at IS NULL`, e.machineID); got != 1 {
		t.Fatalf("%d unrevoked certificates, want 1", got)
	}
	if got := e.count(`SELECT count(*) FROM client_certificates WHERE machine_id = $1 AND revocation_reason = 'superseded'`, e.machineID); got != n-1 {
		t.Fatalf("%d superseded, want %d", got, n-1)
	}
	var active string
	if err := e.pool.QueryRow(context.Background(), `SELECT serial FROM client_certificates WHERE machine_id = $1 AND revoked_at IS NULL`, e.machineID).Scan(&active); err != nil {
		t.Fatal(err)
	}
	if m := e.machine(e.machineID); m.Serial == nil || *m.Serial != active {
		t.Fatalf("machines.cert_serial %v, active %s", m.Serial, active)
	}
}

func TestComputeStatus(t *testing.T) {
	now := t0
	at := func(d time.Duration) *time.Time { x := now.Add(d); return &x }
	cases := []struct {
		serial     string
		revoked    *time.Time
		expires    *time.Time
		want       certs.Status
		whatItTest string
	}{
		{"", nil, at(time.Hour), certs.StatusUnknown, "no serial"},
		{"ab", nil, nil, certs.StatusUnknown, "no expiry recorded"},
		{"ab", at(-time.Hour), at(-time.Hour), certs.StatusRevoked, "revoked wins over expired"},
		{"ab", nil, at(-time.Second), certs.StatusExpired, "expired"},
		{"ab", nil, at(29 * 24 * time.Hour), certs.StatusExpiring, "within 30 days"},
		{"ab", nil, at(31 * 24 * time.Hour), certs.StatusValid, "valid"},
	}
	for _, c := range cases {
		if got := certs.ComputeStatus(c.serial, c.revoked, c.expires, now); got != c.want {
			t.Errorf("%s: %s, want %s", c.whatItTest, got, c.want)
		}
	}
}

// The sync statement runs inside a pgx.Batch next to the heartbeat's own writes (one
// round trip), fills the columns of a machine that was never synced, propagates a
// revocation, and writes nothing when the columns are already current.
func TestSyncStatementInABatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	issued := e.issue(e.machineID, t0)
	// An older record: columns empty, as for a machine enrolled before the columns existed.
	if _, err := e.pool.Exec(ctx, `UPDATE machines SET cert_serial = NULL, cert_issued_at = NULL, cert_expires_at = NULL WHERE id = $1`, e.machineID); err != nil {
		t.Fatal(err)
	}
	batch := func() int64 {
		b := &pgx.Batch{}
		b.Queue(`UPDATE machines SET last_seen = $2 WHERE id = $1`, e.machineID, t0.Add(time.Minute))
		q := certs.QueueSync(b, e.machineID)
		var affected int64
		q.Exec(func(ct pgconn.CommandTag) error { affected = ct.RowsAffected(); return nil })
		if err := e.pool.SendBatch(ctx, b).Close(); err != nil {
			t.Fatal(err)
		}
		return affected
	}
	if n := batch(); n != 1 {
		t.Fatalf("first sync updated %d rows", n)
	}
	m := e.machine(e.machineID)
	if m.Serial == nil || *m.Serial != issued.Serial || !m.Exp.Equal(issued.ExpiresAt) || !m.Issued.Equal(issued.IssuedAt) || m.Revoke != nil {
		t.Fatalf("after sync: %+v", m)
	}
	if n := batch(); n != 0 {
		t.Fatalf("a sync with nothing to change updated %d rows", n)
	}
	// Revoked behind the columns' back: the next sync propagates it.
	if _, err := e.pool.Exec(ctx, `UPDATE client_certificates SET revoked_at = $2 WHERE serial = $1`, issued.Serial, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if changed, err := certs.Sync(ctx, e.pool, e.machineID); err != nil || !changed {
		t.Fatalf("sync after revocation: %v %v", changed, err)
	}
	if m := e.machine(e.machineID); m.Revoke == nil || !m.Revoke.Equal(t0.Add(time.Hour)) {
		t.Fatalf("revocation not propagated: %+v", m)
	}
	// A machine without any certificate stays unknown.
	bare := testenv.Machine(t, e.pool, e.clientID, "bare")
	if changed, err := certs.Sync(ctx, e.pool, bare); err != nil || changed {
		t.Fatalf("sync of a machine without certificate: %v %v", changed, err)
	}
}

func TestCheckPresented(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	now := t0.Add(time.Hour)
	good := e.issue(e.machineID, t0)

	c, m, err := certs.CheckPresented(ctx, e.pool, good.Cert, now)
	if err != nil || c != e.clientID || m != e.machineID {
		t.Fatalf("active certificate: %q %q %v", c, m, err)
	}

	// reason is what the log must say (the database's reason for the SQL checks).
	refusedFor := func(name, reason string, cert *x509.Certificate, at time.Time) {
		t.Helper()
		_, _, err := certs.CheckPresented(ctx, e.pool, cert, at)
		if !errors.Is(err, certs.ErrRefused) {
			t.Errorf("%s: %v, want refused", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: the log would read %q, without the reason %q", name, err, reason)
		}
		if ae, ok := apperr.As(err); !ok || ae.Code != apperr.Unauthenticated || ae.Message != "client certificate not accepted" {
			t.Errorf("%s: client sees %v", name, ae)
		}
	}
	refused := func(name string, cert *x509.Certificate, at time.Time) { t.Helper(); refusedFor(name, "", cert, at) }
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign := func(cn string) *x509.Certificate {
		cert, err := e.ca.IssueClient(&key.PublicKey, cn, t0, time.Hour*24*365)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	// Signed by our CA but never recorded (e.g. a stolen CA key, or a test leftover).
	refusedFor("unrecorded serial", "not recorded", sign(e.clientID+":"+e.machineID), now)
	for _, cn := range []string{"", e.clientID, e.machineID, e.clientID + ":" + e.machineID + ":x",
		"urn:uuid:" + e.clientID + ":" + e.machineID, e.clientID + ":" + "{" + e.machineID + "}"} {
		refused("CN "+cn, sign(cn), now)
	}
	// A recorded serial presented with another identity in its CN.
	otherMachine := testenv.Machine(t, e.pool, e.clientID, "web-02")
	swapped := sign(e.clientID + ":" + otherMachine)
	third := testenv.Machine(t, e.pool, e.clientID, "web-03")
	if _, err := e.pool.Exec(ctx, `INSERT INTO client_certificates (client_id, machine_id, serial, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		e.clientID, third, ca.SerialHex(swapped.SerialNumber), t0, t0.AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	refusedFor("CN of another machine", "recorded for "+e.clientID+":"+third, swapped, now)
	refused("not yet valid", good.Cert, t0.Add(-2*time.Minute))
	refused("expired", good.Cert, t0.AddDate(1, 0, 1))
	refused("nil", nil, now)

	// Renewal supersedes: the old certificate is refused at once, the new one accepted.
	later := t0.Add(3 * time.Hour)
	renewed := e.issue(e.machineID, t0.Add(2*time.Hour))
	refusedFor("superseded", "revoked at", good.Cert, later)
	if _, _, err := certs.CheckPresented(ctx, e.pool, renewed.Cert, later); err != nil {
		t.Fatalf("renewed: %v", err)
	}
	// Record expired although the certificate says otherwise: the record wins.
	if _, err := e.pool.Exec(ctx, `UPDATE client_certificates SET expires_at = $2 WHERE serial = $1`, renewed.Serial, later); err != nil {
		t.Fatal(err)
	}
	refusedFor("record expired", "expired", renewed.Cert, later)
	if _, err := e.pool.Exec(ctx, `UPDATE client_certificates SET expires_at = $2 WHERE serial = $1`, renewed.Serial, renewed.ExpiresAt); err != nil {
		t.Fatal(err)
	}
	// Machine deleted: its certificates go with it.
	if _, err := e.pool.Exec(ctx, `DELETE FROM machines WHERE id = $1`, e.machineID); err != nil {
		t.Fatal(err)
	}
	refusedFor("machine deleted", "its machine is gone", renewed.Cert, later)
}
