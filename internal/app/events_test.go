package app_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/app/heartbeatwriterfn"
	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/lambdaproxy"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/routes"
	"github.com/optralis/optralis/internal/testenv"
)

// sampleEvents documents what each sample in events/ answers when replayed through the
// Lambda JSON path into the real function handler and a real database. A sample missing
// here fails the test, so none can be added without being exercised.
var sampleEvents = map[string]struct {
	function string // the function whose handler (or job) receives it
	status   int    // the documented answer (0: a scheduled event, the job must succeed)
	why      string
}{
	"eventbridge_scheduled.json":  {routes.FnUptime, 0, "the uptime job records its checks at the event's time"},
	"rest_get_status.json":        {routes.FnStatus, 200, "public status page data"},
	"rest_forged_context.json":    {routes.FnStatus, 200, "the forged X-GoLambdaProxy-ApiGw-Context header is stripped; a public route still answers"},
	"rest_post_login.json":        {routes.FnAuth, 200, "ops@example.com signs in (the test creates that user with the sample's password)"},
	"httpapi_heartbeat_mtls.json": {routes.FnHeartbeat, 200, "a valid heartbeat from an enrolled agent (the test substitutes its real certificate)"},
	"httpapi_heartbeat_gzip.json": {routes.FnHeartbeat, 200, "the same heartbeat gzipped, base64 in the event"},
	"httpapi_forged_context.json": {routes.FnHeartbeat, 401, "a certificate forged in a header, none from API Gateway: refused"},
	"alb_heartbeat_mtls.json":     {routes.FnHeartbeat, 200, "the same heartbeat behind the ALB (AGENTS_ENDPOINT=alb): certificate from X-Amzn-Mtls-Clientcert-Leaf; a retry, nothing stored twice"},
	"sqs_heartbeats.json":         {routes.FnHeartbeatWriter, 0, "three queued heartbeats (INGEST_MODE=queue) written as one group, none reported failed"},
}

