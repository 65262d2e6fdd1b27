package stack

// The synthesized templates, checked with the CDK assertions module. jsii is not safe
// across goroutines: no t.Parallel here. A failed assertion panics; check() turns the
// panic into t.Errorf. Each variant is synthesized once and shared.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

// TestMain stops the jsii Node.js process after the tests. Its environment is fixed when
// the CDK packages initialize, before TestMain runs: JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION
// and the CDK_DISABLE_* variables come from the Makefile's exports (GUIDE §6), not from here.
func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// variant is one synthesized app.
type variant struct {
	cfg       Config
	fns       []Function // the functions deployed under cfg
	routes    []Route
	main, ca  assertions.Template
	net       assertions.Template
	mainJSON  map[string]any
	caJSON    map[string]any
	netJSON   map[string]any
	functions map[string]string // function name -> logical id
	// staged are the small staged assets of the cloud assembly (asset hash -> file ->
	// content), read at synthesis: the assembly is in the first test's temporary directory.
	staged map[string]map[string]string
}

// The two apps under test:
//   - deployed: what `make deploy` would ship today (Functions(), internal/app routes,
//     the example configuration: external TimescaleDB, cache, SMTP, SES);
//   - planned: every function of the design (Functions() + Planned(), with the planned
//     routes) on Aurora, so schedules, grants and the agents routes are checked before
//     their functions exist.
var variants = map[string]*variant{}

func synth(t *testing.T, name string) *variant {
	t.Helper()
	if v, ok := variants[name]; ok {
		if v == nil {
			t.Fatalf("synthesis of %q failed earlier", name)
		}
		return v
	}
	variants[name] = nil
	cfg := exampleConfig(t)
	fns := Functions()
	routes, err := AppRoutes()
	if err != nil {
		t.Fatal(err)
	}
	if name == "planned" {
		fns = append(fns, Planned()...)
		routes = withPlannedRoutes(t, routes)
		cfg.Database = DatabaseConfig{Mode: DatabaseAurora, AuroraMinACU: 0, AuroraMaxACU: 4}
		cfg.Ingest = IngestQueue
	}
	if name == "alb" {
		// The large-fleet options: ALB with a revocation list, queue ingest with a
		// configured batch, logs at WARN.
		cfg.AgentsEndpoint = EndpointALB
		cfg.ALB.RevocationList = writeCRL(t)
		cfg.Ingest = IngestQueue
		cfg.Queue = QueueConfig{BatchSize: 500, MaxBatchingWindowSeconds: 2, MaxReceiveCount: 7, AgeAlarmSeconds: 120}
		cfg.Logs.ApplicationLevel = "WARN"
	}
	// Placeholder binaries: the template only needs the asset folders to exist.
	assets := t.TempDir()
	for _, f := range fns {
		dir := filepath.Join(assets, f.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("placeholder "+f.Name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg.AssetDir = assets
	var deployed []Function
	for _, f := range fns {
		if f.Kind != QueueConsumer || cfg.Ingest == IngestQueue {
			deployed = append(deployed, f)
		}
	}
	root := repoRoot(t)
	app := newApp(t, root)
	st, err := New(app, Props{Config: cfg, Functions: fns, Routes: routes, Root: root})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	v := &variant{fns: deployed, routes: routes, functions: map[string]string{}, cfg: cfg}
	v.main = assertions.Template_FromStack(st.Main, nil)
	v.ca = assertions.Template_FromStack(st.CA, nil)
	v.mainJSON = toMap(t, v.main)
	v.caJSON = toMap(t, v.ca)
	v.net = assertions.Template_FromStack(st.Network, nil)
	v.netJSON = toMap(t, v.net)
	for id, res := range resources(v.mainJSON, "AWS::Lambda::Function") {
		if name := tag(res, FunctionTag); name != "" {
			v.functions[name] = id
		}
	}
	v.staged = stagedAssets(t, *app.Outdir())
	variants[name] = v
	return v
}

// stagedAssets reads the assets of a synthesized app's assembly that are a few small
// files (web pages, data), not the handler bundles.
func stagedAssets(t *testing.T, outdir string) map[string]map[string]string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(outdir, "asset.*"))
	out := map[string]map[string]string{}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) > 10 {
			continue
		}
		files := map[string]string{}
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Size() < 64<<10 {
				b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
				files[e.Name()] = string(b)
			}
		}
		out[strings.TrimPrefix(filepath.Base(dir), "asset.")] = files
	}
	return out
}

// newApp is a CDK app with the context the CLI would pass: cdk.json's, then the cached
// lookups of cdk.context.json.
func newApp(t *testing.T, root string) awscdk.App {
	t.Helper()
	ctx := map[string]any{}
	var cdkJSON struct {
		Context map[string]any `json:"context"`
	}
	for _, f := range []struct {
		name string
		into any
	}{{"cdk.json", &cdkJSON}, {"cdk.context.json", &ctx}} {
		b, err := os.ReadFile(filepath.Join(root, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, f.into); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
	}
	for k, v := range cdkJSON.Context {
		ctx[k] = v
	}
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(t.TempDir())})
	return app
}

