package stack

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/routes"
)

// These tests read the repository and the route table only: no jsii, no synthesis.

// TestFunctionTableMatchesFunctionsDir keeps the table and functions/ in step: every
// directory is deployed, every deployed line has a directory, and a planned function
// whose directory appears must move to Functions().
func TestFunctionTableMatchesFunctionsDir(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(repoRoot(t), "functions"))
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() {
			dirs[e.Name()] = true
		}
	}
	table := map[string]bool{}
	for _, f := range Functions() {
		if table[f.Name] {
			t.Errorf("%s is in Functions() twice", f.Name)
		}
		table[f.Name] = true
		if !dirs[f.Name] {
			t.Errorf("Functions() deploys %s, but functions/%s does not exist", f.Name, f.Name)
		}
	}
	planned := map[string]bool{}
	for _, f := range Planned() {
		planned[f.Name] = true
		if table[f.Name] {
			t.Errorf("%s is both deployed and planned: delete its Planned() line", f.Name)
		}
	}
	for d := range dirs {
		switch {
		case planned[d]:
			t.Errorf("functions/%s exists: move its line from Planned() to Functions() in infra/stack/functions.go", d)
		case !table[d]:
			t.Errorf("functions/%s has no line in infra/stack/functions.go Functions(): add one (kind, memory, timeout, schedule, needs)", d)
		}
	}
}

func TestFunctionRowsAreComplete(t *testing.T) {
	for _, f := range append(Functions(), Planned()...) {
		if f.MemoryMB < 128 || f.MemoryMB > 10240 || f.Timeout <= 0 || f.Doc == "" {
			t.Errorf("%s: memory %d MB, timeout %v, doc %q", f.Name, f.MemoryMB, f.Timeout, f.Doc)
		}
		if (f.Kind == Scheduled) != (f.Schedule() != "") || strings.HasPrefix(f.Schedule(), "invalid") {
			t.Errorf("%s: schedule %q: a valid schedule goes with, and only with, the Scheduled kind", f.Name, f.Schedule())
		}
		if _, isJob := routes.JobOf(f.Name); isJob && f.Cadence != (routes.Cadence{}) {
			t.Errorf("%s: a deployed job's cadence comes from internal/routes.Jobs(), not its infra row", f.Name)
		}
		if (f.Kind == REST || f.Kind == Agents) && f.Timeout.Seconds() > 29 {
			t.Errorf("%s: %v exceeds API Gateway's 29 s integration timeout", f.Name, f.Timeout)
		}
	}
}

// TestRoutesMatchTable: every route of internal/app belongs to a deployed API function of
// the right kind, and the paths form a tree API Gateway accepts.
func TestRoutesMatchTable(t *testing.T) {
	routes, err := AppRoutes()
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) == 0 {
		t.Fatal("internal/app.Routes() is empty")
	}
	if err := checkRoutes(Functions(), routes); err != nil {
		t.Error(err)
	}
	if err := checkRoutes(append(Functions(), Planned()...), withPlannedRoutes(t, routes)); err != nil {
		t.Errorf("with the planned functions and routes: %v", err)
	}
}

