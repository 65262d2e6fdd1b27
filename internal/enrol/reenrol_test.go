package enrol_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/enrol"
	"github.com/optralis/optralis/internal/fleetcache"
	"github.com/optralis/optralis/internal/testenv"
)

// fingerprint is what the installer sends: the SHA-256 hex of /etc/machine-id.
const fingerprint = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func withFingerprint(fp string, host string) func(m map[string]any) {
	return func(m map[string]any) {
		m["machine_fingerprint"] = fp
		m["hostname"] = host
	}
}

func parseCert(t *testing.T, res bootstrapAnswer) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(res.Certificate))
	if block == nil {
		t.Fatal("no certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A reinstalled agent sending its machine's fingerprint takes its machine back: same id,
// new certificate (the old one refused), description refreshed, and no second licence
// seat — a reinstall on a full licence succeeds.
func TestReEnrolmentReusesTheMachine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	_, secret := e.token(0, 0)
	e.exec(`UPDATE clients SET max_machines = 1 WHERE id = $1`, e.clientID)

	a, first := e.bootstrap(bootstrapBody(t, secret, csrFor(t, newKey(t), nil), withFingerprint(fingerprint, "web-01")))
	if a.Code != 201 || first.ReEnrolled {
		t.Fatalf("first enrolment: %d %s", a.Code, a.Body)
	}
	e.exec(`UPDATE machines SET last_config_sync = $2, agent_version = '1.0.0' WHERE id = $1`, first.MachineID, t0)
	e.clock.Advance(10 * time.Minute)
	page, _ := fleetcache.GetPage(ctx, e.cache, e.clientID, "all", new([]string))
	page.Put(ctx, []string{"web-01"})

	a, again := e.bootstrap(bootstrapBody(t, secret, csrFor(t, newKey(t), nil), func(m map[string]any) {
		withFingerprint(fingerprint, "web-01-reinstalled")(m)
		m["os_version"] = "Debian GNU/Linux 13 (trixie)"
		m["arch"] = "arm64"
	}))
	if a.Code != 201 {
		t.Fatalf("re-enrolment on a full licence: %d %s", a.Code, a.Body)
	}
	if again.MachineID != first.MachineID || !again.ReEnrolled || again.Serial == first.Serial || again.ClientID != e.clientID {
		t.Fatalf("re-enrolment answer %+v, first %s", again.Result, first.MachineID)
	}
	if n := e.count(`SELECT count(*) FROM machines WHERE client_id = $1`, e.clientID); n != 1 {
		t.Fatalf("%d machines", n)
	}
	// The row: refreshed, its configuration to be sent again, the fingerprint stored hashed.
	if n := e.count(`SELECT count(*) FROM machines WHERE id = $1 AND hostname = 'web-01-reinstalled' AND arch = 'arm64'
		AND os_version = 'Debian GNU/Linux 13 (trixie)' AND last_config_sync IS NULL AND updated_at = $2
		AND cert_serial = $3 AND fingerprint_hash = $4`, first.MachineID, t0.Add(10*time.Minute), again.Serial, enrol.FingerprintHash(e.clientID, fingerprint)); n != 1 {
		t.Fatal("machine row not refreshed")
	}
	if n := e.count(`SELECT count(*) FROM machines WHERE fingerprint_hash = $1 OR fingerprint_hash = encode(sha256($1::bytea), 'hex')`, fingerprint); n != 0 {
		t.Fatal("the fingerprint is stored as sent, or unkeyed")
	}
	// The old certificate is refused, the new one accepted.
	if _, _, err := certs.CheckPresented(ctx, e.pool, parseCert(t, first), e.clock.Now()); err == nil {
		t.Fatal("the superseded certificate is still accepted")
	}
	if _, m, err := certs.CheckPresented(ctx, e.pool, parseCert(t, again), e.clock.Now()); err != nil || m != first.MachineID {
		t.Fatalf("new certificate: %v", err)
	}
	if n := e.count(`SELECT count(*) FROM client_certificates WHERE machine_id = $1 AND revoked_at IS NULL`, first.MachineID); n != 1 {
		t.Fatalf("%d active certificates", n)
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE machine_id = $1 AND action = 'machine_re_enrolled'
		AND details->>'hostname' = 'web-01-reinstalled' AND user_id = $2`, first.MachineID, e.user.UserID); n != 1 {
		t.Fatal("no machine_re_enrolled entry")
	}
	// The list cached before is not served; the count did not move.
	if _, ok := fleetcache.GetPage(ctx, e.cache, e.clientID, "all", new([]string)); ok {
		t.Error("the machine list cached before the re-enrolment is still served")
	}
	if n, err := (enrol.MachineCount{Cache: e.cache}).Get(ctx, e.pool, e.clientID); err != nil || n != 1 {
		t.Fatalf("count %d: %v", n, err)
	}
	// A new machine (another fingerprint, or none) still meets the full licence.
	for _, mod := range []func(map[string]any){withFingerprint("another-machine-0001", "web-02"), nil} {
		if a, _ := e.bootstrap(bootstrapBody(t, secret, csrFor(t, newKey(t), nil), mod)); a.Code != 402 {
			t.Fatalf("a new machine on a full licence: %d %s", a.Code, a.Body)
		}
	}
}

// The fingerprint identifies a machine within one client, and only while it is live.
func TestReEnrolmentScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, secret := e.token(0, 0)
	_, first := e.bootstrap(bootstrapBody(t, secret, csrFor(t, newKey(t), nil), withFingerprint(fingerprint, "web-01")))
	if first.MachineID == "" {
		t.Fatal("first enrolment failed")
	}

	// Another client, same hardware id: a machine of its own, its own hash.
	other := e.newUser(testenv.Client(t, e.pool, "Pro"))
	_, otherSecret, err := enrol.CreateToken(context.Background(), e.pool, enrol.CreateRequest{ClientID: other.ClientID, UserID: other.UserID, Name: "b"}, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	a, theirs := e.bootstrap(bootstrapBody(t, otherSecret, csrFor(t, newKey(t), nil), withFingerprint(fingerprint, "web-01")))
	if a.Code != 201 || theirs.MachineID == first.MachineID || theirs.ReEnrolled || theirs.ClientID != other.ClientID {
		t.Fatalf("other client: %d %s", a.Code, a.Body)
	}
	if _, _, err := certs.CheckPresented(context.Background(), e.pool, parseCert(t, first), e.clock.Now()); err != nil {
		t.Fatalf("another client's enrolment touched this machine's certificate: %v", err)
	}
	if n := e.count(`SELECT count(DISTINCT fingerprint_hash) FROM machines WHERE id IN ($1, $2)`, first.MachineID, theirs.MachineID); n != 2 {
		t.Fatal("one hash for two clients")
	}

	// A deleted machine's fingerprint is free: the reinstall is a new machine.
	e.exec(`UPDATE machines SET deleted_at = $2 WHERE id = $1`, first.MachineID, t0)
	a, fresh := e.bootstrap(bootstrapBody(t, secret, csrFor(t, newKey(t), nil), withFingerprint(fingerprint, "web-01")))
	if a.Code != 201 || fresh.MachineID == first.MachineID || fresh.ReEnrolled {
		t.Fatalf("after deletion: %d %s", a.Code, a.Body)
	}
	if n := e.count(`SELECT count(*) FROM machines WHERE id = $1 AND deleted_at IS NOT NULL AND hostname = 'web-01'`, first.MachineID); n != 1 {
		t.Fatal("the deleted machine was changed")
	}
}

// Simultaneous bootstraps of one machine make one machine, whose last certificate is the
// only active one.
func TestConcurrentReEnrolmentsMakeOneMachine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, secret := e.token(0, 0)
	e.exec(`UPDATE clients SET max_machines = 1 WHERE id = $1`, e.clientID)
	const n = 8
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = bootstrapBody(t, secret, csrFor(t, newKey(t), nil), withFingerprint(fingerprint, "web-01"))
	}
	results := make([]bootstrapAnswer, n)
	codes := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			a := e.do("POST", "/api/public/bootstrap", bodies[i], nil)
			codes[i] = a.Code
			if a.Code == 201 {
				a.decode(t, &results[i])
			}
		}()
	}
	close(start)
	wg.Wait()
	ids := map[string]bool{}
	reEnrolled := 0
	for i := range results {
		if codes[i] != 201 {
			t.Fatalf("bootstrap %d: %d", i, codes[i])
		}
		ids[results[i].MachineID] = true
		if results[i].ReEnrolled {
			reEnrolled++
		}
	}
	if len(ids) != 1 || reEnrolled != n-1 {
		t.Fatalf("machines %v, %d re-enrolments", ids, reEnrolled)
	}
	if c := e.count(`SELECT count(*) FROM machines WHERE client_id = $1`, e.clientID); c != 1 {
		t.Fatalf("%d machines", c)
	}
	if c := e.count(`SELECT count(*) FROM client_certificates WHERE client_id = $1`, e.clientID); c != n {
		t.Fatalf("%d certificates, want %d", c, n)
	}
	if c := e.count(`SELECT count(*) FROM client_certificates WHERE client_id = $1 AND revoked_at IS NULL`, e.clientID); c != 1 {
		t.Fatalf("%d active certificates", c)
	}
}

// A machine given the fingerprint by another transaction while a bootstrap inserts its
// own: the insert's unique violation becomes a re-enrolment of that machine. (Another
// bootstrap cannot cause it: inserting a machine locks the client row, which bootstraps
// take first. An update of an existing row does not, so that is the race tested here.)
func TestReEnrolmentAfterLosingTheInsertRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	_, secret := e.token(0, 0)
	winner := testenv.Machine(t, e.pool, e.clientID, "winner")
	// Its own connection: the bootstrap and the polling below use the pool's.
	conn, err := pgx.Connect(ctx, e.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `UPDATE machines SET fingerprint_hash = $2 WHERE id = $1`, winner, enrol.FingerprintHash(e.clientID, fingerprint)); err != nil {
		t.Fatal(err)
	}
	done := make(chan bootstrapAnswer, 1)
	body := bootstrapBody(t, secret, csrFor(t, newKey(t), nil), withFingerprint(fingerprint, "web-01"))
	go func() {
		var res bootstrapAnswer
		if a := e.do("POST", "/api/public/bootstrap", body, nil); a.Code == 201 {
			a.decode(t, &res)
		} else {
			t.Errorf("bootstrap: %d %s", a.Code, a.Body)
		}
		done <- res
	}()
	// Wait until the bootstrap's insert waits on the uncommitted row's index entry.
	deadline := time.Now().Add(10 * time.Second)
	for e.count(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
		AND query LIKE '%INSERT INTO machines%'`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the bootstrap never waited on the insert")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.MachineID != winner || !res.ReEnrolled {
		t.Fatalf("answer %+v, want the committed machine %s re-enrolled", res.Result, winner)
	}
	if n := e.count(`SELECT count(*) FROM machines WHERE client_id = $1`, e.clientID); n != 1 {
		t.Fatalf("%d machines", n)
	}
	if n := e.count(`SELECT count(*) FROM machines WHERE id = $1 AND hostname = 'web-01'`, winner); n != 1 {
		t.Fatal("the machine was not re-enrolled")
	}
	if n := e.count(`SELECT usage_count FROM install_tokens WHERE client_id = $1`, e.clientID); n != 1 {
		t.Fatalf("token used %d times by one bootstrap", n)
	}
}
