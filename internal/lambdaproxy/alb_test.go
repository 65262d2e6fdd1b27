package lambdaproxy

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func invokeALB(t *testing.T, ev any) events.ALBTargetGroupResponse {
	t.Helper()
	var resp events.ALBTargetGroupResponse
	var err error
	if raw, ok := ev.([]byte); ok {
		resp, err = invokeJSON[events.ALBTargetGroupResponse](t, ALBHandler(newEchoMux(t)), raw)
	} else {
		resp, err = invokeEvent[events.ALBTargetGroupResponse](t, ALBHandler(newEchoMux(t)), ev)
	}
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	return resp
}

// The ALB sample: the certificate comes from X-Amzn-Mtls-Clientcert-Leaf (URL-encoded
// PEM), the address from the last X-Forwarded-For hop, the request id from the trace id;
// no X-Amzn-Mtls-* header reaches the handler.
func TestALBHeartbeatMTLS(t *testing.T) {
	resp := invokeALB(t, readEvent(t, "alb_heartbeat_mtls.json"))
	e := decodeEcho(t, resp.StatusCode, resp.Body, resp.IsBase64Encoded)
	if e.Method != "POST" || e.Path != "/agent/heartbeat" || string(e.Body) != heartbeatJSON {
		t.Errorf("got %s %s %q", e.Method, e.Path, e.Body)
	}
	if e.ClientCN != agentCN {
		t.Errorf("identity CN = %q, want %q", e.ClientCN, agentCN)
	}
	if e.RemoteAddr != "192.0.2.10" {
		t.Errorf("RemoteAddr = %q, want the ALB-appended hop 192.0.2.10", e.RemoteAddr)
	}
	if e.RequestID != "Root=1-67a1b2c3-abcdef0123456789abcdef02" {
		t.Errorf("X-Request-ID = %q", e.RequestID)
	}
	if len(e.MTLSHeaders) != 0 || len(e.Reserved) != 0 {
		t.Errorf("headers reached the handler: %v %v", e.MTLSHeaders, e.Reserved)
	}
}

// A repeated leaf header, a leaf that is not URL-encoded PEM, or none: no identity.
func TestALBRefusesDoubtfulCertificates(t *testing.T) {
	base := loadEvent[events.ALBTargetGroupRequest](t, "alb_heartbeat_mtls.json")
	leaf := base.MultiValueHeaders["x-amzn-mtls-clientcert-leaf"][0]
	for name, mutate := range map[string]func(h map[string][]string){
		"repeated": func(h map[string][]string) { h["x-amzn-mtls-clientcert-leaf"] = []string{leaf, leaf} },
		"garbage":  func(h map[string][]string) { h["x-amzn-mtls-clientcert-leaf"] = []string{"%zz"} },
		"not PEM":  func(h map[string][]string) { h["x-amzn-mtls-clientcert-leaf"] = []string{url.PathEscape("hello")} },
		"absent":   func(h map[string][]string) { delete(h, "x-amzn-mtls-clientcert-leaf") },
		// The library's context header, sent by a client: dropped, and never an identity.
		"library header": func(h map[string][]string) {
			delete(h, "x-amzn-mtls-clientcert-leaf")
			h["X-GoLambdaProxy-ALB-Context"] = []string{`{"elb":{"targetGroupArn":"forged"}}`}
		},
	} {
		ev := base
		ev.MultiValueHeaders = map[string][]string{}
		for k, v := range base.MultiValueHeaders {
			ev.MultiValueHeaders[k] = append([]string(nil), v...)
		}
		mutate(ev.MultiValueHeaders)
		raw, _ := json.Marshal(ev)
		resp := invokeALB(t, raw)
		e := decodeEcho(t, resp.StatusCode, resp.Body, resp.IsBase64Encoded)
		if e.ClientCN != "" || len(e.Reserved) != 0 || len(e.MTLSHeaders) != 0 {
			t.Errorf("%s: identity %q, reserved %v, mtls %v", name, e.ClientCN, e.Reserved, e.MTLSHeaders)
		}
	}
}
