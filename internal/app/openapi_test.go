package app_test

import (
	"os"
	"sort"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
)

// TestOpenAPIMatchesRouter keeps api/openapi.json and the route table in step: a route
// added without its description, or a description left behind, fails here.
func TestOpenAPIMatchesRouter(t *testing.T) {
	b, err := os.ReadFile("../../api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("api/openapi.json: %v", err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, r := range (&testDeps{}).Routes() {
		served[r.Method+" "+r.Path] = true
	}
	var missing, stale []string
	for k := range served {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !served[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("routes missing from api/openapi.json: %v", missing)
	}
	if len(stale) > 0 {
		t.Errorf("api/openapi.json describes routes that do not exist: %v", stale)
	}
}
