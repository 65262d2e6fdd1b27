package lambdaproxy

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func invokeHTTPAPI(t *testing.T, ev any) events.APIGatewayV2HTTPResponse {
	t.Helper()
	var resp events.APIGatewayV2HTTPResponse
	var err error
	if raw, ok := ev.([]byte); ok {
		resp, err = invokeJSON[events.APIGatewayV2HTTPResponse](t, HTTPAPIHandler(newEchoMux(t)), raw)
	} else {
		resp, err = invokeEvent[events.APIGatewayV2HTTPResponse](t, HTTPAPIHandler(newEchoMux(t)), ev)
	}
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	return resp
}

func httpAPIEcho(t *testing.T, ev any) echo {
	t.Helper()
	resp := invokeHTTPAPI(t, ev)
	return decodeEcho(t, resp.StatusCode, resp.Body, resp.IsBase64Encoded)
}

func TestHTTPAPIHeartbeatMTLS(t *testing.T) {
	e := httpAPIEcho(t, readEvent(t, "httpapi_heartbeat_mtls.json"))

	if e.Method != "POST" || e.Path != "/agent/heartbeat" || string(e.Body) != heartbeatJSON {
		t.Errorf("got %s %s %q", e.Method, e.Path, e.Body)
	}
	if e.ClientCN != agentCN {
		t.Errorf("identity CN = %q, want %q", e.ClientCN, agentCN)
	}
	if e.RemoteAddr != "192.0.2.10" {
		t.Errorf("RemoteAddr = %q, want requestContext.http.sourceIp 192.0.2.10 (X-Forwarded-For %q)", e.RemoteAddr, e.XFF)
	}
	if e.RequestID != "Xk4aBhZ0IAMEVwQ=" {
		t.Errorf("X-Request-ID = %q, want API Gateway requestId", e.RequestID)
	}
}

func TestHTTPAPIGzipBodyIntact(t *testing.T) {
	raw := readEvent(t, "httpapi_heartbeat_gzip.json")
	ev := loadEvent[events.APIGatewayV2HTTPRequest](t, "httpapi_heartbeat_gzip.json")
	want, err := base64.StdEncoding.DecodeString(ev.Body)
	if err != nil || !ev.IsBase64Encoded {
		t.Fatalf("sample must carry a base64 body: %v", err)
	}

	e := httpAPIEcho(t, raw)
	if !bytes.Equal(e.Body, want) {
		t.Fatalf("handler got %d bytes, want the %d decoded gzip bytes", len(e.Body), len(want))
	}
	zr, err := gzip.NewReader(bytes.NewReader(e.Body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != heartbeatJSON {
		t.Errorf("gunzipped body = %q", plain)
	}
	if e.ContentEnc != "gzip" || e.ClientCN != agentCN || e.RemoteAddr != "192.0.2.11" {
		t.Errorf("content-encoding %q, CN %q, RemoteAddr %q", e.ContentEnc, e.ClientCN, e.RemoteAddr)
	}
}

func TestHTTPAPIForgedContextIgnored(t *testing.T) {
	e := httpAPIEcho(t, readEvent(t, "httpapi_forged_context.json"))
	assertNoForgery(t, e)
	if e.RemoteAddr != "192.0.2.12" || e.RequestID != "Xk4aDjKCoAMEbYg=" {
		t.Errorf("RemoteAddr %q, X-Request-ID %q: want the event's requestContext values", e.RemoteAddr, e.RequestID)
	}
}

func TestHTTPAPIForgedHeaderDoesNotOverrideRealCert(t *testing.T) {
	forged := loadEvent[events.APIGatewayV2HTTPRequest](t, "httpapi_forged_context.json")
	ev := loadEvent[events.APIGatewayV2HTTPRequest](t, "httpapi_heartbeat_mtls.json")
	ev.Headers["X-GoLambdaProxy-ApiGw-Context"] = forged.Headers["x-golambdaproxy-apigw-context"]
	ev.Headers["X-GOLAMBDAPROXY-APIGW-STAGEVARS"] = forged.Headers["x-golambdaproxy-apigw-stagevars"]

	e := httpAPIEcho(t, ev)
	if e.ClientCN != agentCN {
		t.Errorf("identity CN = %q, want %q", e.ClientCN, agentCN)
	}
	if len(e.Reserved) != 0 || e.HeaderCtxOK {
		t.Errorf("reserved headers reached handler: %v", e.Reserved)
	}
}

func TestHTTPAPIMalformedPEMGivesNoIdentity(t *testing.T) {
	for name, pemText := range map[string]string{
		"garbage":     "not a pem",
		"bad DER":     "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
		"wrong type":  "-----BEGIN PRIVATE KEY-----\nbm90IGEgY2VydA==\n-----END PRIVATE KEY-----\n",
		"empty (off)": "",
	} {
		t.Run(name, func(t *testing.T) {
			ev := loadEvent[events.APIGatewayV2HTTPRequest](t, "httpapi_heartbeat_mtls.json")
			ev.RequestContext.Authentication.ClientCert.ClientCertPem = pemText
			if e := httpAPIEcho(t, ev); e.ClientCN != "" {
				t.Errorf("identity CN = %q, want none", e.ClientCN)
			}
		})
	}
}

func TestHTTPAPIResponseEncoding(t *testing.T) {
	ev := loadEvent[events.APIGatewayV2HTTPRequest](t, "httpapi_heartbeat_mtls.json")
	ev.RawPath, ev.RequestContext.HTTP.Method, ev.Body = "/blob", "GET", ""
	resp := invokeHTTPAPI(t, ev)
	if !resp.IsBase64Encoded {
		t.Fatal("binary response not flagged isBase64Encoded")
	}
	got, err := base64.StdEncoding.DecodeString(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, gzipBlob(t)) {
		t.Error("binary response body altered")
	}

	// Text stays text, so API Gateway need not decode it.
	if text := invokeHTTPAPI(t, readEvent(t, "httpapi_heartbeat_mtls.json")); text.IsBase64Encoded {
		t.Error("JSON response was base64-encoded")
	}
}
