package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	json "github.com/goccy/go-json"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/app/heartbeatfn"
	"github.com/optralis/optralis/internal/app/heartbeatwriterfn"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/heartbeat"
	"github.com/optralis/optralis/internal/ingestqueue"
	"github.com/optralis/optralis/internal/localsqs"
	"github.com/optralis/optralis/internal/routes"
	"github.com/optralis/optralis/internal/testenv"
)

// queueAgent is an enrolled machine and its certificate, as the queue tests need it.
type queueAgent struct {
	clientID, machineID, serial, certPEM string
}

func enrolQueueAgent(t testing.TB, d *testDeps, authority *ca.CA, name string) queueAgent {
	t.Helper()
	now := d.Clock.Now()
	clientID := testenv.Client(t, d.Pool, "Pro")
	machineID := testenv.Machine(t, d.Pool, clientID, name)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is, err := certs.Issue(context.Background(), d.Pool, authority, certs.IssueRequest{ClientID: clientID, MachineID: machineID,
		PublicKey: key.Public(), Reason: "test"}, now)
	if err != nil {
		t.Fatal(err)
	}
	return queueAgent{clientID: clientID, machineID: machineID, serial: ca.SerialHex(is.Cert.SerialNumber),
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.Cert.Raw}))}
}

// heartbeatEvent is the HTTP API heartbeat sample presenting a's certificate.
func heartbeatEvent(t testing.TB, a queueAgent, recordedAt string) []byte {
	t.Helper()
	var ev map[string]any
	raw, err := os.ReadFile("../../events/httpapi_heartbeat_mtls.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	ev["requestContext"].(map[string]any)["authentication"].(map[string]any)["clientCert"].(map[string]any)["clientCertPem"] = a.certPEM
	ev["body"] = strings.Replace(ev["body"].(string), "2026-01-01T12:00:00Z", recordedAt, 1)
	raw, _ = json.Marshal(ev)
	return raw
}

// sqsEvent is the SQS event delivering the bodies (receive count n).
func sqsEvent(t testing.TB, n int, bodies ...string) []byte {
	t.Helper()
	ev := events.SQSEvent{}
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprintf("msg-%d", i), Body: b, EventSource: "aws:sqs",
			Attributes: map[string]string{"ApproximateReceiveCount": fmt.Sprint(n)}})
	}
	raw, _ := json.Marshal(ev)
	return raw
}