func toMap(t *testing.T, tpl assertions.Template) map[string]any {
	t.Helper()
	b, err := json.Marshal(tpl.ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// check runs an assertion, reporting its panic as a test error.
func check(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

func resources(tpl map[string]any, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range tpl["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] == typ {
			out[id] = res
		}
	}
	return out
}

func props(res map[string]any) map[string]any {
	p, _ := res["Properties"].(map[string]any)
	return p
}

func tag(res map[string]any, key string) string {
	tags, _ := props(res)["Tags"].([]any)
	for _, t := range tags {
		if m := t.(map[string]any); m["Key"] == key {
			return fmt.Sprint(m["Value"])
		}
	}
	return ""
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// refersTo reports whether a CloudFormation value refers to the logical id.
func refersTo(v any, id string) bool {
	s := js(v)
	return strings.Contains(s, `{"Ref":"`+id+`"}`) || strings.Contains(s, `"Fn::GetAtt":["`+id+`"`)
}

func TestAgentsDomainMutualTLSAndNoExecuteAPI(t *testing.T) {
	for _, name := range []string{"deployed", "planned"} {
		v := synth(t, name)
		check(t, name+": agents domain with mTLS truststore", func() {
			v.main.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::DomainName"), map[string]any{
				"DomainName": "agents.optralis.example",
				"DomainNameConfigurations": []any{map[string]any{
					"EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2",
				}},
				"MutualTlsAuthentication": map[string]any{
					"TruststoreUri": assertions.Match_AnyValue(),
				},
			})
		})
		check(t, name+": HTTP API with execute-api disabled", func() {
			v.main.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Api"), map[string]any{
				"ProtocolType":              "HTTP",
				"DisableExecuteApiEndpoint": true,
			})
		})
		check(t, name+": truststore bucket versioned and private", func() {
			v.main.HasResourceProperties(jsii.String("AWS::S3::Bucket"), map[string]any{
				"VersioningConfiguration": map[string]any{"Status": "Enabled"},
				"PublicAccessBlockConfiguration": map[string]any{
					"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
				},
			})
		})
		// No fleet-wide throttle at the spec's per-address limit: the ceiling is sized
		// from the fleet (100,000 machines every 30 s, twice over).
		check(t, name+": fleet-sized ceiling", func() {
			v.main.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Stage"), map[string]any{
				"StageName":            "$default",
				"DefaultRouteSettings": map[string]any{"ThrottlingRateLimit": 6667, "ThrottlingBurstLimit": 6667},
			})
		})
		for _, st := range resources(v.mainJSON, "AWS::ApiGatewayV2::Stage") {
			if s := js(props(st)["DefaultRouteSettings"]); strings.Contains(s, `"ThrottlingRateLimit":50,`) || strings.Contains(s, `"ThrottlingRateLimit":50}`) {
				t.Errorf("%s: the agents stage is still throttled at 50 req/s for the whole fleet: %s", name, s)
			}
		}
		check(t, name+": alarm before the ceiling bites", func() {
			v.main.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{
				"MetricName": "Count", "Namespace": "AWS/ApiGateway", "Period": 60, "Statistic": "Sum",
				"Threshold": 6667 * 60 * 0.8, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
			})
		})
		// The truststore URI names the bucket and the content-addressed key.
		for _, d := range resources(v.mainJSON, "AWS::ApiGatewayV2::DomainName") {
			uri := js(props(d)["MutualTlsAuthentication"])
			if !strings.Contains(uri, "truststore/optralis-ca-") || !strings.Contains(uri, "TruststoreBucket") {
				t.Errorf("%s: truststore URI %s", name, uri)
			}
		}
		check(t, name+": domain mapped to the HTTP API", func() {
			v.main.ResourceCountIs(jsii.String("AWS::ApiGatewayV2::ApiMapping"), jsii.Number(1))
		})
	}
	// Every agent route of the table, and at least the GUIDE §5 contract.
	for _, name := range []string{"deployed", "planned"} {
		v := synth(t, name)
		keys := map[string]bool{}
		for _, r := range routesOf(v.routes, true) {
			keys[r.Method+" "+r.Path] = true
		}
		for _, key := range []string{"POST /agent/heartbeat", "GET /agent/config/collectors", "POST /agent/certificate/renew"} {
			if !keys[key] {
				t.Errorf("%s: the agents domain lacks %s", name, key)
			}
		}
		for key := range keys {
			check(t, name+": route "+key, func() {
				v.main.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Route"), map[string]any{"RouteKey": key})
			})
		}
		check(t, name+": routes count", func() {
			v.main.ResourceCountIs(jsii.String("AWS::ApiGatewayV2::Route"), jsii.Number(float64(len(keys))))
		})
		check(t, name+": payload 2.0 integration", func() {
			v.main.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Integration"), map[string]any{
				"IntegrationType": "AWS_PROXY", "PayloadFormatVersion": "2.0",
			})
		})
	}
}