func TestCheckRoutesCatchesMistakes(t *testing.T) {
	fns := []Function{
		{Name: "api", Kind: REST}, {Name: "hb", Kind: Agents}, {Name: "job", Kind: Scheduled, Cadence: routes.EveryDuration(time.Hour)},
		{Name: "quiet", Kind: REST},
	}
	routes := []Route{
		{Function: "api", Method: "GET", Path: "/a"},
		{Function: "api", Method: "GET", Path: "/a"},                        // twice
		{Function: "ghost", Method: "GET", Path: "/g"},                      // unknown
		{Function: "hb", Method: "POST", Path: "/agent/heartbeat"},          // agents fn on API domain
		{Function: "api", Method: "GET", Path: "/x", Agent: true},           // API fn on agents domain
		{Function: "api", Method: "GET", Path: "/m/{id}"},                   // siblings:
		{Function: "api", Method: "GET", Path: "/m/{machineId}/disks"},      // two names
		{Function: "job", Method: "GET", Path: "/job", Agent: false},        // a job has no routes
		{Function: "hb", Method: "GET", Path: "/agent/config", Agent: true}, // fine
	}
	err := checkRoutes(fns, routes)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"GET /a is served twice", `"ghost", which is not in the function table`,
		"POST /agent/heartbeat is an API-domain route, but hb is a agents HTTP API function",
		"GET /x is an agent route, but api is a REST API function",
		"/m/ has variables {id}, {machineId}", "GET /job is an API-domain route, but job is a schedule function",
		"quiet is a REST API function with no route",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestGatewayPath(t *testing.T) {
	for in, want := range map[string]string{
		"/status":                  "/status",
		"/api/machines/{id}":       "/api/machines/{id}",
		"/files/{path...}":         "/files/{path+}",
		"/{$}":                     "/",
		"/api/auth/password/reset": "/api/auth/password/reset",
	} {
		if got, err := gatewayPath(in); err != nil || got != want {
			t.Errorf("gatewayPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"example.com/x", "/static/", "/a/{p...}/b", "/v{n}", "/{id}x"} {
		if got, err := gatewayPath(bad); err == nil {
			t.Errorf("gatewayPath(%q) = %q, want an error", bad, got)
		}
	}
}

// TestFunctionsDoNotImportCDK keeps the CDK (and its Node.js runtime) out of the Lambda
// binaries: only infra/ may import it.
func TestFunctionsDoNotImportCDK(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./functions/...")
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps returned too little: %q", out)
	}
	var bad []string
	for _, d := range deps {
		for _, forbidden := range []string{"github.com/aws/aws-cdk-go/", "github.com/aws/constructs-go/", "github.com/aws/jsii-runtime-go", "github.com/optralis/optralis/infra"} {
			if strings.HasPrefix(d, forbidden) {
				bad = append(bad, d)
			}
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("packages under functions/ depend on the CDK: %s", strings.Join(bad, ", "))
	}
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join(repoRoot(t), "infra", "config", "example.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AgentsAPI.ExpectedMachines != 100000 || cfg.Ingest != IngestDirect || cfg.AgentsEndpoint != EndpointAPIGateway ||
		cfg.Database.Mode != DatabaseExternal || cfg.AssetDir != "build" {
		t.Errorf("example config: %+v", cfg)
	}
}

func TestConfigValidation(t *testing.T) {
	good := exampleConfig(t)
	for name, mutate := range map[string]func(c *Config){
		"no account":                 func(c *Config) { c.Account = "" },
		"no agents certificate":      func(c *Config) { c.AgentsCertificateARN = "" },
		"unknown database mode":      func(c *Config) { c.Database.Mode = "rds" },
		"external without secret":    func(c *Config) { c.Database.SecretARN = "" },
		"external without cidr":      func(c *Config) { c.Database.CIDR = "" },
		"aurora with a secret":       func(c *Config) { c.Database.Mode = DatabaseAurora },
		"smtp without secret":        func(c *Config) { c.SMTP.SecretARN = "" },
		"wildcard CORS":              func(c *Config) { c.CORSAllowedOrigins = []string{"*"} },
		"dashboard cert not in IAD":  func(c *Config) { c.DashboardCertificateARN = "arn:aws:acm:eu-west-3:1:certificate/x" },
		"dashboard domain sans cert": func(c *Config) { c.DashboardCertificateARN = "" },
		"fleet-wide heartbeat limit": func(c *Config) { c.HeartbeatsPerMinute = 3000 },
		"no machines":                func(c *Config) { c.AgentsAPI.ExpectedMachines = -1 },
		"alarm ratio above 1":        func(c *Config) { c.AgentsAPI.AlarmRatio = 1.5 },
		"unknown ingest":             func(c *Config) { c.Ingest = "kinesis" },
		"unknown endpoint":           func(c *Config) { c.AgentsEndpoint = "nlb" },
		"CRL without ALB":            func(c *Config) { c.ALB.RevocationList = "x.crl" },
		"batch too large":            func(c *Config) { c.Queue.BatchSize = 20000 },
		"batch without window":       func(c *Config) { c.Queue.BatchSize, c.Queue.MaxBatchingWindowSeconds = 100, 0 },
		"no redelivery":              func(c *Config) { c.Queue.MaxReceiveCount = 0 },
		"unknown log level":          func(c *Config) { c.Logs.ApplicationLevel = "LOUD" },
		"system level FATAL":         func(c *Config) { c.Logs.SystemLevel = "FATAL" },
	} {
		c := good
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := good.Validate(); err != nil {
		t.Errorf("example: %v", err)
	}
}

func exampleConfig(t *testing.T) Config {
	t.Helper()
	cfg, err := LoadConfig(filepath.Join(repoRoot(t), "infra", "config", "example.json"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// repoRoot is the module root (the tests run in infra/stack).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// plannedRoutes are the GUIDE §5 routes of the functions not written yet, so the tests can
// synthesize the whole design today. Once a function is deployed, its routes come from
// internal/app only.
var plannedRoutes = []Route{
	{Function: "heartbeat", Method: "POST", Path: "/agent/heartbeat", Agent: true},
	{Function: "heartbeat", Method: "GET", Path: "/agent/config/collectors", Agent: true},
}

// withPlannedRoutes adds the planned routes of functions still in Planned().
func withPlannedRoutes(t testing.TB, routes []Route) []Route {
	t.Helper()
	planned := map[string]bool{}
	for _, f := range Planned() {
		planned[f.Name] = true
	}
	out := append([]Route(nil), routes...)
	for _, r := range plannedRoutes {
		if planned[r.Function] {
			out = append(out, r)
		}
	}
	return out
}
