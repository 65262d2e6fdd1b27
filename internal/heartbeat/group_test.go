package heartbeat_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/heartbeat"
	"github.com/optralis/optralis/internal/ratelimit"
	"github.com/optralis/optralis/internal/testenv"
)

// machine is an enrolled machine of the test client.
type machine struct {
	id, serial string
	agent      certs.Agent
	x509       *x509.Certificate
}

// machines enrols n more machines of e's client.
func (e *env) machines(n int) []machine {
	e.t.Helper()
	out := make([]machine, n)
	for i := range out {
		id, cert := e.enrol(e.clientID, fmt.Sprintf("group-%d-%d", time.Now().UnixNano(), i))
		serial := ca.SerialHex(cert.SerialNumber)
		out[i] = machine{id: id, serial: serial, agent: certs.Agent{ClientID: e.clientID, MachineID: id, Serial: serial}, x509: cert}
	}
	return out
}

// item is a validated heartbeat of m recorded at at, as the receiving handler makes it.
func (e *env) item(m machine, at time.Time) heartbeat.Item {
	e.t.Helper()
	var p heartbeat.Payload
	if err := json.Unmarshal(mustJSON(payload(at)), &p); err != nil {
		e.t.Fatal(err)
	}
	it, err := heartbeat.NewItem(m.agent, e.now.Add(300*24*time.Hour), "198.51.100.7", e.now, p,
		heartbeat.Retention{MetricsDays: 30, EventsDays: 30})
	if err != nil {
		e.t.Fatal(err)
	}
	return it
}

func (e *env) rows(table, machineID string) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table+" WHERE machine_id = $1", machineID).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) writer() *heartbeat.Writer {
	return heartbeat.NewWriter(heartbeat.WriterConfig{Pool: e.pool, Logger: testenv.Discard()})
}