func TestRESTAPIWithWAFAndBinaryBodies(t *testing.T) {
	for _, name := range []string{"deployed", "planned"} {
		v := synth(t, name)
		check(t, name+": REST API", func() {
			v.main.HasResourceProperties(jsii.String("AWS::ApiGateway::RestApi"), map[string]any{
				"BinaryMediaTypes":          []any{"*/*"},
				"DisableExecuteApiEndpoint": true,
				"EndpointConfiguration":     map[string]any{"Types": []any{"REGIONAL"}},
			})
		})
		check(t, name+": custom domain", func() {
			v.main.HasResourceProperties(jsii.String("AWS::ApiGateway::DomainName"), map[string]any{
				"DomainName": "api.optralis.example", "SecurityPolicy": "TLS_1_2",
			})
		})
		check(t, name+": WAF rules", func() {
			v.main.HasResourceProperties(jsii.String("AWS::WAFv2::WebACL"), map[string]any{
				"Scope": "REGIONAL",
				"Rules": assertions.Match_ArrayWith(&[]any{
					assertions.Match_ObjectLike(&map[string]any{"Statement": map[string]any{"RateBasedStatement": map[string]any{
						"AggregateKeyType": "IP", "Limit": 100, "EvaluationWindowSec": 300,
						"ScopeDownStatement": assertions.Match_ObjectLike(&map[string]any{"ByteMatchStatement": assertions.Match_ObjectLike(&map[string]any{"SearchString": "/api/auth/"})}),
					}}}),
					assertions.Match_ObjectLike(&map[string]any{"Statement": map[string]any{"ManagedRuleGroupStatement": assertions.Match_ObjectLike(&map[string]any{
						"VendorName": "AWS", "Name": "AWSManagedRulesCommonRuleSet",
					})}}),
				}),
			})
		})
		// The web ACL is associated with the REST API's stage.
		acls := resources(v.mainJSON, "AWS::WAFv2::WebACL")
		stages := resources(v.mainJSON, "AWS::ApiGateway::Stage")
		assoc := resources(v.mainJSON, "AWS::WAFv2::WebACLAssociation")
		if len(acls) != 1 || len(stages) != 1 || len(assoc) != 1 {
			t.Fatalf("%s: %d web ACLs, %d REST stages, %d associations", name, len(acls), len(stages), len(assoc))
		}
		for _, a := range assoc {
			arn := js(props(a)["ResourceArn"])
			for stageID := range stages {
				if !strings.Contains(arn, stageID) || !strings.Contains(arn, "/stages/") {
					t.Errorf("%s: WAF associated with %s, not the REST stage %s", name, arn, stageID)
				}
			}
			for aclID := range acls {
				if !refersTo(props(a)["WebACLArn"], aclID) {
					t.Errorf("%s: association's web ACL %s is not %s", name, js(props(a)["WebACLArn"]), aclID)
				}
			}
		}
	}
}

