package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// runResult is one fresh emulator + bootstrap process: the emulator's own measurements,
// read from its log.
type runResult struct {
	InitMs     float64 // INIT REPORT durationMs: exec of the bootstrap until its first GET /next
	InitStatus string  // INIT RTDONE status (success, error, ...)
	FirstMs    float64 // INVOKE RTDONE duration of the first invocation
	WarmMs     []float64
	// For reference: the emulator's REPORT "Init Duration" (it times an asynchronous call,
	// so it reads ~0) and the first request's wall time seen by the client (init included).
	ReportInitMs float64
	FirstWallMs  float64
	Answer       string // what the first invocation answered
	Err          error  // the run could not be measured
	Trace        inittrace
	Log          string
}

func (r runResult) summary() string {
	if r.Err != nil {
		return "ERROR: " + r.Err.Error()
	}
	return r.Answer
}

var (
	reInitReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)
	reInitDone   = regexp.MustCompile(`INIT RTDONE\(status: ([^),]+)`)
	reInvokeDone = regexp.MustCompile(`INVOKE RTDONE\(status: ([^,]+), produced bytes: \d+, duration: ([0-9.]+)ms\)`)
	reReport     = regexp.MustCompile(`REPORT RequestId: \S+\s+(?:Init Duration: ([0-9.]+) ms\s+)?Duration: ([0-9.]+) ms`)
)

// runOnce starts a fresh emulator with the target's amd64 bootstrap, invokes it 1+warm
// times with its event, stops it and reads its log. Failures are recorded, not returned:
// one broken function must not abort the benchmark.
//
// With trace, the bootstrap alone runs with GODEBUG=inittrace=1 (through env(1), so that the
// emulator, itself a Go program, does not print its own package inits into the log).
func runOnce(ctx context.Context, rie string, t *target, env []string, warm int, trace bool) (r runResult) {
	addr, err := freeAddr()
	if err != nil {
		return runResult{Err: err}
	}
	apiAddr, err := freeAddr()
	if err != nil {
		return runResult{Err: err}
	}
	var log syncBuffer
	bootstrap := []string{t.AmdBin}
	if trace {
		envBin, err := exec.LookPath("env")
		if err != nil {
			return runResult{Err: err}
		}
		bootstrap = []string{envBin, "GODEBUG=inittrace=1", t.AmdBin}
	}
	cmd := exec.Command(rie, append([]string{"--runtime-interface-emulator-address", addr, "--runtime-api-address", apiAddr}, bootstrap...)...)
	cmd.Dir = filepath.Dir(t.AmdBin)
	cmd.Env = append(env, "AWS_LAMBDA_FUNCTION_NAME="+t.Name)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches us, we stop it
	cmd.WaitDelay = 3 * time.Second                       // should a survivor hold the output pipe
	if err := cmd.Start(); err != nil {
		return runResult{Err: err}
	}
	defer func() {
		stopEmulator(cmd, t.AmdBin)
		r.Log = log.String()
		r.parse(r.Log, trace)
	}()

	if err := waitListening(ctx, addr, 10*time.Second); err != nil {
		return runResult{Err: err}
	}
	url := "http://" + addr + "/2015-03-31/functions/function/invocations"
	client := &http.Client{Timeout: 2 * time.Minute}
	start := time.Now()
	status, body, err := invoke(ctx, client, url, t.Event)
	r.FirstWallMs = float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		r.Err = err
		return r
	}
	r.Answer = answer(status, body)
	for i := 0; i < warm; i++ {
		if _, _, err := invoke(ctx, client, url, t.Event); err != nil {
			r.Err = fmt.Errorf("warm invocation %d: %w", i+1, err)
			return r
		}
	}
	return r
}

func (r *runResult) parse(log string, trace bool) {
	if m := reInitReport.FindStringSubmatch(log); m != nil {
		r.InitMs, _ = strconv.ParseFloat(m[1], 64)
	} else if r.Err == nil {
		r.Err = errors.New("no INIT REPORT in the emulator's log")
	}
	if m := reInitDone.FindStringSubmatch(log); m != nil {
		r.InitStatus = strings.TrimSpace(m[1])
		if r.InitStatus != "success" && r.Err == nil {
			r.Err = fmt.Errorf("init %s: %s", r.InitStatus, lastLines(log, 3))
		}
	}
	for i, m := range reInvokeDone.FindAllStringSubmatch(log, -1) {
		d, _ := strconv.ParseFloat(m[2], 64)
		if i == 0 {
			r.FirstMs = d
		} else {
			r.WarmMs = append(r.WarmMs, d)
		}
	}
	if m := reReport.FindStringSubmatch(log); m != nil && m[1] != "" {
		r.ReportInitMs, _ = strconv.ParseFloat(m[1], 64)
	}
	if trace {
		r.Trace = parseInittrace(log)
	}
}

func invoke(ctx context.Context, c *http.Client, url string, event []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(event))
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// answer summarises an invocation's result: the HTTP status inside an API Gateway proxy
// response, a Lambda error, or the emulator's own failure.
func answer(status int, body []byte) string {
	if status != http.StatusOK {
		return fmt.Sprintf("emulator HTTP %d %s", status, trunc(string(body), 80))
	}
	var m struct {
		StatusCode   *int   `json:"statusCode"`
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &m) == nil {
		switch {
		case m.ErrorType != "" || m.ErrorMessage != "":
			return fmt.Sprintf("Lambda error %s: %s", m.ErrorType, trunc(m.ErrorMessage, 80))
		case m.StatusCode != nil:
			return fmt.Sprintf("HTTP %d", *m.StatusCode)
		}
	}
	return "returned " + trunc(string(body), 60)
}

// stopEmulator ends the emulator (SIGTERM makes it SIGKILL its runtime) and makes sure the
// bootstrap it started, which runs in its own process group, is gone too.
func stopEmulator(cmd *exec.Cmd, bin string) {
	children := childPIDs(cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	for _, pid := range children {
		// Only a process still running our bootstrap (a recycled pid is left alone).
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && exe == bin {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func childPIDs(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitListening(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the emulator did not listen on %s within %s", addr, limit)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// inittrace is what GODEBUG=inittrace=1 printed: one line per package with init work.
type inittrace struct {
	Inits []pkgInit
	EndMs float64 // the last package init's end, since process start: main runs from here
	Runs  int     // processes combined (medianTrace)
}

type pkgInit struct {
	Pkg     string
	AtMs    float64
	ClockMs float64
	Bytes   int64
	Allocs  int64
}

// Sum is the total clock time of the package inits.
func (t inittrace) Sum() float64 {
	var s float64
	for _, in := range t.Inits {
		s += in.ClockMs
	}
	return s
}

// Top is the n slowest package inits.
func (t inittrace) Top(n int) []pkgInit {
	s := append([]pkgInit(nil), t.Inits...)
	sort.Slice(s, func(i, j int) bool { return s[i].ClockMs > s[j].ClockMs })
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// medianTrace combines several processes' traces: each package's median clock time.
func medianTrace(traces []inittrace) inittrace {
	clocks := map[string][]float64{}
	ats := map[string][]float64{}
	first := map[string]pkgInit{}
	var order []string
	var ends []float64
	for _, t := range traces {
		if len(t.Inits) == 0 {
			continue
		}
		ends = append(ends, t.EndMs)
		for _, in := range t.Inits {
			if _, ok := first[in.Pkg]; !ok {
				first[in.Pkg] = in
				order = append(order, in.Pkg)
			}
			clocks[in.Pkg] = append(clocks[in.Pkg], in.ClockMs)
			ats[in.Pkg] = append(ats[in.Pkg], in.AtMs)
		}
	}
	out := inittrace{EndMs: median(ends), Runs: len(ends)}
	for _, p := range order {
		in := first[p]
		in.ClockMs, in.AtMs = median(clocks[p]), median(ats[p])
		out.Inits = append(out.Inits, in)
	}
	return out
}

var reInit = regexp.MustCompile(`init (\S+) @([0-9.]+) ms, ([0-9.]+) ms clock, (\d+) bytes, (\d+) allocs`)

func parseInittrace(log string) inittrace {
	var t inittrace
	for _, m := range reInit.FindAllStringSubmatch(log, -1) {
		in := pkgInit{Pkg: m[1]}
		in.AtMs, _ = strconv.ParseFloat(m[2], 64)
		in.ClockMs, _ = strconv.ParseFloat(m[3], 64)
		in.Bytes, _ = strconv.ParseInt(m[4], 10, 64)
		in.Allocs, _ = strconv.ParseInt(m[5], 10, 64)
		t.Inits = append(t.Inits, in)
		if end := in.AtMs + in.ClockMs; end > t.EndMs {
			t.EndMs = end
		}
	}
	return t
}

// syncBuffer is the emulator's combined output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func trunc(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