func metricsRows(t testing.TB, d *testDeps, machineID string) int {
	t.Helper()
	var n int
	if err := d.Pool.QueryRow(context.Background(), `SELECT count(*) FROM metrics WHERE machine_id = $1`, machineID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The queue ingest end to end on real parts: the heartbeat function (Lambda JSON path,
// real PostgreSQL) answers only after the AWS SDK's SendMessage reached a local SQS
// server, writing nothing itself; the queued message, replayed as an SQS event through
// the writer function's Lambda path, writes the rows; a redelivery adds nothing; a queue
// that refuses gives 503 + Retry-After and nothing is acknowledged; a certificate revoked
// between enqueue and write is dropped, not retried; a database outage reports every
// message failed.
func TestQueueIngestEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := deps(t)
	authority, err := ca.LoadOrCreateLocal(t.TempDir(), d.Clock.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	a := enrolQueueAgent(t, d, authority, "queued-a")
	b := enrolQueueAgent(t, d, authority, "queued-b")

	srv := localsqs.Start()
	defer srv.Close()
	cfg := aws.Config{Region: "eu-west-3", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}
	d.Heartbeat = heartbeatfn.NewServiceWith(d.core(), heartbeatfn.Settings{MachineLimit: 10,
		Queue: ingestqueue.New(cfg, "https://sqs.eu-west-3.amazonaws.com/111111111111/heartbeats")})
	h := d.FunctionHandler(routes.FnHeartbeat)

	// Acknowledged after SendMessage; nothing written by the heartbeat function.
	for _, c := range []struct {
		agent queueAgent
		at    string
	}{{a, "2026-01-01T12:08:00Z"}, {a, "2026-01-01T12:09:00Z"}, {b, "2026-01-01T12:09:00Z"}} {
		resp := invokeHTTPAPI(t, h, heartbeatEvent(t, c.agent, c.at))
		if resp.StatusCode != 200 || !strings.Contains(resp.Body, `"next_interval_seconds"`) {
			t.Fatalf("queued heartbeat: %d %s", resp.StatusCode, resp.Body)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d messages queued, want 3", len(msgs))
	}
	if metricsRows(t, d, a.machineID)+metricsRows(t, d, b.machineID) != 0 {
		t.Fatal("the heartbeat function wrote rows in queue mode")
	}
	var it heartbeat.Item
	if err := json.Unmarshal([]byte(msgs[0].Body), &it); err != nil || it.MachineID != a.machineID || it.Serial != a.serial ||
		!it.ReceivedAt.Equal(d.Clock.Now()) {
		t.Fatalf("queued item %+v, %v", it, err)
	}

	// The queue refuses: 503 with Retry-After, nothing queued.
	srv.Fail(true)
	resp := invokeHTTPAPI(t, h, heartbeatEvent(t, a, "2026-01-01T12:10:00Z"))
	if resp.StatusCode != 503 || resp.Headers["Retry-After"] == "" {
		t.Fatalf("queue down: %d %v %s", resp.StatusCode, resp.Headers, resp.Body)
	}
	srv.Fail(false)
	if len(srv.Messages()) != 3 {
		t.Fatal("a refused send was counted")
	}

	bodies := []string{msgs[0].Body, msgs[1].Body, msgs[2].Body}
	writer := heartbeatwriterfn.Handler(heartbeatwriterfn.New(d.core(), 0), d.Logger)

	// A database outage: every message reported failed, nothing written.
	dead, err := pgxpool.New(ctx, "postgres://nobody@127.0.0.1:1/none?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	down := heartbeatwriterfn.Handler(heartbeat.NewWriter(heartbeat.WriterConfig{Pool: dead, Logger: d.Logger}), d.Logger)
	if failed := invokeSQS(t, down, sqsEvent(t, 1, bodies...)); len(failed) != 3 {
		t.Fatalf("outage: %v reported failed, want all 3", failed)
	}

	// B's certificate is revoked after its heartbeat was queued: dropped, not retried.
	if _, err := d.Pool.Exec(ctx, `UPDATE client_certificates SET revoked_at = $2, revocation_reason = 'test' WHERE serial = $1`,
		b.serial, d.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if failed := invokeSQS(t, writer, sqsEvent(t, 2, bodies...)); len(failed) != 0 {
		t.Fatalf("written batch reported failures %v", failed)
	}
	if n, m := metricsRows(t, d, a.machineID), metricsRows(t, d, b.machineID); n != 2 || m != 0 {
		t.Fatalf("rows: a %d (want 2), revoked b %d (want 0)", n, m)
	}

	// Redelivered: nothing added, nothing failed.
	if failed := invokeSQS(t, writer, sqsEvent(t, 3, bodies...)); len(failed) != 0 {
		t.Fatalf("redelivery reported failures %v", failed)
	}
	if n := metricsRows(t, d, a.machineID); n != 2 {
		t.Fatalf("redelivery: %d rows, want 2", n)
	}

	// A message that is not a heartbeat is dropped (a poison message would otherwise cycle
	// to the dead-letter queue); its neighbours are written.
	if failed := invokeSQS(t, writer, sqsEvent(t, 1, `{"not":"a heartbeat"}`, "garbage")); len(failed) != 0 {
		t.Fatalf("poison messages reported failed %v", failed)
	}

	// B is now refused before anything is queued (the guard reads the revocation; with Redis, its refusal mark).
	resp = invokeHTTPAPI(t, h, heartbeatEvent(t, b, "2026-01-01T12:10:00Z"))
	if resp.StatusCode != 401 || len(srv.Messages()) != 3 {
		t.Fatalf("revoked agent: %d %s, %d messages", resp.StatusCode, resp.Body, len(srv.Messages()))
	}
}
