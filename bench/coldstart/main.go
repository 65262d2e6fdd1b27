// Command coldstart measures the cold start of every Lambda in functions/ and of a
// hello-world baseline under the AWS Lambda Runtime Interface Emulator (aws-lambda-rie,
// no Docker), and writes bench/coldstart.md. Run it from the repository root:
//
//	make bench-coldstart
//	go run ./bench/coldstart -runs 10 -warm 5 -out bench/coldstart.md
//
// For each function it builds the linux/arm64 bootstrap (size, as `make build` does) and a
// linux/amd64 one of the same code (the host runs it), then starts a fresh emulator and
// bootstrap per run, invokes it once cold and -warm times warm, and reads the emulator's
// own "INIT REPORT" and "INVOKE RTDONE" log lines. It only builds ./functions/* packages
// and sends them events: it does not import the application's code.
//
// Environment:
//
//	COLDSTART_DATABASE_URL  PostgreSQL server where a throwaway database is created,
//	                        migrated (go run ./cmd/optralis migrate) and dropped
//	                        (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
//	COLDSTART_REDIS_URL     Redis handed to the functions (default redis://127.0.0.1:6379/0;
//	                        "none": run without the cache)
//	COLDSTART_RIE           an aws-lambda-rie binary to use instead of building one
//	COLDSTART_EVENT_<NAME>  the first-invocation event file for function NAME (upper case)
//	COLDSTART_ENV_<VAR>     passed to every function as VAR
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The emulator is built from its Go module at this version (module proxy, 2026-11).
const (
	rieModule  = "github.com/aws/aws-lambda-runtime-interface-emulator"
	rieVersion = "v0.0.0-20261030222936-bef5c4ba774d"
)

// traceRuns is how many extra processes per function run with GODEBUG=inittrace=1.
const traceRuns = 3

// lambdaFlags are `make build`'s flags (GUIDE §7).
var lambdaFlags = []string{"-trimpath", "-tags", "lambda.norpc", "-ldflags=-s -w"}

type options struct {
	runs      int
	warm      int
	out       string
	work      string
	only      string
	breakdown string
	waitLoad  float64
	waitMax   time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 10, "fresh emulator + bootstrap processes per function")
	flag.IntVar(&o.warm, "warm", 5, "warm invocations after the first, per process")
	flag.StringVar(&o.out, "out", "bench/coldstart.md", "report file")
	flag.StringVar(&o.work, "work", "build/coldstart", "directory for the binaries")
	flag.StringVar(&o.only, "only", "", "comma-separated function names to measure (default: every functions/* directory)")
	flag.StringVar(&o.breakdown, "breakdown", "heartbeat", "function whose package init times (GODEBUG=inittrace=1) are broken down in the report")
	flag.Float64Var(&o.waitLoad, "wait-load", 0, "before measuring, wait (at most -wait-max) until the 1-minute load average is below this (0: do not wait)")
	flag.DurationVar(&o.waitMax, "wait-max", 10*time.Minute, "longest wait for -wait-load")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if o.runs < 1 || o.warm < 1 {
		return fmt.Errorf("-runs and -warm must be at least 1")
	}
	if _, err := os.Stat("go.mod"); err != nil {
		return fmt.Errorf("run from the repository root (no go.mod here)")
	}
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		return err
	}
	work, err := filepath.Abs(o.work)
	if err != nil {
		return err
	}
	m := machineAtStart()
	logf("start: %s, %d cores, load %s, %s", m.Date, m.Cores, m.LoadStart, m.GoVersion)

	targets, err := discover(o.only)
	if err != nil {
		return err
	}
	rie := os.Getenv("COLDSTART_RIE")
	if rie == "" {
		if rie, err = buildRIE(ctx, work); err != nil {
			return err
		}
	}
	for _, t := range targets {
		if err := t.build(ctx, work); err != nil {
			return err
		}
		logf("%-10s arm64 %d bytes, %d/%d packages (non-std/total), event %s", t.Name, t.ArmBytes, t.PkgsNonStd, t.PkgsTotal, t.EventName)
	}

	svc, cleanup, err := setupServices(ctx)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		return err
	}
	env := functionEnv(svc)
	if o.waitLoad > 0 {
		waitForLoad(ctx, o.waitLoad, o.waitMax)
	}
	m.LoadStart, m.Date = loadavg(), time.Now().UTC().Format("2006-01-02 15:04 UTC")

	// Runs are interleaved (run i of every function, then run i+1) so that a change in the
	// machine's load during the benchmark spreads over every function alike.
	for i := 0; i < o.runs; i++ {
		for _, t := range targets {
			if err := ctx.Err(); err != nil {
				return err
			}
			r := runOnce(ctx, rie, t, env, o.warm, false)
			t.Runs = append(t.Runs, r)
			logf("%-10s run %2d: init %6.2f ms  first %7.2f ms  warm %6.2f ms  %s", t.Name, i+1, r.InitMs, r.FirstMs, median(r.WarmMs), r.summary())
		}
	}
	// A few more processes each with GODEBUG=inittrace=1, outside the statistics above.
	traces := map[*target][]inittrace{}
	for i := 0; i < traceRuns; i++ {
		for _, t := range targets {
			if err := ctx.Err(); err != nil {
				return err
			}
			r := runOnce(ctx, rie, t, env, 1, true)
			if r.Err != nil {
				logf("%-10s inittrace run: %v", t.Name, r.Err)
			}
			traces[t] = append(traces[t], r.Trace)
		}
	}
	for _, t := range targets {
		t.Trace = medianTrace(traces[t])
		logf("%-10s package inits %.2f ms (inittrace, median of %d processes), %d packages, inits end @%.2f ms", t.Name, t.Trace.Sum(), t.Trace.Runs, len(t.Trace.Inits), t.Trace.EndMs)
	}

	m.LoadEnd = loadavg()
	rep := report{Machine: m, Options: o, Services: svc, Targets: targets, RIE: rie}
	if err := os.WriteFile(o.out, []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	logf("wrote %s (load at end %s)", o.out, m.LoadEnd)
	return nil
}

// waitForLoad waits until the machine's 1-minute load average is below limit, or max.
func waitForLoad(ctx context.Context, limit float64, max time.Duration) {
	deadline := time.Now().Add(max)
	for {
		l := load1()
		if l < limit {
			logf("load %.2f < %.2f: measuring", l, limit)
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			logf("load still %.2f after %s: measuring anyway", l, max)
			return
		}
		logf("load %.2f ≥ %.2f: waiting", l, limit)
		select {
		case <-ctx.Done():
		case <-time.After(15 * time.Second):
		}
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// buildRIE installs the emulator's command from the module cache / proxy into work,
// outside this module's go.mod (its own go.mod pins its dependencies).
func buildRIE(ctx context.Context, work string) (string, error) {
	bin := filepath.Join(work, "aws-lambda-rie")
	stamp := filepath.Join(work, "aws-lambda-rie.version")
	if v, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(v)) == rieVersion {
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	logf("building aws-lambda-rie %s", rieVersion)
	cmd := exec.CommandContext(ctx, "go", "install", rieModule+"/cmd/aws-lambda-rie@"+rieVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+work, "CGO_ENABLED=0", "GOOS=", "GOARCH=", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building aws-lambda-rie: %v\n%s", err, out)
	}
	return bin, os.WriteFile(stamp, []byte(rieVersion+"\n"), 0o644)
}
