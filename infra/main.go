// Command infra is Optralis's AWS CDK app. `make synth` runs it to write the CloudFormation
// templates to cdk.out (offline: no AWS account needed); `cdk deploy` runs it through the
// CDK CLI (cdk.json). The deployment's settings come from the JSON file named by the
// context key optralis:config (default infra/config/example.json).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/optralis/optralis/infra/stack"
)

// Context keys: the configuration file (-c optralis:config=path), and the first deployment
// step that defines only the base stacks, CA key and network (-c optralis:baseOnly=true).
const (
	ConfigContextKey   = "optralis:config"
	BaseOnlyContextKey = "optralis:baseOnly"
)

func main() {
	err := run()
	jsii.Close() // stop the jsii Node.js runtime before exiting
	if err != nil {
		fmt.Fprintln(os.Stderr, "infra:", err)
		os.Exit(1)
	}
}

func run() error {
	// Run through the CDK CLI, the context arrives in CDK_CONTEXT_JSON. Run directly
	// (`go run ./infra`, as `make synth` does), read what the CLI would have passed:
	// cdk.json's context and the cached lookups in cdk.context.json. The CLI's values win.
	defaults, err := fileContext("cdk.json", "cdk.context.json")
	if err != nil {
		return err
	}
	app := awscdk.NewApp(&awscdk.AppProps{Context: &defaults})
	path, _ := app.Node().TryGetContext(jsii.String(ConfigContextKey)).(string)
	if path == "" {
		path = "infra/config/example.json"
	}
	cfg, err := stack.LoadConfig(path)
	if err != nil {
		return err
	}
	baseOnly := fmt.Sprint(app.Node().TryGetContext(jsii.String(BaseOnlyContextKey))) == "true"
	if _, err := stack.New(app, stack.Props{Config: cfg, BaseOnly: baseOnly}); err != nil {
		return err
	}
	assembly := app.Synth(nil)
	// Under the CDK CLI, missing context (e.g. the region's availability zones) is looked up
	// with your credentials and the app runs again. Offline there is no lookup: the
	// templates would hold CDK's dummy values, so `make synth` (OPTRALIS_SYNTH_OFFLINE=1)
	// fails instead and names what cdk.context.json lacks.
	if os.Getenv("OPTRALIS_SYNTH_OFFLINE") == "1" {
		if missing, err := missingContext(filepath.Join(*assembly.Directory(), "manifest.json")); err != nil {
			return err
		} else if len(missing) > 0 {
			return fmt.Errorf("cdk.context.json lacks %v: run `cdk synth` once with AWS credentials for this account/region and commit cdk.context.json", missing)
		}
	}
	return nil
}

// missingContext lists the context keys the assembly's manifest says were missing.
func missingContext(manifest string) ([]string, error) {
	b, err := os.ReadFile(manifest)
	if err != nil {
		return nil, err
	}
	var m struct {
		Missing []struct {
			Key string `json:"key"`
		} `json:"missing"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", manifest, err)
	}
	var keys []string
	for _, mc := range m.Missing {
		keys = append(keys, mc.Key)
	}
	return keys, nil
}

// fileContext merges cdk.json's "context" object and cdk.context.json (missing files are
// skipped: the app may run from elsewhere under the CLI).
func fileContext(cdkJSON, cdkContext string) (map[string]interface{}, error) {
	out := map[string]interface{}{}
	if b, err := os.ReadFile(cdkJSON); err == nil {
		var f struct {
			Context map[string]interface{} `json:"context"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", cdkJSON, err)
		}
		for k, v := range f.Context {
			out[k] = v
		}
	}
	if b, err := os.ReadFile(cdkContext); err == nil {
		var m map[string]interface{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", cdkContext, err)
		}
		for k, v := range m {
			out[k] = v
		}
	}
	return out, nil
}
