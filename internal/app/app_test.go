package app_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/app/migratefn"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/lambdaproxy"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/routes"
	"github.com/optralis/optralis/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func deps(t *testing.T) *testDeps {
	t.Helper()
	return &testDeps{
		Config: config.Config{JWTSecret: []byte(strings.Repeat("k", 32))},
		Pool:   testenv.NewDB(t, migrate.ModePostgres),
		Logger: testenv.Discard(),
		Clock:  clock.Fixed(time.Date(2026, 1, 1, 12, 10, 0, 0, time.UTC)),
	}
}

// invokeREST sends a REST (v1) event through the real Lambda JSON path to h and returns
// the response with its body decoded from base64 when API Gateway would receive it so.
func invokeREST(t *testing.T, h http.Handler, eventJSON []byte) events.APIGatewayProxyResponse {
	t.Helper()
	out, err := lambda.NewHandler(lambdaproxy.RESTHandler(h)).Invoke(context.Background(), eventJSON)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayProxyResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.IsBase64Encoded {
		b, _ := base64.StdEncoding.DecodeString(resp.Body)
		resp.Body = string(b)
	}
	return resp
}

func event(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../events/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The scheduled event and the status request replayed through the real Lambda JSON path
// into the real handlers and database.
func TestLambdaReplayUptimeThenStatus(t *testing.T) {
	t.Parallel()
	d := deps(t)
	ctx := context.Background()
	if _, err := lambda.NewHandler(lambdaproxy.ScheduledHandler(d.UptimeJob, d.Logger)).Invoke(ctx, event(t, "eventbridge_scheduled.json")); err != nil {
		t.Fatal(err)
	}
	var checkedAt time.Time
	if err := d.Pool.QueryRow(ctx, `SELECT max(checked_at) FROM service_uptime WHERE service_name = 'database'`).Scan(&checkedAt); err != nil {
		t.Fatal(err)
	}
	if !checkedAt.Equal(time.Date(2026, 1, 1, 12, 5, 0, 0, time.UTC)) {
		t.Fatalf("check recorded at %v, want the event's time", checkedAt)
	}

	resp := invokeREST(t, d.FunctionHandler(routes.FnStatus), event(t, "rest_get_status.json"))
	body := resp.Body
	if resp.StatusCode != 200 || !strings.Contains(body, `"name":"database","status":"online"`) {
		t.Fatalf("status via REST event: %d %s", resp.StatusCode, body)
	}
	if h := resp.MultiValueHeaders["X-Frame-Options"]; len(h) != 1 || h[0] != "DENY" {
		t.Fatalf("platform middleware missing on the Lambda path: %v", resp.MultiValueHeaders)
	}
}

func TestMigrateIsIdempotentAndBackfills(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.Pool(t, testenv.EmptyDatabase(t), db.ToolProfile())
	now := time.Now().UTC()
	first, err := migratefn.Migrate(ctx, pool, migrate.ModeAuto, now, testenv.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if !first.Backfilled || len(first.Applied) == 0 {
		t.Fatalf("first = %+v", first)
	}
	second, err := migratefn.Migrate(ctx, pool, migrate.ModeAuto, now, testenv.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if second.Backfilled || len(second.Applied) != 0 || second.Version != first.Version {
		t.Fatalf("second = %+v", second)
	}
}