// A revoked certificate in a group is refused alone (401, nothing of it written); the
// others commit, in the same single transaction. In both time-series modes.
func TestGroupRefusesARevokedCertificateAlone(t *testing.T) {
	t.Parallel()
	for _, ts := range []bool{false, true} {
		t.Run(fmt.Sprintf("timescale=%v", ts), func(t *testing.T) {
			e := setup(t, options{timescale: ts})
			ms := e.machines(3)
			if _, err := e.pool.Exec(context.Background(), `UPDATE client_certificates SET revoked_at = $2 WHERE serial = $1`,
				ms[1].serial, e.now.Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			at := e.now.Add(-5 * time.Second)
			items := []heartbeat.Item{e.item(ms[0], at), e.item(ms[1], at), e.item(ms[2], at)}
			out := e.writer().Write(context.Background(), items)
			for i, o := range out {
				if i == 1 {
					if !errors.Is(o.Err, certs.ErrRefused) {
						t.Errorf("revoked item: %v, want ErrRefused", o.Err)
					}
					continue
				}
				if o.Err != nil || !o.Fresh || o.Answer.NextIntervalSeconds != 60 {
					t.Errorf("item %d: %+v", i, o)
				}
			}
			want := map[string]int{"metrics": 1, "disk_info": 2, "event_logs": 3, "smart_data": 1, "machine_collector_data": 8, "machine_inventory": 1}
			for i, m := range ms {
				for table, n := range want {
					if i == 1 {
						n = 0
					}
					if got := e.rows(table, m.id); got != n {
						t.Errorf("machine %d %s: %d rows, want %d", i, table, got, n)
					}
				}
			}
			var seen *time.Time
			if err := e.pool.QueryRow(context.Background(), `SELECT last_seen FROM machines WHERE id = $1`, ms[1].id).Scan(&seen); err != nil {
				t.Fatal(err)
			}
			if seen != nil {
				t.Errorf("the refused machine was touched: last_seen %v", seen)
			}
		})
	}
}

// An item the database refuses (a value out of its column's range, in an item that
// arrived as JSON, as from a queue, without the receiver's validation) gets its 400 alone:
// the group is split until it is alone, and its neighbours commit.
func TestGroupIsolatesADataError(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	ms := e.machines(5)
	at := e.now.Add(-5 * time.Second)
	var items []heartbeat.Item
	for _, m := range ms {
		b, _ := json.Marshal(e.item(m, at))
		var it heartbeat.Item
		if err := json.Unmarshal(b, &it); err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
	big := 1e12 // DECIMAL(10,2) overflows
	items[3].Payload.Disks[0].UsedGB = &big
	out := e.writer().Write(context.Background(), items)
	for i, o := range out {
		if i == 3 {
			if ae, ok := apperr.As(o.Err); !ok || ae.Code != apperr.Invalid {
				t.Errorf("bad item: %v, want a 400", o.Err)
			}
			if n := e.rows("metrics", ms[i].id); n != 0 {
				t.Errorf("bad item wrote %d metrics rows", n)
			}
			continue
		}
		if o.Err != nil || !o.Fresh {
			t.Errorf("item %d: %+v", i, o)
		}
		// Written from JSON: the inventory was derived again.
		if n := e.rows("machine_inventory", ms[i].id); n != 1 {
			t.Errorf("item %d: %d inventory rows", i, n)
		}
		if n := e.rows("disk_info", ms[i].id); n != 2 {
			t.Errorf("item %d: %d disk rows", i, n)
		}
	}
}

// A commit that fails on the database's side (here the session dies in the middle of the
// group's transaction, as when PostgreSQL is stopped) fails every heartbeat of the group
// with 503 and writes nothing of any of them.
func TestGroupCommitFailureFailsTheWholeGroup(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `
		CREATE FUNCTION test_die() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
		    IF NEW.cpu_percent = 99.25 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
		    RETURN NEW;
		END $$;
		CREATE TRIGGER test_die BEFORE INSERT ON metrics FOR EACH ROW EXECUTE FUNCTION test_die();`); err != nil {
		t.Fatal(err)
	}
	ms := e.machines(3)
	at := e.now.Add(-5 * time.Second)
	items := []heartbeat.Item{e.item(ms[0], at), e.item(ms[1], at), e.item(ms[2], at)}
	poison := 99.25
	items[2].Payload.Metrics.CPUPercent = &poison
	out := e.writer().Write(ctx, items)
	for i, o := range out {
		if !errors.Is(o.Err, db.ErrUnavailable) {
			t.Errorf("item %d: %v, want 503", i, o.Err)
		}
	}
	for i, m := range ms {
		for _, table := range []string{"metrics", "disk_info", "event_logs", "machine_inventory", "machine_collector_data"} {
			if n := e.rows(table, m.id); n != 0 {
				t.Errorf("machine %d: %d %s rows after a failed group", i, n, table)
			}
		}
	}
	// The handler answers such a heartbeat 503 with a Retry-After (group commit on).
	g := setup(t, options{group: &heartbeat.GroupCommit{}})
	if _, err := g.pool.Exec(ctx, `
		CREATE FUNCTION test_die() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$;
		CREATE TRIGGER test_die BEFORE INSERT ON metrics FOR EACH ROW EXECUTE FUNCTION test_die();`); err != nil {
		t.Fatal(err)
	}
	r := g.post(payload(g.now.Add(-time.Second)))
	if r.code != http.StatusServiceUnavailable || r.hdr.Get("Retry-After") == "" {
		t.Errorf("handler: %d Retry-After %q %s", r.code, r.hdr.Get("Retry-After"), r.raw)
	}
}

// A retry is idempotent inside a group (the second copy is not fresh and adds nothing)
// and across groups; a different body re-dated to an already-recorded instant is not
// merged; the machine still counts as seen.
func TestGroupIdempotentRetries(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	ms := e.machines(2)
	w := e.writer()
	at := e.now.Add(-20 * time.Second)
	a, b := e.item(ms[0], at), e.item(ms[1], at)
	out := w.Write(context.Background(), []heartbeat.Item{a, b, a})
	if out[0].Err != nil || out[1].Err != nil || out[2].Err != nil {
		t.Fatalf("first group: %+v", out)
	}
	if !out[0].Fresh || !out[1].Fresh || out[2].Fresh {
		t.Errorf("fresh: %v %v %v, want true true false", out[0].Fresh, out[1].Fresh, out[2].Fresh)
	}
	other := e.item(ms[0], at)
	cpu := 11.0
	other.Payload.Metrics.CPUPercent = &cpu
	other.Payload.Disks = other.Payload.Disks[:1]
	other.Payload.Disks[0].MountPoint = "E:\\"
	later := e.item(ms[1], at.Add(10*time.Second))
	out = w.Write(context.Background(), []heartbeat.Item{other, a, later})
	if out[0].Fresh || out[1].Fresh || !out[2].Fresh || out[0].Err != nil || out[1].Err != nil || out[2].Err != nil {
		t.Errorf("second group: %+v", out)
	}
	for table, n := range map[string]int{"metrics": 1, "disk_info": 2, "event_logs": 3, "smart_data": 1} {
		if got := e.rows(table, ms[0].id); got != n {
			t.Errorf("machine 0 %s: %d rows, want %d", table, got, n)
		}
		if got := e.rows(table, ms[1].id); got != 2*n {
			t.Errorf("machine 1 %s: %d rows, want %d", table, got, 2*n)
		}
	}
	var lastCPU float64
	if err := e.pool.QueryRow(context.Background(), `SELECT last_cpu_percent FROM machines WHERE id = $1`, ms[0].id).Scan(&lastCPU); err != nil {
		t.Fatal(err)
	}
	if lastCPU != 42.5 {
		t.Errorf("last_cpu_percent %v: the re-dated body was merged", lastCPU)
	}
}

// Hundreds of concurrent heartbeats through the handler with group commit: every one is
// acknowledged and the database holds exactly the acknowledged rows.
func TestGroupCommitConcurrentSubmissions(t *testing.T) {
	t.Parallel()
	e := setup(t, options{group: &heartbeat.GroupCommit{MaxGroup: 64, Committers: 3}})
	ms := e.machines(20)
	const per = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	acks := 0
	for _, m := range ms {
		for j := range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.doAs(m, payload(e.now.Add(-time.Duration(j+1)*time.Second)))
				if r.code != http.StatusOK {
					t.Errorf("machine %s #%d: %d %s", m.id, j, r.code, r.raw)
					return
				}
				mu.Lock()
				acks++
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	var rows int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM metrics`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != acks || acks != len(ms)*per {
		t.Errorf("rows %d, acks %d, sent %d", rows, acks, len(ms)*per)
	}
	st := e.hb.Writer().Stats()
	t.Logf("%d heartbeats in %d groups, %d statements", st.Items, st.Groups, st.Statements)
	if st.Items != int64(acks) {
		t.Errorf("writer counted %d items for %d acks", st.Items, acks)
	}
}

// An idle committer writes a lone heartbeat as a group of one at once: Submit returns
// with no other heartbeat arriving and no timer to wait for (were it waiting to fill a
// group, this would never return).
func TestGroupCommitIdleWritesAGroupOfOne(t *testing.T) {
	t.Parallel()
	e := setup(t, options{})
	ms := e.machines(1)
	w := e.writer()
	c := heartbeat.NewCommitter(w, heartbeat.GroupCommit{MaxGroup: 256, Committers: 1})
	defer c.Close()
	o := c.Submit(context.Background(), e.item(ms[0], e.now.Add(-time.Second)))
	if o.Err != nil || !o.Fresh {
		t.Fatalf("%+v", o)
	}
	if st := w.Stats(); st.Groups != 1 || st.Items != 1 {
		t.Errorf("stats %+v, want one group of one", st)
	}
	c.Close()
	if o := c.Submit(context.Background(), e.item(ms[0], e.now)); !errors.Is(o.Err, db.ErrUnavailable) {
		t.Errorf("after Close: %v, want 503", o.Err)
	}
}

// The per-machine limit: an agent sending far faster than its interval gets 429 with a
// Retry-After; another machine behind the same address is not affected; it holds with
// Redis and without (the in-process fallback).
func TestMachineLimit(t *testing.T) {
	t.Parallel()
	for _, noRedis := range []bool{false, true} {
		t.Run(fmt.Sprintf("noRedis=%v", noRedis), func(t *testing.T) {
			e := setup(t, options{noRed: noRedis, machineLimit: ratelimit.Limit{Burst: 3, Period: time.Minute}})
			for i := range 3 {
				if r := e.post(payload(e.now.Add(-time.Duration(i+1) * time.Second))); r.code != 200 {
					t.Fatalf("heartbeat %d: %d %s", i, r.code, r.raw)
				}
			}
			r := e.post(payload(e.now.Add(-10 * time.Second)))
			if r.code != http.StatusTooManyRequests || r.hdr.Get("Retry-After") == "" {
				t.Fatalf("4th heartbeat: %d Retry-After %q", r.code, r.hdr.Get("Retry-After"))
			}
			ms := e.machines(1)
			if r := e.doAs(ms[0], payload(e.now.Add(-time.Second))); r.code != 200 {
				t.Errorf("another machine, same address: %d %s", r.code, r.raw)
			}
		})
	}
}

// doAs posts p with m's certificate.
func (e *env) doAs(m machine, p map[string]any) response {
	return e.do("POST", "/agent/heartbeat", m.x509, mustJSON(p), nil)
}
