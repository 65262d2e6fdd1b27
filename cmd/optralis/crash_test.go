package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/localsvc"
)

// TestHelperDev is not a test: TestDevRecoversFromSIGKILL runs the test binary with
// OPTRALIS_HELPER_DEV_DIR set, and this is `optralis dev` with nothing configured.
func TestHelperDev(t *testing.T) {
	dir := os.Getenv("OPTRALIS_HELPER_DEV_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	env := map[string]string{"PORT": os.Getenv("OPTRALIS_HELPER_PORT")}
	err := run(ctx, []string{"dev", "-dir", dir, "-agent-port", os.Getenv("OPTRALIS_HELPER_AGENT_PORT"),
		"-pg-port", os.Getenv("OPTRALIS_HELPER_PG_PORT"), "-redis-port", os.Getenv("OPTRALIS_HELPER_REDIS_PORT")},
		func(k string) string { return env[k] }, os.Stdout, os.Stderr)
	if err != nil {
		os.Stdout.WriteString("HELPER ERROR: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("HELPER STOPPED\n")
	os.Exit(0)
}

// TestDevRecoversFromSIGKILL: `optralis dev` killed with SIGKILL leaves its PostgreSQL and
// Redis running; the next `optralis dev` stops them and starts, and its clean stop leaves
// no server behind.
func TestDevRecoversFromSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the stack twice")
	}
	if _, err := localsvc.PostgresBinDir(); err != nil || !localsvc.RedisAvailable() {
		t.Skip("needs PostgreSQL server binaries and redis-server")
	}
	dir := t.TempDir()
	ports := make([]string, 4)
	for i := range ports {
		p, _ := localsvc.FreePort()
		ports[i] = strconv.Itoa(p)
	}
	redisPID := filepath.Join(dir, "redis.pid")
	pgPID := filepath.Join(dir, "pgdata", "postmaster.pid")
	var seen []int
	t.Cleanup(func() { // never leak a server, whatever happens
		for _, pid := range append(seen, pidIn(redisPID), pidIn(pgPID)) {
			if pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	startDev := func() (*exec.Cmd, <-chan string, func() string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDev$")
		cmd.Env = append(os.Environ(), "OPTRALIS_HELPER_DEV_DIR="+dir, "OPTRALIS_HELPER_PORT="+ports[0],
			"OPTRALIS_HELPER_AGENT_PORT="+ports[1], "OPTRALIS_HELPER_PG_PORT="+ports[2], "OPTRALIS_HELPER_REDIS_PORT="+ports[3])
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1000)
		var all strings.Builder
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				all.WriteString(sc.Text() + "\n")
				lines <- sc.Text()
			}
			close(lines)
		}()
		return cmd, lines, func() string { <-done; return all.String() }
	}
	waitFor := func(lines <-chan string, want string) bool {
		timeout := time.After(3 * time.Minute)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return false
				}
				if strings.Contains(l, want) {
					return true
				}
			case <-timeout:
				return false
			}
		}
	}

	first, lines, output := startDev()
	if !waitFor(lines, "Optralis is running.") {
		_ = first.Process.Kill()
		t.Fatalf("first run did not start:\n%s", output())
	}
	seen = append(seen, pidIn(redisPID), pidIn(pgPID))
	_ = first.Process.Signal(syscall.SIGKILL)
	_ = first.Wait()
	if !running(seen[0]) || !running(seen[1]) {
		t.Fatalf("precondition: the servers did not survive the SIGKILL (redis %v, postgres %v)", running(seen[0]), running(seen[1]))
	}

	second, lines2, output2 := startDev()
	if !waitFor(lines2, "Optralis is running.") {
		_ = second.Process.Kill()
		t.Fatalf("second run after a SIGKILL did not start:\n%s", output2())
	}
	seen = append(seen, pidIn(redisPID), pidIn(pgPID))
	_ = second.Process.Signal(os.Interrupt)
	_ = second.Wait()
	out := output2()
	for _, want := range []string{
		"PostgreSQL: stopped the server (pid " + strconv.Itoa(seen[1]),
		"Redis: stopped the server (pid " + strconv.Itoa(seen[0]),
		"HELPER STOPPED",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("second run's output lacks %q:\n%s", want, out)
		}
	}
	for _, pid := range seen {
		if running(pid) {
			t.Errorf("server pid %d still running after the clean stop", pid)
		}
	}
	for _, f := range []string{redisPID, pgPID} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left after a clean stop", f)
		}
	}
}

func pidIn(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}

// running reports a live process (not a zombie waiting to be reaped).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}
