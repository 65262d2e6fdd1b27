package heartbeat_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/lambdaproxy"
)

// The recorded API Gateway HTTP API event (mutual TLS, gzip body, Content-Encoding: gzip)
// replayed through the Lambda adapter and the heartbeat function's handler: the
// certificate arrives in the request context, the base64 gzip body is detected and
// decompressed. The sample's body is replaced by a current heartbeat (its own is an older
// shape), and its certificate is recorded as the machine's active one.
func TestReplayHTTPAPIGzipEvent(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../events/httpapi_heartbeat_gzip.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	rc := ev["requestContext"].(map[string]any)
	auth := rc["authentication"].(map[string]any)
	sourceIP := rc["http"].(map[string]any)["sourceIp"].(string)
	block, _ := pem.Decode([]byte(auth["clientCert"].(map[string]any)["clientCertPem"].(string)))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	const clientID, machineID = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
	e := setup(t, options{})
	ctx := context.Background()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO clients (id, name, license_tier) VALUES ($1, 'Replay MSP', 'Pro')`, []any{clientID}},
		{`INSERT INTO machines (id, client_id, hostname) VALUES ($1, $2, 'replay')`, []any{machineID, clientID}},
		{`INSERT INTO client_certificates (client_id, machine_id, serial, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			[]any{clientID, machineID, ca.SerialHex(cert.SerialNumber), cert.NotBefore, cert.NotAfter}},
	} {
		if _, err := e.pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	ev["body"] = base64.StdEncoding.EncodeToString(gz(mustJSON(payload(e.now.Add(-time.Second)))))
	ev["isBase64Encoded"] = true
	// The real JSON path of a Lambda invocation, in process.
	h := lambda.NewHandler(lambdaproxy.HTTPAPIHandler(e.h))
	invoke := func() (res struct {
		StatusCode int    `json:"statusCode"`
		Body       string `json:"body"`
	}) {
		out, err := h.Invoke(ctx, mustJSON(ev))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := invoke(); res.StatusCode != 200 {
		t.Fatalf("replayed heartbeat: %d %s", res.StatusCode, res.Body)
	}
	var n int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM metrics WHERE machine_id = $1`, machineID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	var ip string
	if err := e.pool.QueryRow(ctx, `SELECT ip_address FROM machines WHERE id = $1`, machineID).Scan(&ip); err != nil {
		t.Fatal(err)
	}
	if n != 1 || ip != sourceIP {
		t.Errorf("after the replay: %d metrics rows, ip %q (sourceIp %q)", n, ip, sourceIP)
	}
	// Without the certificate in the context, the same event is refused.
	delete(auth, "clientCert")
	if res := invoke(); res.StatusCode != 401 {
		t.Errorf("no certificate: %d %s", res.StatusCode, res.Body)
	}
}