// TestRESTRoutesFollowAppRoutes: every API-domain route of internal/app is a method on its
// function's integration, plus one OPTIONS (preflight) per path.
func TestRESTRoutesFollowAppRoutes(t *testing.T) {
	for _, name := range []string{"deployed", "planned"} {
		v := synth(t, name)
		routes, _ := AppRoutes()
		if name == "planned" {
			routes = withPlannedRoutes(t, routes)
		}
		// Resource logical id -> full path.
		res := resources(v.mainJSON, "AWS::ApiGateway::Resource")
		var pathOf func(id string) string
		pathOf = func(id string) string {
			r, ok := res[id]
			if !ok {
				return "" // the root
			}
			parent := props(r)["ParentId"]
			pid := ""
			if m, ok := parent.(map[string]any); ok {
				if ref, ok := m["Ref"].(string); ok {
					pid = ref
				}
			}
			return pathOf(pid) + "/" + fmt.Sprint(props(r)["PathPart"])
		}
		got := map[string]string{} // "GET /x" -> function
		for _, m := range resources(v.mainJSON, "AWS::ApiGateway::Method") {
			p := props(m)
			resID := ""
			if ref, ok := p["ResourceId"].(map[string]any)["Ref"].(string); ok {
				resID = ref
			}
			path := pathOf(resID)
			if path == "" {
				path = "/"
			}
			fn := ""
			for f, id := range v.functions {
				if strings.Contains(js(p["Integration"]), id) {
					fn = f
				}
			}
			if p["AuthorizationType"] != "NONE" || js(p["Integration"]) == "null" || !strings.Contains(js(p["Integration"]), `"Type":"AWS_PROXY"`) {
				t.Errorf("%s: %s %s is not a plain Lambda proxy method: %s", name, p["HttpMethod"], path, js(p))
			}
			got[fmt.Sprint(p["HttpMethod"])+" "+path] = fn
		}
		want := map[string]string{}
		for _, r := range routesOf(routes, false) {
			want[r.Method+" "+r.Path] = r.Function
			if _, ok := want["OPTIONS "+r.Path]; !ok {
				want["OPTIONS "+r.Path] = r.Function
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: REST methods\n got %v\nwant %v", name, got, want)
		}
	}
}

// TestSchedulesExact: one rule per job, with the cadence of its row (internal/routes.Jobs()
// for deployed jobs, whose test holds the spec's cadences), failures to the DLQ.
func TestSchedulesExact(t *testing.T) {
	for _, name := range []string{"deployed", "planned"} {
		v := synth(t, name)
		want := map[string]string{}
		for _, f := range v.fns {
			if f.Kind == Scheduled {
				want[f.Name] = f.Schedule()
			}
		}
		got := map[string]string{}
		dlqs := resources(v.mainJSON, "AWS::SQS::Queue")
		for _, r := range resources(v.mainJSON, "AWS::Events::Rule") {
			p := props(r)
			targets := p["Targets"].([]any)
			if len(targets) != 1 {
				t.Errorf("%s: rule with %d targets", name, len(targets))
				continue
			}
			tg := targets[0].(map[string]any)
			for fn, id := range v.functions {
				if refersTo(tg["Arn"], id) {
					got[fn] = fmt.Sprint(p["ScheduleExpression"])
				}
			}
			dlqOK := false
			for qid := range dlqs {
				dlqOK = dlqOK || refersTo(tg["DeadLetterConfig"], qid)
			}
			if !dlqOK {
				t.Errorf("%s: rule %s has no dead-letter queue: %s", name, p["ScheduleExpression"], js(tg))
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: schedules\n got %v\nwant %v", name, got, want)
		}
		// A failure after Lambda's retries goes to the DLQ too.
		for _, f := range v.fns {
			if f.Kind != Scheduled {
				continue
			}
			check(t, name+": "+f.Name+" on-failure destination", func() {
				v.main.HasResourceProperties(jsii.String("AWS::Lambda::EventInvokeConfig"), map[string]any{
					"FunctionName":         map[string]any{"Ref": v.functions[f.Name]},
					"MaximumRetryAttempts": 2,
					"DestinationConfig":    map[string]any{"OnFailure": map[string]any{"Destination": assertions.Match_AnyValue()}},
					"Qualifier":            "$LATEST",
				})
			})
		}
	}
	if len(resources(synth(t, "planned").mainJSON, "AWS::Events::Rule")) != 6 {
		t.Error("the planned stack must have exactly the six job rules")
	}
}

// secretNames are variables whose value must never be in the template.
var secretNames = []string{"DATABASE_URL", "JWT_SECRET", "SMTP_PASS", "SMTP_USER", "REDIS_PASSWORD", "DEFAULT_ADMIN_PASSWORD", "AI_API_KEY"}

// TestEveryFunctionArm64AL2023WithoutPlaintextSecrets covers each table row and every other
// Lambda in the template (CDK's helpers) for secrets.
func TestEveryFunctionArm64AL2023WithoutPlaintextSecrets(t *testing.T) {
	for _, name := range []string{"deployed", "planned"} {
		v := synth(t, name)
		if len(v.functions) != len(v.fns) {
			t.Errorf("%s: %d tagged functions in the template, %d in the table", name, len(v.functions), len(v.fns))
		}
		all := resources(v.mainJSON, "AWS::Lambda::Function")
		for _, f := range v.fns {
			id, ok := v.functions[f.Name]
			if !ok {
				t.Errorf("%s: %s missing from the template", name, f.Name)
				continue
			}
			p := props(all[id])
			if js(p["Architectures"]) != `["arm64"]` || p["Runtime"] != "provided.al2023" || p["Handler"] != "bootstrap" {
				t.Errorf("%s: %s is %v %v %v", name, f.Name, p["Architectures"], p["Runtime"], p["Handler"])
			}
			if int(p["MemorySize"].(float64)) != f.MemoryMB || int(p["Timeout"].(float64)) != int(f.Timeout.Seconds()) {
				t.Errorf("%s: %s memory %v timeout %v, table %d MB %v", name, f.Name, p["MemorySize"], p["Timeout"], f.MemoryMB, f.Timeout)
			}
			vpc, _ := p["VpcConfig"].(map[string]any)
			if vpc == nil || !strings.Contains(js(vpc["SubnetIds"]), "privateSubnet") || len(vpc["SecurityGroupIds"].([]any)) != 1 {
				t.Errorf("%s: %s is not in the private subnets with its own security group: %s", name, f.Name, js(vpc))
			}
			env := map[string]any{}
			if e, ok := p["Environment"].(map[string]any); ok {
				env, _ = e["Variables"].(map[string]any)
			}
			if f.Has(Database) && !strings.Contains(js(env["DATABASE_URL_SECRET_ARN"]), "arn:aws:secretsmanager") && !strings.Contains(js(env["DATABASE_URL_SECRET_ARN"]), "Ref") {
				t.Errorf("%s: %s lacks its DATABASE_URL secret reference: %s", name, f.Name, js(env))
			}
			if f.Has(JWT) && env["JWT_SECRET_SECRET_ARN"] == nil {
				t.Errorf("%s: %s lacks its JWT_SECRET secret reference", name, f.Name)
			}
			// The example configuration has an AI provider: only the functions that need
			// it get its key's reference.
			if _, has := env["AI_API_KEY_SECRET_ARN"]; has != f.Has(AI) || (has && !strings.Contains(js(env["AI_API_KEY_SECRET_ARN"]), "secret:optralis/ai")) {
				t.Errorf("%s: %s AI_API_KEY_SECRET_ARN %v, needs AI %v", name, f.Name, env["AI_API_KEY_SECRET_ARN"], f.Has(AI))
			}
		}
		for id, fn := range all {
			env := map[string]any{}
			if e, ok := props(fn)["Environment"].(map[string]any); ok {
				env, _ = e["Variables"].(map[string]any)
			}
			for _, k := range secretNames {
				if _, ok := env[k]; ok {
					t.Errorf("%s: %s has %s in plain text in its environment", name, id, k)
				}
			}
			for k, val := range env {
				s := js(val)
				if strings.Contains(s, "postgres://") || strings.Contains(s, "PRIVATE KEY") || strings.Contains(s, "resolve:secretsmanager") {
					t.Errorf("%s: %s: %s holds a secret-looking value: %s", name, id, k, s)
				}
			}
		}
		// No secret value or private key anywhere in either template. The one dynamic
		// reference allowed is Aurora's master password, which CloudFormation resolves
		// from the generated secret at deploy time (the template holds only the reference).
		for tname, tpl := range map[string]map[string]any{"main": v.mainJSON, "ca": v.caJSON} {
			for id, r := range tpl["Resources"].(map[string]any) {
				res := r.(map[string]any)
				s := js(res)
				if strings.Contains(s, "PRIVATE KEY") || strings.Contains(s, `"SecretString"`) {
					t.Errorf("%s/%s: %s holds a secret value", name, tname, id)
				}
				if strings.Contains(s, "resolve:secretsmanager") {
					p := props(res)
					delete(p, "MasterUserPassword")
					delete(p, "MasterUsername")
					if res["Type"] != "AWS::RDS::DBCluster" || strings.Contains(js(p), "resolve:secretsmanager") {
						t.Errorf("%s/%s: %s resolves a secret into its properties", name, tname, id)
					}
				}
			}
		}
		check(t, name+": JWT secret generated by Secrets Manager", func() {
			v.main.HasResourceProperties(jsii.String("AWS::SecretsManager::Secret"), map[string]any{
				"GenerateSecretString": map[string]any{"PasswordLength": 64, "ExcludePunctuation": true},
			})
		})
	}
}

// grantedTo maps every function to the IAM actions its role's policies allow.
func grantedTo(t *testing.T, v *variant) map[string][]string {
	t.Helper()
	roleOf := map[string]string{} // role logical id -> function
	for fn, id := range v.functions {
		role := props(resources(v.mainJSON, "AWS::Lambda::Function")[id])["Role"]
		for rid := range resources(v.mainJSON, "AWS::IAM::Role") {
			if refersTo(role, rid) {
				roleOf[rid] = fn
			}
		}
	}
	out := map[string][]string{}
	for pid, pol := range resources(v.mainJSON, "AWS::IAM::Policy") {
		p := props(pol)
		var fns []string
		for _, r := range p["Roles"].([]any) {
			for rid, fn := range roleOf {
				if refersTo(r, rid) {
					fns = append(fns, fn)
				}
			}
		}
		stmts := p["PolicyDocument"].(map[string]any)["Statement"].([]any)
		for _, s := range stmts {
			st := s.(map[string]any)
			var actions []string
			switch a := st["Action"].(type) {
			case string:
				actions = []string{a}
			case []any:
				for _, x := range a {
					actions = append(actions, fmt.Sprint(x))
				}
			}
			if len(fns) == 0 {
				for _, a := range actions {
					if strings.HasPrefix(a, "kms:Sign") || a == "kms:*" || a == "*" || strings.HasPrefix(a, "ses:") {
						t.Errorf("policy %s (not a function role) allows %s", pid, a)
					}
				}
			}
			for _, fn := range fns {
				out[fn] = append(out[fn], actions...)
			}
		}
	}
	return out
}

func whoMay(grants map[string][]string, allowed func(action string) bool) []string {
	var out []string
	for fn, actions := range grants {
		for _, a := range actions {
			if allowed(a) {
				out = append(out, fn)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestLeastPrivilege: kms:Sign on the CA key for bootstrap, admin and renew only; email for
// the mailing jobs (reminders, alerts) only; no wildcard actions.
func TestLeastPrivilege(t *testing.T) {
	wantSign := map[string][]string{"deployed": {"admin", "bootstrap", "renew"}, "planned": {"admin", "bootstrap", "renew"}}
	wantSES := map[string][]string{"deployed": {"alerts", "reminders"}, "planned": {"alerts", "reminders"}}
	for _, name := range []string{"deployed", "planned"} {
		v := synth(t, name)
		grants := grantedTo(t, v)
		sign := whoMay(grants, func(a string) bool { return a == "kms:Sign" || a == "kms:*" || a == "*" })
		if !reflect.DeepEqual(sign, wantSign[name]) {
			t.Errorf("%s: kms:Sign granted to %v, want %v", name, sign, wantSign[name])
		}
		ses := whoMay(grants, func(a string) bool { return strings.HasPrefix(a, "ses:") || a == "*" })
		if !reflect.DeepEqual(ses, wantSES[name]) {
			t.Errorf("%s: email (SES) granted to %v, want %v", name, ses, wantSES[name])
		}
		wild := whoMay(grants, func(a string) bool { return strings.HasSuffix(a, ":*") || a == "*" })
		if len(wild) > 0 {
			t.Errorf("%s: wildcard actions granted to %v", name, wild)
		}
		for fn, actions := range grants {
			f, _ := FunctionNamed(fn)
			for _, a := range actions {
				if strings.HasPrefix(a, "secretsmanager:") && !f.Has(Database) && !f.Has(JWT) && !f.Has(Mail) && !f.Has(AI) {
					t.Errorf("%s: %s reads secrets without needing any", name, fn)
				}
			}
		}
		// The signing statement names the CA key (from the CA stack), nothing wider.
		for _, pol := range resources(v.mainJSON, "AWS::IAM::Policy") {
			for _, s := range props(pol)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
				st := s.(map[string]any)
				if strings.Contains(js(st["Action"]), "kms:Sign") && !strings.Contains(js(st["Resource"]), "CaKey") {
					t.Errorf("%s: kms:Sign on %s, not the CA key", name, js(st["Resource"]))
				}
			}
		}
	}
}

func TestCAKey(t *testing.T) {
	v := synth(t, "deployed")
	check(t, "CA key", func() {
		v.ca.HasResource(jsii.String("AWS::KMS::Key"), map[string]any{
			"Properties":     assertions.Match_ObjectLike(&map[string]any{"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
			"DeletionPolicy": "Retain",
		})
	})
	check(t, "only the CA stack holds KMS keys", func() {
		v.main.ResourceCountIs(jsii.String("AWS::KMS::Key"), jsii.Number(0))
	})
}

func TestMigrationsRunAtDeployBeforeOtherFunctions(t *testing.T) {
	for _, name := range []string{"deployed", "planned"} {
		v := synth(t, name)
		triggers := resources(v.mainJSON, "Custom::Trigger")
		if len(triggers) != 1 {
			t.Fatalf("%s: %d triggers, want 1", name, len(triggers))
		}
		var triggerID string
		for id, tr := range triggers {
			triggerID = id
			if !strings.Contains(js(props(tr)["HandlerArn"]), "Migrate") || props(tr)["InvocationType"] != "RequestResponse" {
				t.Errorf("%s: trigger %s", name, js(props(tr)))
			}
		}
		fnRes := resources(v.mainJSON, "AWS::Lambda::Function")
		for fn, id := range v.functions {
			if fn == "migrate" {
				continue
			}
			if !strings.Contains(js(fnRes[id]["DependsOn"]), triggerID) {
				t.Errorf("%s: %s does not wait for the migrations", name, fn)
			}
		}
		wantMode := map[string]string{"deployed": "timescale", "planned": "postgres"}[name]
		env := props(fnRes[v.functions["migrate"]])["Environment"].(map[string]any)["Variables"].(map[string]any)
		if env["TIMESERIES_MODE"] != wantMode {
			t.Errorf("%s: migrate TIMESERIES_MODE = %v, want %s", name, env["TIMESERIES_MODE"], wantMode)
		}
		if name == "planned" {
			if env["DATABASE_URL_SECRET_FORMAT"] != "rds" {
				t.Errorf("aurora: migrate reads the RDS secret without the rds format: %v", env)
			}
			check(t, "aurora serverless v2", func() {
				v.main.HasResourceProperties(jsii.String("AWS::RDS::DBCluster"), map[string]any{
					"Engine": "aurora-postgresql", "StorageEncrypted": true,
					"ServerlessV2ScalingConfiguration": map[string]any{"MinCapacity": 0, "MaxCapacity": 4},
				})
			})
			for _, tr := range triggers {
				if !strings.Contains(js(tr["DependsOn"]), "Aurora") {
					t.Errorf("the migration trigger does not wait for the Aurora cluster: %v", tr["DependsOn"])
				}
			}
		}
	}
}

func TestCacheAndSecurityGroups(t *testing.T) {
	v := synth(t, "deployed")
	check(t, "serverless cache", func() {
		v.main.HasResourceProperties(jsii.String("AWS::ElastiCache::ServerlessCache"), map[string]any{
			"Engine": "valkey", "SubnetIds": assertions.Match_AnyValue(), "SecurityGroupIds": assertions.Match_AnyValue(),
		})
	})
	sgs := resources(v.mainJSON, "AWS::EC2::SecurityGroup")
	fnRes := resources(v.mainJSON, "AWS::Lambda::Function")
	for fn, id := range v.functions {
		f, _ := FunctionNamed(fn)
		sgRef := props(fnRes[id])["VpcConfig"].(map[string]any)["SecurityGroupIds"].([]any)[0]
		for sid, sg := range sgs {
			if !refersTo(sgRef, sid) {
				continue
			}
			// Inline egress (CIDR rules) and separate egress resources (SG to SG).
			var ports []string
			for _, e := range props(sg)["SecurityGroupEgress"].([]any) {
				r := e.(map[string]any)
				ports = append(ports, fmt.Sprintf("%v:%v", r["CidrIp"], r["FromPort"]))
			}
			for _, eg := range resources(v.mainJSON, "AWS::EC2::SecurityGroupEgress") {
				if refersTo(props(eg)["GroupId"], sid) {
					ports = append(ports, fmt.Sprintf("sg:%v", props(eg)["FromPort"]))
				}
			}
			sort.Strings(ports)
			want := []string{"0.0.0.0/0:443"}
			if f.Has(Database) {
				want = append(want, "10.100.0.0/16:5432")
			}
			if f.SMTP(exampleConfig(t)) {
				want = append(want, "0.0.0.0/0:587")
			}
			if f.Has(Cache) {
				want = append(want, "sg:6379")
			}
			sort.Strings(want)
			if !reflect.DeepEqual(ports, want) {
				t.Errorf("%s egress %v, want %v", fn, ports, want)
			}
		}
	}
	// The cache accepts only the functions that need it, on its port.
	ingress := resources(v.mainJSON, "AWS::EC2::SecurityGroupIngress")
	n := 0
	for _, in := range ingress {
		p := props(in)
		if strings.Contains(js(p["GroupId"]), "CacheSecurityGroup") {
			n++
			if p["FromPort"] != float64(RedisPort) || p["SourceSecurityGroupId"] == nil {
				t.Errorf("cache ingress %s", js(p))
			}
		}
	}
	cached := 0
	for _, f := range Functions() {
		if f.Has(Cache) {
			cached++
		}
	}
	if n != cached {
		t.Errorf("cache ingress rules %d, functions using the cache %d", n, cached)
	}
}

func TestCDNWithOriginAccessControlAndSecurityHeaders(t *testing.T) {
	v := synth(t, "deployed")
	check(t, "origin access control", func() {
		v.main.ResourceCountIs(jsii.String("AWS::CloudFront::OriginAccessControl"), jsii.Number(1))
	})
	check(t, "security headers", func() {
		v.main.HasResourceProperties(jsii.String("AWS::CloudFront::ResponseHeadersPolicy"), map[string]any{
			"ResponseHeadersPolicyConfig": assertions.Match_ObjectLike(&map[string]any{
				"SecurityHeadersConfig": assertions.Match_ObjectLike(&map[string]any{
					"StrictTransportSecurity": assertions.Match_ObjectLike(&map[string]any{"AccessControlMaxAgeSec": 63072000, "IncludeSubdomains": true}),
					"FrameOptions":            map[string]any{"FrameOption": "DENY", "Override": true},
					"ContentTypeOptions":      map[string]any{"Override": true},
				}),
			}),
		})
	})
	check(t, "distribution", func() {
		v.main.HasResourceProperties(jsii.String("AWS::CloudFront::Distribution"), map[string]any{
			"DistributionConfig": assertions.Match_ObjectLike(&map[string]any{
				"Aliases": []any{"app.optralis.example"},
				"DefaultCacheBehavior": assertions.Match_ObjectLike(&map[string]any{
					"ViewerProtocolPolicy": "redirect-to-https", "ResponseHeadersPolicyId": assertions.Match_AnyValue(),
				}),
			}),
		})
	})
}

// TestStatusPageDeployedWithTheDashboard: web/status goes to the dashboard bucket under
// /status-page/ (without its Go files), with a config.js pointing at the API domain; the
// distribution serves /status-page* with its index function and is invalidated on deploy.
func TestStatusPageDeployedWithTheDashboard(t *testing.T) {
	v := synth(t, "deployed")
	deployments := resources(v.mainJSON, "Custom::CDKBucketDeployment")
	var page map[string]any
	for _, res := range deployments {
		if props(res)["DestinationBucketKeyPrefix"] == "status-page/" {
			page = props(res)
		}
	}
	if page == nil {
		t.Fatalf("no bucket deployment under status-page/ in %s", js(deployments))
	}
	if !refersTo(page["DestinationBucketName"], logicalID(t, v.mainJSON, "AWS::S3::Bucket", "DashboardBucket")) {
		t.Errorf("status page deployed to %s, not the dashboard bucket", js(page["DestinationBucketName"]))
	}
	if js(page["DistributionPaths"]) != `["/status-page/*"]` || page["DistributionId"] == nil {
		t.Errorf("no invalidation of /status-page/* on deploy: %s", js(page))
	}
	// The staged sources: the page's files without Go, and the deployment's config.js.
	keys, _ := page["SourceObjectKeys"].([]any)
	files := map[string]string{}
	for _, k := range keys {
		staged, ok := v.staged[strings.TrimSuffix(fmt.Sprint(k), ".zip")]
		if !ok {
			t.Fatalf("source %v is not a staged asset of the assembly", k)
		}
		for name, content := range staged {
			files[name] = content
		}
	}
	for _, f := range []string{"index.html", "status.js", "status.css", "config.js"} {
		if files[f] == "" {
			t.Errorf("%s not deployed (deployed: %v)", f, keysOf(files))
		}
	}
	for f := range files {
		if strings.HasSuffix(f, ".go") {
			t.Errorf("%s deployed to the CDN", f)
		}
	}
	if want := `apiUrl: "https://api.optralis.example"`; !strings.Contains(files["config.js"], want) {
		t.Errorf("config.js = %q, want %s", files["config.js"], want)
	}
	check(t, "status page behaviour", func() {
		v.main.HasResourceProperties(jsii.String("AWS::CloudFront::Distribution"), map[string]any{
			"DistributionConfig": assertions.Match_ObjectLike(&map[string]any{
				"CacheBehaviors": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
					"PathPattern":          "/status-page*",
					"ViewerProtocolPolicy": "redirect-to-https",
					"FunctionAssociations": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{"EventType": "viewer-request"})}),
				})}),
			}),
		})
	})
	check(t, "index function", func() {
		v.main.HasResourceProperties(jsii.String("AWS::CloudFront::Function"), map[string]any{
			"FunctionCode": assertions.Match_StringLikeRegexp(jsii.String(`/status-page/index\.html`)),
		})
	})
}

