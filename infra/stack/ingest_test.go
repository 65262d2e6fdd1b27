package stack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/jsii-runtime-go"
)

// writeCRL writes a throwaway PEM CRL (the ALB variant's alb.revocationList).
func writeCRL(t *testing.T) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: now, NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.AddDate(0, 0, 7),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(42), RevocationTime: now}}}, ca, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "revoked.crl")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func envOf(v *variant, fn string) map[string]any {
	p := props(resources(v.mainJSON, "AWS::Lambda::Function")[v.functions[fn]])
	e, _ := p["Environment"].(map[string]any)
	vars, _ := e["Variables"].(map[string]any)
	return vars
}

// TestQueueIngest: the queue mode synthesizes the encrypted queue, its DLQ after
// maxReceiveCount receives, the writer with its event source (configured batch, partial
// batch failures), the heartbeat's send grant and the alarms; direct mode none of it.
func TestQueueIngest(t *testing.T) {
	direct := synth(t, "deployed")
	if _, ok := direct.functions["heartbeatwriter"]; ok {
		t.Error("direct mode deploys the queue writer")
	}
	if n := len(resources(direct.mainJSON, "AWS::Lambda::EventSourceMapping")); n != 0 {
		t.Errorf("direct mode: %d event source mappings", n)
	}
	if env := envOf(direct, "heartbeat"); env["INGEST_MODE"] != "direct" || env["HEARTBEAT_QUEUE_URL"] != nil {
		t.Errorf("direct mode heartbeat environment: %s", js(env))
	}
	for name, want := range map[string]QueueConfig{
		"planned": {BatchSize: 100, MaxBatchingWindowSeconds: 1, MaxReceiveCount: 5, AgeAlarmSeconds: 300},
		"alb":     {BatchSize: 500, MaxBatchingWindowSeconds: 2, MaxReceiveCount: 7, AgeAlarmSeconds: 120},
	} {
		v := synth(t, name)
		queues := resources(v.mainJSON, "AWS::SQS::Queue")
		var hbQueue, hbDLQ string
		for id := range queues {
			switch {
			case strings.HasPrefix(id, "HeartbeatQueue"):
				hbQueue = id
			case strings.HasPrefix(id, "HeartbeatDeadLetterQueue"):
				hbDLQ = id
			}
		}
		if hbQueue == "" || hbDLQ == "" {
			t.Fatalf("%s: queues %v", name, keysOfAny(queues))
		}
		qp := props(queues[hbQueue])
		if qp["SqsManagedSseEnabled"] != true || props(queues[hbDLQ])["SqsManagedSseEnabled"] != true {
			t.Errorf("%s: heartbeat queues not encrypted: %s", name, js(qp))
		}
		rp := js(qp["RedrivePolicy"])
		if !refersTo(qp["RedrivePolicy"], hbDLQ) || !strings.Contains(rp, `"maxReceiveCount":`+itoa(want.MaxReceiveCount)) {
			t.Errorf("%s: redrive policy %s", name, rp)
		}
		if qp["VisibilityTimeout"] != float64(180) {
			t.Errorf("%s: visibility timeout %v, want 6 x the writer's 30 s", name, qp["VisibilityTimeout"])
		}
		check(t, name+": writer event source", func() {
			v.main.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), map[string]any{
				"FunctionName":                   map[string]any{"Ref": v.functions["heartbeatwriter"]},
				"BatchSize":                      want.BatchSize,
				"MaximumBatchingWindowInSeconds": want.MaxBatchingWindowSeconds,
				"FunctionResponseTypes":          []any{"ReportBatchItemFailures"},
			})
		})
		env := envOf(v, "heartbeat")
		if env["INGEST_MODE"] != "queue" || !refersTo(env["HEARTBEAT_QUEUE_URL"], hbQueue) {
			t.Errorf("%s: heartbeat environment %s", name, js(env))
		}
		if env := envOf(v, "heartbeatwriter"); env["DATABASE_URL_SECRET_ARN"] == nil || env["HEARTBEAT_QUEUE_URL"] != nil {
			t.Errorf("%s: writer environment %s", name, js(env))
		}
		// Only the heartbeat function may send.
		for id, pol := range resources(v.mainJSON, "AWS::IAM::Policy") {
			doc := js(props(pol)["PolicyDocument"])
			if strings.Contains(doc, "sqs:SendMessage") && refersTo(props(pol)["PolicyDocument"], hbQueue) {
				if !strings.HasPrefix(id, "Heartbeat") || strings.HasPrefix(id, "Heartbeatwriter") {
					t.Errorf("%s: %s may send to the heartbeat queue", name, id)
				}
			}
		}
		alarms := resources(v.mainJSON, "AWS::CloudWatch::Alarm")
		found := map[string]bool{}
		for _, a := range alarms {
			p := props(a)
			switch {
			case p["MetricName"] == "ApproximateNumberOfMessagesVisible" && refersTo(p["Dimensions"], hbDLQ) && p["Threshold"] == float64(1):
				found["dlq"] = true
			case p["MetricName"] == "ApproximateAgeOfOldestMessage" && refersTo(p["Dimensions"], hbQueue) && p["Threshold"] == float64(want.AgeAlarmSeconds):
				found["age"] = true
			case p["MetricName"] == "Errors" && refersTo(p["Dimensions"], v.functions["heartbeatwriter"]):
				found["writer errors"] = true
			}
		}
		for _, k := range []string{"dlq", "age", "writer errors"} {
			if !found[k] {
				t.Errorf("%s: no %s alarm", name, k)
			}
		}
	}
}

