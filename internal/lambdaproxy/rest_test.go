package lambdaproxy

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func invokeREST(t *testing.T, ev any) events.APIGatewayProxyResponse {
	t.Helper()
	var resp events.APIGatewayProxyResponse
	var err error
	if raw, ok := ev.([]byte); ok {
		resp, err = invokeJSON[events.APIGatewayProxyResponse](t, RESTHandler(newEchoMux(t)), raw)
	} else {
		resp, err = invokeEvent[events.APIGatewayProxyResponse](t, RESTHandler(newEchoMux(t)), ev)
	}
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	return resp
}

func restEcho(t *testing.T, ev any) echo {
	t.Helper()
	resp := invokeREST(t, ev)
	return decodeEcho(t, resp.StatusCode, resp.Body, resp.IsBase64Encoded)
}

func TestRESTGetStatus(t *testing.T) {
	e := restEcho(t, readEvent(t, "rest_get_status.json"))

	if e.Method != "GET" || e.Path != "/status" || e.Query != "verbose=true" {
		t.Errorf("got %s %s?%s", e.Method, e.Path, e.Query)
	}
	// RemoteAddr is API Gateway's sourceIp, not the client-controlled first X-Forwarded-For hop.
	if e.RemoteAddr != "198.51.100.7" {
		t.Errorf("RemoteAddr = %q, want 198.51.100.7", e.RemoteAddr)
	}
	if e.XFF != "203.0.113.99, 198.51.100.7" {
		t.Errorf("X-Forwarded-For = %q (should pass through untouched)", e.XFF)
	}
	if e.RequestID != "c6af9ac6-7b61-11e6-9a41-93e8deadbeef" {
		t.Errorf("X-Request-ID = %q, want API Gateway requestId", e.RequestID)
	}
	if e.ClientCN != "" {
		t.Errorf("identity CN = %q, want none", e.ClientCN)
	}
}

func TestRESTPostLogin(t *testing.T) {
	e := restEcho(t, readEvent(t, "rest_post_login.json"))

	if e.Method != "POST" || e.Path != "/api/auth/login" {
		t.Errorf("got %s %s", e.Method, e.Path)
	}
	if want := `{"email":"ops@example.com","password":"Correct-Horse-Battery-2026"}`; string(e.Body) != want {
		t.Errorf("body = %q, want %q", e.Body, want)
	}
	// A client-supplied X-Request-ID is kept.
	if e.RequestID != "console-7f3c2a" {
		t.Errorf("X-Request-ID = %q, want console-7f3c2a", e.RequestID)
	}
	if e.RemoteAddr != "198.51.100.8" {
		t.Errorf("RemoteAddr = %q", e.RemoteAddr)
	}
}

func TestRESTForgedContextIgnored(t *testing.T) {
	e := restEcho(t, readEvent(t, "rest_forged_context.json"))
	assertNoForgery(t, e)
	if e.RemoteAddr != "198.51.100.9" || e.RequestID != "5e1d3c2b-8a7f-4b6e-9d0c-1f2e3d4c5b6a" {
		t.Errorf("RemoteAddr %q, X-Request-ID %q: want the event's requestContext values", e.RemoteAddr, e.RequestID)
	}
}

// The library reads MultiValueHeaders when present and Headers otherwise, and
// clients choose the header case: every combination must be stripped.
func TestRESTForgedContextAnyCaseAnyHeaderMap(t *testing.T) {
	forged := loadEvent[events.APIGatewayProxyRequest](t, "rest_forged_context.json")
	value := forged.Headers["X-GoLambdaProxy-ApiGw-Context"]
	for _, name := range []string{"x-golambdaproxy-apigw-context", "X-GOLAMBDAPROXY-APIGW-CONTEXT", "X-GoLambdaProxy-ApiGw-Context"} {
		for _, where := range []string{"headers", "multiValueHeaders", "both"} {
			t.Run(name+"/"+where, func(t *testing.T) {
				ev := loadEvent[events.APIGatewayProxyRequest](t, "rest_get_status.json")
				if where != "multiValueHeaders" {
					ev.Headers[name] = value
				} else {
					ev.Headers = nil
				}
				if where != "headers" {
					ev.MultiValueHeaders[name] = []string{value}
				} else {
					ev.MultiValueHeaders = nil
				}
				assertNoForgery(t, restEcho(t, ev))
			})
		}
	}
}

func TestRESTClientCertFromRequestContext(t *testing.T) {
	v2 := loadEvent[events.APIGatewayV2HTTPRequest](t, "httpapi_heartbeat_mtls.json")
	cc := v2.RequestContext.Authentication.ClientCert

	ev := loadEvent[events.APIGatewayProxyRequest](t, "rest_forged_context.json")
	ev.RequestContext.Identity.ClientCert = &events.APIGatewayCustomAuthorizerRequestTypeRequestIdentityClientCert{
		ClientCertPem: cc.ClientCertPem, SubjectDN: cc.SubjectDN, IssuerDN: cc.IssuerDN, SerialNumber: cc.SerialNumber,
	}
	// The genuine certificate wins even with a forged header alongside.
	if e := restEcho(t, ev); e.ClientCN != agentCN {
		t.Errorf("identity CN = %q, want %q", e.ClientCN, agentCN)
	}

	ev.RequestContext.Identity.ClientCert.ClientCertPem = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
	if e := restEcho(t, ev); e.ClientCN != "" {
		t.Errorf("malformed PEM gave identity CN %q", e.ClientCN)
	}
}

func TestRESTBinaryResponseIsBase64(t *testing.T) {
	ev := loadEvent[events.APIGatewayProxyRequest](t, "rest_get_status.json")
	ev.Path, ev.Resource = "/blob", "/blob"
	resp := invokeREST(t, ev)
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
}

func TestRESTGzipBodyIntact(t *testing.T) {
	gz := loadEvent[events.APIGatewayV2HTTPRequest](t, "httpapi_heartbeat_gzip.json")
	want, err := base64.StdEncoding.DecodeString(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	ev := loadEvent[events.APIGatewayProxyRequest](t, "rest_post_login.json")
	ev.Body, ev.IsBase64Encoded = gz.Body, true
	ev.MultiValueHeaders["Content-Encoding"] = []string{"gzip"}

	if e := restEcho(t, ev); !bytes.Equal(e.Body, want) || e.ContentEnc != "gzip" {
		t.Errorf("handler got %d bytes (content-encoding %q), want the %d decoded gzip bytes", len(e.Body), e.ContentEnc, len(want))
	}
}