func logicalID(t *testing.T, tpl map[string]any, typ, prefix string) string {
	t.Helper()
	for id := range resources(tpl, typ) {
		if strings.HasPrefix(id, prefix) {
			return id
		}
	}
	t.Fatalf("no %s %s*", typ, prefix)
	return ""
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestAlarmsAndLogRetention(t *testing.T) {
	for _, name := range []string{"deployed", "planned"} {
		v := synth(t, name)
		alarms := resources(v.mainJSON, "AWS::CloudWatch::Alarm")
		has := func(what string, match func(p map[string]any) bool) {
			for _, a := range alarms {
				if match(props(a)) {
					if len(props(a)["AlarmActions"].([]any)) == 0 {
						t.Errorf("%s: %s alarm notifies nobody", name, what)
					}
					return
				}
			}
			t.Errorf("%s: no %s alarm", name, what)
		}
		has("REST 5xx rate", func(p map[string]any) bool { return strings.Contains(js(p["Metrics"]), `"MetricName":"5XXError"`) })
		has("HTTP API 5xx rate", func(p map[string]any) bool { return strings.Contains(js(p["Metrics"]), `"MetricName":"5xx"`) })
		has("DLQ depth", func(p map[string]any) bool {
			return p["MetricName"] == "ApproximateNumberOfMessagesVisible" && p["Namespace"] == "AWS/SQS"
		})
		for _, f := range v.fns {
			id := v.functions[f.Name]
			fnDim := func(p map[string]any, metric string) bool {
				return p["MetricName"] == metric && strings.Contains(js(p["Dimensions"]), id)
			}
			has(f.Name+" throttles", func(p map[string]any) bool { return fnDim(p, "Throttles") })
			if f.Kind == Scheduled || f.Kind == DeployTrigger {
				has(f.Name+" job errors", func(p map[string]any) bool { return fnDim(p, "Errors") })
			}
		}
		// Every function logs to its own group with the configured retention.
		groups := resources(v.mainJSON, "AWS::Logs::LogGroup")
		for fn, id := range v.functions {
			lc := js(props(resources(v.mainJSON, "AWS::Lambda::Function")[id])["LoggingConfig"])
			ok := false
			for gid, g := range groups {
				if strings.Contains(lc, gid) && props(g)["RetentionInDays"] == float64(30) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s: %s has no log group with 30-day retention: %s", name, fn, lc)
			}
		}
	}
}

func TestNetworkUsesRealAvailabilityZones(t *testing.T) {
	v := synth(t, "deployed")
	if s := js(v.netJSON); strings.Contains(s, "dummy1a") || !strings.Contains(s, "eu-west-3a") {
		t.Error("the network uses CDK's dummy availability zones: cdk.context.json lacks this account/region")
	}
	check(t, "VPC range", func() {
		v.net.HasResourceProperties(jsii.String("AWS::EC2::VPC"), map[string]any{"CidrBlock": "10.0.0.0/16"})
	})
	check(t, "no peering route without a peering connection", func() {
		v.net.ResourcePropertiesCountIs(jsii.String("AWS::EC2::Route"), map[string]any{
			"VpcPeeringConnectionId": assertions.Match_AnyValue(),
		}, jsii.Number(0))
	})
}

// TestBaseStacksAndPeeringRoute: the first deployment step defines the CA key and the
// network only; with a peering connection, each private subnet routes the database's range
// through it.
func TestBaseStacksAndPeeringRoute(t *testing.T) {
	root := repoRoot(t)
	cfg := exampleConfig(t)
	cfg.Database.PeeringConnectionID = "pcx-0123456789abcdef0"
	cfg.CABundle = "does/not/exist/yet.pem" // the CA certificate comes after this step
	app := newApp(t, root)
	st, err := New(app, Props{Config: cfg, Root: root, BaseOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Main != nil || st.CA == nil || st.Network == nil {
		t.Fatalf("base-only stacks: %+v", st)
	}
	net := assertions.Template_FromStack(st.Network, nil)
	check(t, "peering routes", func() {
		net.ResourcePropertiesCountIs(jsii.String("AWS::EC2::Route"), map[string]any{
			"DestinationCidrBlock": "10.100.0.0/16", "VpcPeeringConnectionId": "pcx-0123456789abcdef0",
		}, jsii.Number(2))
	})
}

// With an SES identity configured, reminders mail through the SES API with their own
// role: SES_FROM and the identity in the environment, the dashboard URL for the links,
// and neither the SMTP secret nor SMTP egress (TestCacheAndSecurityGroups checks that).
func TestRemindersMailThroughSES(t *testing.T) {
	v := synth(t, "deployed")
	fnRes := resources(v.mainJSON, "AWS::Lambda::Function")
	env := props(fnRes[v.functions["reminders"]])["Environment"].(map[string]any)["Variables"].(map[string]any)
	if env["SES_FROM"] != "noreply@optralis.example" || env["SES_IDENTITY_ARN"] != "arn:aws:ses:eu-west-3:111111111111:identity/optralis.example" ||
		env["DASHBOARD_URL"] != "https://app.optralis.example" {
		t.Errorf("reminders environment: %s", js(env))
	}
	for _, k := range []string{"SMTP_HOST", "SMTP_USER_SECRET_ARN", "SMTP_PASS_SECRET_ARN"} {
		if _, ok := env[k]; ok {
			t.Errorf("reminders has %s though it mails through SES", k)
		}
	}
	for _, pol := range resources(v.mainJSON, "AWS::IAM::Policy") {
		if s := js(pol); strings.Contains(s, "optralis/smtp") && strings.Contains(s, "Reminders") {
			t.Errorf("reminders may read the SMTP secret: %s", s)
		}
	}
}