// TestLambdaLoggingControls: JSON logs, the platform's START/END/REPORT lines dropped
// (system level WARN), the configured application level, on every function.
func TestLambdaLoggingControls(t *testing.T) {
	for name, app := range map[string]string{"deployed": "INFO", "planned": "INFO", "alb": "WARN"} {
		v := synth(t, name)
		for fn, id := range v.functions {
			lc, _ := props(resources(v.mainJSON, "AWS::Lambda::Function")[id])["LoggingConfig"].(map[string]any)
			if lc["LogFormat"] != "JSON" || lc["SystemLogLevel"] != "WARN" || lc["ApplicationLogLevel"] != app {
				t.Errorf("%s: %s logging %s", name, fn, js(lc))
			}
		}
	}
}

// TestALBAgentsEndpoint: with "agentsEndpoint": "alb" the agents' routes go through an
// HTTPS listener verifying client certificates against the truststore (and the
// revocation list), to Lambda targets with multi-value headers; no HTTP API.
func TestALBAgentsEndpoint(t *testing.T) {
	v := synth(t, "alb")
	check(t, "no agents HTTP API", func() {
		v.main.ResourceCountIs(jsii.String("AWS::ApiGatewayV2::Api"), jsii.Number(0))
	})
	check(t, "internet-facing ALB", func() {
		v.main.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::LoadBalancer"), map[string]any{
			"Scheme": "internet-facing", "Type": "application",
		})
	})
	stores := resources(v.mainJSON, "AWS::ElasticLoadBalancingV2::TrustStore")
	var storeID string
	for id, s := range stores {
		storeID = id
		if p := props(s); !strings.Contains(js(p["CaCertificatesBundleS3Key"]), "truststore/optralis-ca-") || !refersTo(p["CaCertificatesBundleS3Bucket"], logicalID(t, v.mainJSON, "AWS::S3::Bucket", "TruststoreBucket")) {
			t.Errorf("trust store %s", js(p))
		}
	}
	if len(stores) != 1 {
		t.Fatalf("%d trust stores", len(stores))
	}
	listeners := resources(v.mainJSON, "AWS::ElasticLoadBalancingV2::Listener")
	if len(listeners) != 1 {
		t.Fatalf("%d listeners", len(listeners))
	}
	for _, l := range listeners {
		p := props(l)
		ma, _ := p["MutualAuthentication"].(map[string]any)
		if p["Port"] != float64(443) || p["Protocol"] != "HTTPS" || ma["Mode"] != "verify" || ma["IgnoreClientCertificateExpiry"] != false ||
			!refersTo(ma["TrustStoreArn"], storeID) {
			t.Errorf("listener %s", js(p))
		}
	}
	revs := resources(v.mainJSON, "AWS::ElasticLoadBalancingV2::TrustStoreRevocation")
	for _, r := range revs {
		if p := props(r); !refersTo(p["TrustStoreArn"], storeID) || !strings.Contains(js(p["RevocationContents"]), `"RevocationType":"CRL"`) {
			t.Errorf("revocation %s", js(p))
		}
	}
	if len(revs) != 1 {
		t.Errorf("%d trust store revocations", len(revs))
	}
	for _, fn := range []string{"heartbeat", "renew"} {
		found := false
		for _, tg := range resources(v.mainJSON, "AWS::ElasticLoadBalancingV2::TargetGroup") {
			p := props(tg)
			if p["TargetType"] == "lambda" && refersTo(p["Targets"], v.functions[fn]) {
				found = true
				if !strings.Contains(js(p["TargetGroupAttributes"]), `"Key":"lambda.multi_value_headers.enabled","Value":"true"`) {
					t.Errorf("%s target group without multi-value headers: %s", fn, js(p))
				}
			}
		}
		if !found {
			t.Errorf("no Lambda target group for %s", fn)
		}
		if env := envOf(v, fn); env["AGENTS_ENDPOINT"] != "alb" {
			t.Errorf("%s: AGENTS_ENDPOINT %v", fn, env["AGENTS_ENDPOINT"])
		}
	}
	rules := js(resources(v.mainJSON, "AWS::ElasticLoadBalancingV2::ListenerRule"))
	for _, path := range []string{"/agent/heartbeat", "/agent/config/collectors", "/agent/certificate/renew"} {
		if !strings.Contains(rules, `"`+path+`"`) {
			t.Errorf("no listener rule for %s", path)
		}
	}
	if env := envOf(synth(t, "deployed"), "heartbeat"); env["AGENTS_ENDPOINT"] != "apigateway" {
		t.Errorf("API Gateway mode: AGENTS_ENDPOINT %v", env["AGENTS_ENDPOINT"])
	}
}

func keysOfAny(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }
