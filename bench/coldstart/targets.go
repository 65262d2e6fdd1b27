package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// baselineName is the hello-world row; its package lives next to this command.
const baselineName = "hello"

// target is one Lambda to measure: a main package built into a bootstrap.
type target struct {
	Name     string
	Pkg      string // ./functions/<name>, or the baseline's package
	Baseline bool

	EventName string // where the first-invocation event came from
	Event     []byte

	ArmBytes   int64
	PkgsNonStd int
	PkgsTotal  int
	Modules    map[string]string // import path -> module path ("std" for the standard library)
	AmdBin     string            // the bootstrap the host runs

	Runs  []runResult
	Trace inittrace
}

// discover lists the baseline and every functions/* directory holding Go files.
func discover(only string) ([]*target, error) {
	targets := []*target{{Name: baselineName, Pkg: "./bench/coldstart/hello", Baseline: true, EventName: "{}", Event: []byte("{}")}}
	entries, err := os.ReadDir("functions")
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	for _, e := range entries {
		if !e.IsDir() || (len(want) > 0 && !want[e.Name()]) {
			continue
		}
		dir := filepath.Join("functions", e.Name())
		src, err := goSources(dir)
		if err != nil {
			return nil, err
		}
		if len(src) == 0 {
			continue
		}
		t := &target{Name: e.Name(), Pkg: "./" + dir}
		if t.EventName, t.Event, err = eventFor(e.Name(), src); err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	if len(targets) == 1 {
		return nil, fmt.Errorf("no function found under functions/ (-only %q)", only)
	}
	return targets, nil
}

// goSources is the concatenated non-test Go source of dir.
func goSources(dir string) ([]byte, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var all []byte
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		all = append(all, b...)
	}
	return all, nil
}

// Event kinds, recognised in a function's source (its package comment names the trigger:
// "API Gateway HTTP API", "API Gateway REST", "EventBridge schedule"; or the adapter it
// calls). Checked in this order; anything else gets "{}" (e.g. migrate).
var eventKinds = []struct {
	re   *regexp.Regexp
	file string
}{
	// events/httpapi_heartbeat_mtls.json turned into GET /agent/config/collectors: the
	// sample's certificate belongs to no machine (the replay test substitutes an enrolled
	// one), and this request runs the agent certificate check against the database (a 4xx
	// for the sample's unknown certificate) rather than the heartbeat's in-batch check.
	{regexp.MustCompile(`HTTP API|HTTPAPI|APIGatewayV2`), "bench/coldstart/events/httpapi_get_collectors.json"},
	{regexp.MustCompile(`(?i)eventbridge|schedul`), "events/eventbridge_scheduled.json"},
	{regexp.MustCompile(`\bREST\b|RESTHandler|APIGatewayProxyRequest`), "events/rest_get_status.json"},
}

// eventFor picks the first invocation's event: COLDSTART_EVENT_<NAME> when set, else by the
// trigger the function's source names.
func eventFor(name string, src []byte) (string, []byte, error) {
	file := os.Getenv("COLDSTART_EVENT_" + strings.ToUpper(name))
	if file == "" {
		for _, k := range eventKinds {
			if k.re.Match(src) {
				file = k.file
				break
			}
		}
	}
	if file == "" || file == "{}" {
		return "{}", []byte("{}"), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", nil, fmt.Errorf("event for %s: %w", name, err)
	}
	return file, b, nil
}

// build makes the arm64 bootstrap (measured) and the amd64 one (run), and counts packages.
func (t *target) build(ctx context.Context, work string) error {
	dir := filepath.Join(work, t.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	arm := filepath.Join(dir, "bootstrap.arm64")
	if err := goBuild(ctx, "arm64", arm, t.Pkg); err != nil {
		return err
	}
	fi, err := os.Stat(arm)
	if err != nil {
		return err
	}
	t.ArmBytes = fi.Size()
	t.AmdBin = filepath.Join(dir, "bootstrap")
	if err := goBuild(ctx, "amd64", t.AmdBin, t.Pkg); err != nil {
		return err
	}
	return t.countPackages(ctx)
}

func goBuild(ctx context.Context, arch, out, pkg string) error {
	args := append([]string{"build"}, lambdaFlags...)
	cmd := exec.CommandContext(ctx, "go", append(args, "-o", out, pkg)...)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s (%s): %v\n%s", pkg, arch, err, b)
	}
	return nil
}

// countPackages runs `go list -deps` for the arm64 build: every package linked, and those
// outside the standard library (the function's own included).
func (t *target) countPackages(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-tags", "lambda.norpc",
		"-f", "{{.ImportPath}}\t{{if .Standard}}std{{else}}{{with .Module}}{{.Path}}{{end}}{{end}}", t.Pkg)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list -deps %s: %v\n%s", t.Pkg, err, stderr.Bytes())
	}
	t.Modules = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		path, mod, _ := strings.Cut(sc.Text(), "\t")
		t.Modules[path] = mod
		t.PkgsTotal++
		if mod != "std" {
			t.PkgsNonStd++
		}
	}
	return sc.Err()
}

// moduleOf names the module of an import path seen in an inittrace line.
func (t *target) moduleOf(pkg string) string {
	if m, ok := t.Modules[pkg]; ok && m != "" {
		return m
	}
	if !strings.Contains(strings.SplitN(pkg, "/", 2)[0], ".") {
		return "std"
	}
	return pkg
}

// moduleTotals sums the traced init clock time by module, largest first.
func (t *target) moduleTotals() []pkgInit {
	sums := map[string]*pkgInit{}
	for _, in := range t.Trace.Inits {
		m := t.moduleOf(in.Pkg)
		if sums[m] == nil {
			sums[m] = &pkgInit{Pkg: m}
		}
		sums[m].ClockMs += in.ClockMs
		sums[m].Bytes += in.Bytes
		sums[m].Allocs += in.Allocs
	}
	var out []pkgInit
	for _, s := range sums {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClockMs > out[j].ClockMs })
	return out
}
