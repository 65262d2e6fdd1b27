package machines_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/machines"
)

func listAt(t *testing.T, e *env, query url.Values, now time.Time) map[string]machines.Row {
	t.Helper()
	q, err := machines.ParseListQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	q.Limit = machines.MaxLimit
	p, err := machines.List(context.Background(), e.pool, cache.Store{}, e.client, q, now)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]machines.Row{}
	for _, r := range p.Machines {
		out[r.Hostname] = r
	}
	return out
}

// The online window at its boundaries, computed by the database from the injected clock
// and by the Go twin alike, and the status filter agreeing with both.
func TestStatusAtBoundaries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const us = time.Microsecond
	type hb struct {
		lastSeen, due *time.Time
		cpu, ram      *float64
	}
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	fleet := map[string]hb{
		"normal":      {at(0), at(60 * time.Second), ptr(10.0), ptr(10.0)}, // online until t0+120 s
		"busy":        {at(0), at(30 * time.Second), ptr(90.0), ptr(10.0)}, // alert until t0+90 s
		"ram-at-85":   {at(0), at(60 * time.Second), ptr(10.0), ptr(85.0)}, // not over the threshold
		"ram-over-85": {at(0), at(60 * time.Second), ptr(10.0), ptr(85.5)}, // alert
		"cpu-at-80":   {at(0), at(60 * time.Second), ptr(80.0), ptr(10.0)}, // not over
		"slow":        {at(0), at(300 * time.Second), ptr(1.0), ptr(1.0)},  // online until t0+600 s
		"legacy":      {at(0), nil, nil, nil},                              // due = last seen + 60 s
		"never":       {nil, nil, nil, nil},                                // offline
		"no-metrics":  {at(0), at(60 * time.Second), nil, nil},             // online, no alert
	}
	for host, h := range fleet {
		id := e.machine(e.client, host)
		e.exec(`UPDATE machines SET last_seen = $2, heartbeat_due_at = $3, last_cpu_percent = $4, last_ram_percent = $5 WHERE id = $1`,
			id, h.lastSeen, h.due, h.cpu, h.ram)
	}
	want := []struct {
		now  time.Duration
		host string
		st   machines.Status
	}{
		{0, "never", machines.StatusOffline},
		{0, "no-metrics", machines.StatusOnline},
		{120 * time.Second, "normal", machines.StatusOnline},
		{120*time.Second + us, "normal", machines.StatusOffline},
		{90 * time.Second, "busy", machines.StatusAlert},
		{90*time.Second + us, "busy", machines.StatusOffline},
		{10 * time.Second, "ram-at-85", machines.StatusOnline},
		{10 * time.Second, "ram-over-85", machines.StatusAlert},
		{10 * time.Second, "cpu-at-80", machines.StatusOnline},
		{600 * time.Second, "slow", machines.StatusOnline},
		{600*time.Second + us, "slow", machines.StatusOffline},
		{120 * time.Second, "legacy", machines.StatusOnline},
		{120*time.Second + us, "legacy", machines.StatusOffline},
	}
	for _, w := range want {
		now := t0.Add(w.now)
		rows := listAt(t, e, nil, now)
		r := rows[w.host]
		h := fleet[w.host]
		if goSt := machines.ComputeStatus(h.lastSeen, h.due, h.cpu, h.ram, now); r.Status != w.st || goSt != w.st {
			t.Errorf("%s at t0+%v: SQL %s, Go %s, want %s", w.host, w.now, r.Status, goSt, w.st)
		}
		// Every machine: SQL and Go agree, and the status filter selects exactly them.
		for host, r := range rows {
			h := fleet[host]
			if goSt := machines.ComputeStatus(h.lastSeen, h.due, h.cpu, h.ram, now); goSt != r.Status {
				t.Errorf("%s at t0+%v: SQL %s, Go %s", host, w.now, r.Status, goSt)
			}
			if _, in := listAt(t, e, url.Values{"status": {string(r.Status)}}, now)[host]; !in {
				t.Errorf("%s at t0+%v: status=%s does not list it", host, w.now, r.Status)
			}
		}
	}
}

// Certificate status from the machine's cert_* columns at the spec's boundaries, the
// filter agreeing with the rows and with certs.ComputeStatus.
func TestCertStatusBoundaries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const us = time.Microsecond
	now := t0
	cases := []struct {
		host      string
		serial    *string
		expires   time.Time
		revokedAt *time.Time
		want      certs.Status
	}{
		{"no-cert", nil, now.AddDate(1, 0, 0), nil, certs.StatusUnknown},
		{"empty-serial", ptr(""), now.AddDate(1, 0, 0), nil, certs.StatusUnknown},
		{"revoked", ptr("s1"), now.AddDate(1, 0, 0), ptr(now.Add(-time.Hour)), certs.StatusRevoked},
		{"expired-just", ptr("s2"), now.Add(-us), nil, certs.StatusExpired},
		{"expires-now", ptr("s3"), now, nil, certs.StatusExpiring},
		{"expiring-last", ptr("s4"), now.Add(certs.ExpiringWithin - us), nil, certs.StatusExpiring},
		{"valid-first", ptr("s5"), now.Add(certs.ExpiringWithin), nil, certs.StatusValid},
	}
	for _, c := range cases {
		id := e.machine(e.client, c.host)
		e.exec(`UPDATE machines SET cert_serial = $2, cert_expires_at = $3, cert_revoked_at = $4, cert_issued_at = $5 WHERE id = $1`,
			id, c.serial, c.expires, c.revokedAt, now.AddDate(-1, 0, 0))
	}
	rows := listAt(t, e, nil, now)
	for _, c := range cases {
		serial := ""
		if c.serial != nil {
			serial = *c.serial
		}
		exp := c.expires
		if got, goSt := rows[c.host].CertStatus, certs.ComputeStatus(serial, c.revokedAt, &exp, now); got != c.want || goSt != c.want {
			t.Errorf("%s: SQL %s, Go %s, want %s", c.host, got, goSt, c.want)
		}
		if _, in := listAt(t, e, url.Values{"cert_status": {string(c.want)}}, now)[c.host]; !in {
			t.Errorf("%s: cert_status=%s does not list it", c.host, c.want)
		}
	}
}
