package notify_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/notify"
	"github.com/optralis/optralis/internal/testenv"
	"github.com/optralis/optralis/internal/testenv/smtptest"
)

// BenchmarkRun is one notification run of the alerts job: 20 clients, each with 5 new
// firing alerts and a webhook, a Slack and an email channel (two recipients), delivered
// to real local receivers and a real SMTP server. Reported: the run's duration and the
// time from the run's start to the last webhook received.
//
//	go run ./internal/testenv/withservices go test -run '^$' -bench BenchmarkRun -count 5 ./internal/notify/
func BenchmarkRun(b *testing.B) {
	ctx := context.Background()
	pool := testenv.NewDB(b, migrate.ModePostgres)
	smtp := smtptest.Start(b)
	var mu sync.Mutex
	var last time.Time
	srv := newBenchReceiver(b, func() { mu.Lock(); last = time.Now(); mu.Unlock() })
	var clients, machines []string
	for i := range 20 {
		c := testenv.Client(b, pool, "Pro")
		if _, err := pool.Exec(ctx, `DELETE FROM notification_channels WHERE client_id = $1`, c); err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `
			INSERT INTO notification_channels (client_id, name, kind, recipients, url, secret, min_severity, created_at, updated_at)
			VALUES ($1, 'hook', 'webhook', '{}', $2, 'whsec_b', 'info', $3, $3), ($1, 'slack', 'slack', '{}', $2, NULL, 'info', $3, $3),
			       ($1, 'mail', 'email', ARRAY['a@example.com','b@example.com'], NULL, NULL, 'info', $3, $3)`, c, srv, t0); err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
		machines = append(machines, testenv.Machine(b, pool, c, fmt.Sprintf("m-%d", i)))
	}
	d := notify.Deps{Pool: pool, Logger: testenv.Discard(), Clock: clock.Fixed(t0), Policy: notify.Policy{AllowInsecure: true},
		Mail: mail.SMTP{Host: smtp.Host, Port: smtp.Port, From: "alerts@optralis.test"}}
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for i, c := range clients {
			if _, err := pool.Exec(ctx, `
				INSERT INTO alert_rule_history (client_id, machine_id, rule_name, metric_type, severity, value, threshold, state, started_at, triggered_at)
				SELECT $1, $2, 'rule ' || g, 'cpu', 'warning', 95, 90, 'firing', $3, $3 FROM generate_series(1, 5) g`, c, machines[i], t0); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		res, err := notify.Run(ctx, d, t0)
		if err != nil || res.Sent != 20*3*5 || res.Messages != 60 {
			b.Fatalf("run: %+v %v", res, err)
		}
		mu.Lock()
		total += last.Sub(start)
		mu.Unlock()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-last-webhook")
}

func newBenchReceiver(b *testing.B, received func()) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { received(); w.WriteHeader(204) }))
	b.Cleanup(srv.Close)
	return srv.URL
}