// TestEverySampleEventReachesItsDocumentedAnswer replays each sample of events/.
func TestEverySampleEventReachesItsDocumentedAnswer(t *testing.T) {
	files, err := filepath.Glob("../../events/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample events: %v", err)
	}
	for _, f := range files {
		if _, ok := sampleEvents[filepath.Base(f)]; !ok {
			t.Errorf("events/%s has no documented answer in sampleEvents", filepath.Base(f))
		}
	}
	ctx := context.Background()

	// Heartbeat, status and uptime: the fixed clock of deps (2026-01-01 12:10 UTC, just
	// after the samples' own times), one client with an enrolled machine.
	d := deps(t)
	now := d.Clock.Now()
	authority, err := ca.LoadOrCreateLocal(t.TempDir(), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	clientID := testenv.Client(t, d.Pool, "Pro")
	machineID := testenv.Machine(t, d.Pool, clientID, "sample-agent")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is, err := certs.Issue(ctx, d.Pool, authority, certs.IssueRequest{ClientID: clientID, MachineID: machineID,
		PublicKey: key.Public(), Reason: "test"}, now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.Cert.Raw}))

	// Login: the auth function with the user the sample signs in as.
	s := newStack(t)
	if _, err := s.d.Auth.CreateUser(ctx, auth.NewUser{Email: "ops@example.com", Name: "Ops", Role: principal.RoleAdmin,
		ClientID: testenv.Client(t, s.d.Pool, "Pro"), Password: "Correct-Horse-Battery-2026"}); err != nil {
		t.Fatal(err)
	}

	for _, f := range files {
		name := filepath.Base(f)
		want, ok := sampleEvents[name]
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			raw := event(t, name)
			switch {
			case strings.HasPrefix(name, "eventbridge_"):
				if _, err := lambda.NewHandler(lambdaproxy.ScheduledHandler(d.UptimeJob, d.Logger)).Invoke(ctx, raw); err != nil {
					t.Fatalf("%s: %v", want.why, err)
				}
				var n int
				if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM service_uptime WHERE checked_at = '2026-01-01T12:05:00Z'`).Scan(&n); err != nil || n == 0 {
					t.Fatalf("%s: %d rows, %v", want.why, n, err)
				}
			case strings.HasPrefix(name, "sqs_"):
				raw = bytes.ReplaceAll(raw, []byte("22222222-2222-2222-2222-222222222222"), []byte(machineID))
				raw = bytes.ReplaceAll(raw, []byte("11111111-1111-1111-1111-111111111111"), []byte(clientID))
				raw = bytes.ReplaceAll(raw, []byte("3a5f0c2d9e4b7a1c6f8e2d4b0a9c7e51"), []byte(ca.SerialHex(is.Cert.SerialNumber)))
				if failed := invokeSQS(t, heartbeatwriterfn.Handler(heartbeatwriterfn.New(d.core(), 0), d.Logger), raw); len(failed) != 0 {
					t.Fatalf("%s: failures %v", want.why, failed)
				}
				var n int
				if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM metrics WHERE machine_id = $1 AND recorded_at BETWEEN '2026-01-01T12:08:00Z' AND '2026-01-01T12:10:00Z'`,
					machineID).Scan(&n); err != nil || n != 3 {
					t.Fatalf("%s: %d rows, %v", want.why, n, err)
				}
			case strings.HasPrefix(name, "alb_"):
				var ev events.ALBTargetGroupRequest
				if err := json.Unmarshal(raw, &ev); err != nil {
					t.Fatal(err)
				}
				ev.MultiValueHeaders["x-amzn-mtls-clientcert-leaf"] = []string{url.PathEscape(certPEM)}
				raw, _ = json.Marshal(ev)
				resp := invokeALB(t, d.FunctionHandler(want.function), raw)
				if resp.StatusCode != want.status {
					t.Fatalf("%d %s, want %d: %s", resp.StatusCode, resp.Body, want.status, want.why)
				}
			case strings.HasPrefix(name, "rest_"):
				h := d.FunctionHandler(want.function)
				if want.function == routes.FnAuth {
					h = s.d.FunctionHandler(routes.FnAuth)
				}
				resp := invokeREST(t, h, raw)
				if resp.StatusCode != want.status {
					t.Fatalf("%d %s, want %d: %s", resp.StatusCode, resp.Body, want.status, want.why)
				}
				if want.function == routes.FnAuth && !strings.Contains(resp.Body, `"access_token"`) {
					t.Fatalf("login answered no token: %s", resp.Body)
				}
				if name == "rest_forged_context.json" && strings.Contains(resp.Body, "forged-request-id") {
					t.Fatalf("the forged context reached the handler: %s", resp.Body)
				}
			case strings.HasPrefix(name, "httpapi_"):
				var ev map[string]any
				if err := json.Unmarshal(raw, &ev); err != nil {
					t.Fatal(err)
				}
				if a, ok := ev["requestContext"].(map[string]any)["authentication"].(map[string]any); ok {
					a["clientCert"].(map[string]any)["clientCertPem"] = certPEM
				}
				raw, _ = json.Marshal(ev)
				resp := invokeHTTPAPI(t, d.FunctionHandler(want.function), raw)
				if resp.StatusCode != want.status {
					t.Fatalf("%d %s, want %d: %s", resp.StatusCode, resp.Body, want.status, want.why)
				}
			}
		})
	}
	var stored int
	if err := d.Pool.QueryRow(ctx, `SELECT count(*) FROM metrics WHERE machine_id = $1 AND recorded_at = '2026-01-01T12:00:00Z'`, machineID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 1 {
		// The plain, gzip and ALB samples carry the same heartbeat: the others are retries.
		t.Errorf("%d heartbeats stored from the three samples, want 1", stored)
	}
}

// invokeALB sends an ALB target-group event through the real Lambda JSON path to h.
func invokeALB(t *testing.T, h http.Handler, eventJSON []byte) events.ALBTargetGroupResponse {
	t.Helper()
	out, err := lambda.NewHandler(lambdaproxy.ALBHandler(h)).Invoke(context.Background(), eventJSON)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.ALBTargetGroupResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.IsBase64Encoded {
		b, _ := base64.StdEncoding.DecodeString(resp.Body)
		resp.Body = string(b)
	}
	return resp
}

// invokeSQS sends an SQS event through the real Lambda JSON path to the writer's batch
// handler and returns the message ids it reported failed.
func invokeSQS(t *testing.T, consume func(context.Context, []lambdaproxy.QueueMessage) []string, eventJSON []byte) []string {
	t.Helper()
	out, err := lambda.NewHandler(lambdaproxy.SQSHandler(consume)).Invoke(context.Background(), eventJSON)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

// invokeHTTPAPI sends an HTTP API (v2) event through the real Lambda JSON path to h.
func invokeHTTPAPI(t *testing.T, h http.Handler, eventJSON []byte) events.APIGatewayV2HTTPResponse {
	t.Helper()
	out, err := lambda.NewHandler(lambdaproxy.HTTPAPIHandler(h)).Invoke(context.Background(), eventJSON)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.IsBase64Encoded {
		b, _ := base64.StdEncoding.DecodeString(resp.Body)
		resp.Body = string(b)
	}
	return resp
}
