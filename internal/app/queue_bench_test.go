package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/optralis/optralis/internal/app/heartbeatwriterfn"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/heartbeat"
	"github.com/optralis/optralis/internal/ingestqueue"
	"github.com/optralis/optralis/internal/lambdaproxy"
	"github.com/optralis/optralis/internal/localsqs"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/ratelimit"
	"github.com/optralis/optralis/internal/routes"
	"github.com/optralis/optralis/internal/testenv"
)

// The heartbeat function's and the writer's work per invocation, through the real Lambda
// JSON path (lambda.NewHandler(...).Invoke) on real PostgreSQL and Redis, and for the
// queue mode the AWS SDK's SendMessage to a local SQS server: the figures of the cost
// model (bench/ingest-queue.md). Not timed assertions: run with
//
//	go run ./internal/testenv/withservices go test -run '^$' -bench LambdaIngest -benchtime 400x -count 5 ./internal/app/

// benchClock advances one second per reading, so each heartbeat has its own recorded_at
// window and the check cache sees time pass as in production.
type benchClock struct{ t time.Time }

func (c *benchClock) Now() time.Time { c.t = c.t.Add(time.Second); return c.t }

var _ clock.Clock = (*benchClock)(nil)

func benchAgents(b *testing.B, d *testDeps, n int) []queueAgent {
	authority, err := ca.LoadOrCreateLocal(b.TempDir(), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		b.Fatal(err)
	}
	out := make([]queueAgent, n)
	for i := range out {
		out[i] = enrolQueueAgent(b, d, authority, fmt.Sprintf("bench-%d", i))
	}
	return out
}

// benchTestDeps: a migrated database, Redis (the guard reads its refusal marks, as
// deployed), a clock that moves.
func benchTestDeps(b *testing.B) *testDeps {
	d := &testDeps{Pool: testenv.NewDB(b, migrate.ModePostgres), Logger: testenv.Discard(),
		Clock: &benchClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}}
	d.Redis, d.KeyPrefix = testenv.Redis(b)
	return d
}

func benchQueue(srv *localsqs.Server) heartbeat.Enqueuer {
	cfg := aws.Config{Region: "eu-west-3", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
	return ingestqueue.New(cfg, "https://sqs.eu-west-3.amazonaws.com/111111111111/heartbeats")
}

// benchService is the heartbeat function's service with the per-address and per-machine
// limits out of the way (the load comes from one address, faster than real agents; the
// limits' own Redis call is still made).
func benchService(d *testDeps, queue heartbeat.Enqueuer) *heartbeat.Service {
	return heartbeat.New(heartbeat.Deps{Pool: d.Pool, Redis: d.Redis, Clock: d.Clock, Logger: d.Logger, RedisPrefix: d.KeyPrefix,
		Limit: ratelimit.Limit{Burst: 1 << 30, Period: time.Minute}, MachineLimit: ratelimit.Limit{Burst: 1 << 30, Period: time.Minute},
		Queue: queue})
}

func BenchmarkLambdaIngestHeartbeat(b *testing.B) {
	for _, mode := range []string{"direct", "queue"} {
		b.Run(mode, func(b *testing.B) {
			d := benchTestDeps(b)
			agents := benchAgents(b, d, 50)
			var queue heartbeat.Enqueuer
			if mode == "queue" {
				srv := localsqs.Start()
				defer srv.Close()
				queue = benchQueue(srv)
			}
			d.Heartbeat = benchService(d, queue)
			h := lambda.NewHandler(lambdaproxy.HTTPAPIHandler(d.FunctionHandler(routes.FnHeartbeat)))
			evs := make([][]byte, b.N)
			for i := range evs {
				at := time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second).Format(time.RFC3339)
				evs[i] = heartbeatEvent(b, agents[i%len(agents)], at)
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				out, err := h.Invoke(ctx, evs[i])
				if err != nil || !strings.Contains(string(out), `"statusCode":200`) {
					b.Fatalf("%s: %s %v", mode, out, err)
				}
			}
		})
	}
}

func BenchmarkLambdaIngestWriterBatch(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			d := benchTestDeps(b)
			agents := benchAgents(b, d, n)
			srv := localsqs.Start()
			defer srv.Close()
			d.Heartbeat = benchService(d, benchQueue(srv))
			hb := lambda.NewHandler(lambdaproxy.HTTPAPIHandler(d.FunctionHandler(routes.FnHeartbeat)))
			// b.N batches of n heartbeats (one per machine), queued through the heartbeat function.
			ctx := context.Background()
			for i := 0; i < b.N*n; i++ {
				at := time.Date(2026, 1, 1, 11, 0, 0, 0, time.UTC).Add(time.Duration(i/n) * time.Minute).Format(time.RFC3339)
				if out, err := hb.Invoke(ctx, heartbeatEvent(b, agents[i%n], at)); err != nil || !strings.Contains(string(out), `"statusCode":200`) {
					b.Fatalf("queue: %s %v", out, err)
				}
			}
			msgs := srv.Messages()
			batches := make([][]byte, b.N)
			for i := range batches {
				bodies := make([]string, n)
				for j := range bodies {
					bodies[j] = msgs[i*n+j].Body
				}
				batches[i] = sqsEvent(b, 1, bodies...)
			}
			w := lambda.NewHandler(lambdaproxy.SQSHandler(heartbeatwriterfn.Handler(heartbeatwriterfn.New(d.core(), 0), d.Logger)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				out, err := w.Invoke(ctx, batches[i])
				if err != nil || strings.Contains(string(out), "itemIdentifier") {
					b.Fatalf("writer: %s %v", out, err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "heartbeats/s")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
			if got := metricsRows(b, d, agents[0].machineID); got != b.N {
				b.Fatalf("machine 0 has %d rows after %d batches", got, b.N)
			}
		})
	}
}
