package lambdaproxy_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyAdaptersImportAWSEvents keeps AWS event types out of the domain: only this
// package (and the thin mains under functions/) may import them.
func TestOnlyAdaptersImportAWSEvents(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/optralis/optralis/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		pkg := fields[0]
		if pkg == "github.com/optralis/optralis/internal/lambdaproxy" || strings.HasPrefix(pkg, "github.com/optralis/optralis/functions/") {
			continue
		}
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, "github.com/aws/aws-lambda-go/events") || strings.HasPrefix(imp, "github.com/awslabs/aws-lambda-go-api-proxy") {
				t.Errorf("%s imports %s: AWS event types belong in internal/lambdaproxy only", pkg, imp)
			}
		}
	}
}
