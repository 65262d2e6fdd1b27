package depgraph

import (
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/optralis/optralis/"

// Heavy or sensitive dependencies by what they are for.
var (
	bcrypt  = "golang.org/x/crypto/bcrypt"
	jwt     = "github.com/golang-jwt/jwt"
	kms     = "github.com/aws/aws-sdk-go-v2/service/kms"
	goose   = "github.com/pressly/goose"
	cdk     = []string{"github.com/aws/aws-cdk-go/", "github.com/aws/constructs-go/", "github.com/aws/jsii-runtime-go"}
	handler = []string{ // runtime packages: handlers, features and their assembly
		module + "internal/app", module + "internal/auth", module + "internal/heartbeat", module + "internal/enrol",
		module + "internal/certs", module + "internal/status", module + "internal/agentreq", module + "internal/winbuilds",
		module + "internal/httpx", module + "internal/lambdaproxy", module + "internal/migrate", module + "internal/db",
	}
)

// rules: a package (with everything it links) must not depend on any of these prefixes.
var rules = []struct {
	pkg       string
	forbidden []string
	why       string
}{
	{"./functions/heartbeat", []string{bcrypt, jwt, kms, goose, module + "internal/auth", module + "internal/migrate", module + "internal/enrol",
		module + "internal/machines", module + "internal/machinedata", module + "internal/clients", module + "internal/users",
		module + "internal/groups", module + "internal/agentrelease"},
		"the hottest function verifies certificates, not passwords or tokens, and never migrates"},
	{"./functions/renew", []string{bcrypt, jwt, goose, module + "internal/auth", module + "internal/migrate", module + "internal/enrol",
		module + "internal/heartbeat", module + "internal/machines", module + "internal/clients", module + "internal/users"},
		"renewal checks the presented certificate and signs; no passwords, tokens, enrolment or ingest"},
	{"./functions/certexpiry", []string{bcrypt, jwt, kms, goose, module + "internal/heartbeat", module + "internal/enrol"},
		"a daily digest reads certificates and sends mail; it signs nothing"},
	{"./functions/status", []string{bcrypt, jwt, kms, goose}, "a public read of service health"},
	{"./functions/uptime", []string{bcrypt, jwt, kms, goose}, "a health check"},
	{"./functions/auth", []string{kms, goose}, "authentication signs no certificate and never migrates"},
	{"./functions/bootstrap", []string{bcrypt, jwt, goose}, "enrolment checks install tokens, not passwords or access tokens"},
	{"./functions/admin", []string{goose}, "the dashboard API never migrates"},
	{"./functions/cleanup", []string{bcrypt, jwt, kms}, "deleting expired rows needs no secret"},
	{"./functions/drift", []string{bcrypt, jwt, kms, goose, module + "internal/auth", module + "internal/heartbeat",
		module + "internal/machinedata", module + "internal/enrol"}, "statistics over the series and one HTTP client"},
	{"./functions/reminders", []string{bcrypt, jwt, kms, goose, module + "internal/heartbeat", module + "internal/enrol"},
		"mailing reminders reads users and clients; it checks no password or token"},
	{"./functions/alerts", []string{bcrypt, jwt, kms, goose, module + "internal/heartbeat", module + "internal/enrol",
		module + "internal/machines", module + "internal/machinedata"},
		"evaluating rules in SQL and delivering notifications: no passwords, tokens, signing, ingest or migrations"},
	{"./functions/migrate", []string{bcrypt, jwt, kms, module + "internal/auth", module + "internal/heartbeat"}, "migrations only"},
	{"./functions/...", cdk, "the CDK and its Node.js runtime stay in infra/"},
	{"./infra/...", handler, "infra reads the route table (internal/routes) as data; it never builds a handler"},
}

func TestDependencyRules(t *testing.T) {
	for _, r := range rules {
		deps := listDeps(t, r.pkg)
		var bad []string
		for _, d := range deps {
			for _, f := range r.forbidden {
				if d == f || strings.HasPrefix(d, strings.TrimSuffix(f, "/")+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(d, f)) {
					bad = append(bad, d)
				}
			}
		}
		sort.Strings(bad)
		if len(bad) > 0 {
			t.Errorf("%s links %s (%s)", r.pkg, strings.Join(bad, ", "), r.why)
		}
	}
}

// The rules would catch a violation: the local CLI links everything.
func TestRulesCanFail(t *testing.T) {
	deps := strings.Join(listDeps(t, "./cmd/optralis"), " ")
	for _, want := range []string{bcrypt, goose, module + "internal/app/monolith"} {
		if !strings.Contains(deps, want) {
			t.Errorf("go list -deps ./cmd/optralis lacks %s: the listing is broken", want)
		}
	}
}

func listDeps(t *testing.T, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps %s returned too little: %q", pkg, out)
	}
	return deps
}
