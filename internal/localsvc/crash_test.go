package localsvc_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/localsvc"
)

// TestHelperStartAndHang is not a test: TestRecoversFromOwnCrash runs the test binary with
// LOCALSVC_HELPER_DIR set, and this starts the servers the way `optralis dev` does, says
// READY and waits to be killed with SIGKILL.
func TestHelperStartAndHang(t *testing.T) {
	dir := os.Getenv("LOCALSVC_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	pgPort, _ := strconv.Atoi(os.Getenv("LOCALSVC_HELPER_PG_PORT"))
	redisPort, _ := strconv.Atoi(os.Getenv("LOCALSVC_HELPER_REDIS_PORT"))
	ctx := context.Background()
	if _, err := localsvc.StartPostgres(ctx, filepath.Join(dir, "pgdata"), pgPort, true); err != nil {
		t.Fatal(err)
	}
	if _, err := localsvc.StartRedisWithPIDFile(ctx, redisPort, filepath.Join(dir, "redis.pid")); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("READY\n")
	time.Sleep(10 * time.Minute)
}

// TestRecoversFromOwnCrash: a process that started the servers is killed with SIGKILL (its
// PostgreSQL and Redis survive it); starting again works, stops the leftovers rather than
// failing on or adopting them, and a clean stop then leaves no server running.
func TestRecoversFromOwnCrash(t *testing.T) {
	if _, err := localsvc.PostgresBinDir(); err != nil || !localsvc.RedisAvailable() {
		t.Skip("needs PostgreSQL server binaries and redis-server")
	}
	dir := t.TempDir()
	pgPort, _ := localsvc.FreePort()
	redisPort, _ := localsvc.FreePort()
	pidFile := filepath.Join(dir, "redis.pid")
	dataDir := filepath.Join(dir, "pgdata")

	helper := exec.Command(os.Args[0], "-test.run=^TestHelperStartAndHang$", "-test.v")
	helper.Env = append(os.Environ(), "LOCALSVC_HELPER_DIR="+dir,
		"LOCALSVC_HELPER_PG_PORT="+strconv.Itoa(pgPort), "LOCALSVC_HELPER_REDIS_PORT="+strconv.Itoa(redisPort))
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var lines []string
		for sc.Scan() {
			if sc.Text() == "READY" {
				ready <- true
				return
			}
			lines = append(lines, sc.Text())
		}
		t.Logf("helper output:\n%s", strings.Join(lines, "\n"))
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = helper.Wait()
			t.Fatal("helper did not start its servers")
		}
	case <-time.After(2 * time.Minute):
		_ = helper.Process.Kill()
		t.Fatal("helper did not start within 2 minutes")
	}
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()

	// The crash's leftovers: both servers still answer, PostgreSQL holds postmaster.pid.
	oldRedis := readPID(t, pidFile)
	oldPG := readPID(t, filepath.Join(dataDir, "postmaster.pid"))
	t.Cleanup(func() { // never leak them, whatever happens below
		_ = syscall.Kill(oldRedis, syscall.SIGKILL)
		_ = syscall.Kill(oldPG, syscall.SIGKILL)
	})
	for _, port := range []int{pgPort, redisPort} {
		if !listening(port) {
			t.Fatalf("precondition: nothing listens on %d after the crash", port)
		}
	}

	ctx := context.Background()
	pg, err := localsvc.StartPostgres(ctx, dataDir, pgPort, true)
	if err != nil {
		t.Fatalf("restart after a crash: %v", err)
	}
	if pg.Recovered != oldPG {
		t.Errorf("PostgreSQL: Recovered = %d, want the leftover's pid %d", pg.Recovered, oldPG)
	}
	r, err := localsvc.StartRedisWithPIDFile(ctx, redisPort, pidFile)
	if err != nil {
		pg.Stop()
		t.Fatalf("Redis restart after a crash: %v", err)
	}
	if r.Recovered != oldRedis {
		t.Errorf("Redis: Recovered = %d, want the leftover's pid %d", r.Recovered, oldRedis)
	}
	if alive(oldRedis) || alive(oldPG) {
		t.Errorf("leftover servers still running (redis %v, postgres %v)", alive(oldRedis), alive(oldPG))
	}
	if got := readPID(t, pidFile); got != r.PID() {
		t.Errorf("redis pid file holds %d, want the new server %d", got, r.PID())
	}
	conn, err := pgx.Connect(ctx, pg.URL("postgres"))
	if err != nil {
		t.Fatalf("new PostgreSQL: %v", err)
	}
	conn.Close(ctx)

	// A clean stop leaves nothing behind.
	newPG := readPID(t, filepath.Join(dataDir, "postmaster.pid"))
	r.Stop()
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if alive(r.PID()) || alive(newPG) {
		t.Errorf("servers still running after a clean stop (redis %v, postgres %v)", alive(r.PID()), alive(newPG))
	}
	for _, f := range []string{pidFile, filepath.Join(dataDir, "postmaster.pid")} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left after a clean stop", f)
		}
	}
	for _, port := range []int{pgPort, redisPort} {
		if listening(port) {
			t.Errorf("port %d still served after a clean stop", port)
		}
	}
}

// TestRedisBusyPortIsNotAdopted: a port served by somebody else's server is an error that
// says why, not a server of ours.
func TestRedisBusyPortIsNotAdopted(t *testing.T) {
	if !localsvc.RedisAvailable() {
		t.Skip("needs redis-server")
	}
	other, err := localsvc.StartRedis(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Stop()
	r, err := localsvc.StartRedisWithPIDFile(context.Background(), other.Port, filepath.Join(t.TempDir(), "redis.pid"))
	if err == nil {
		r.Stop()
		t.Fatal("started on a busy port: adopted another server")
	}
	if !strings.Contains(err.Error(), "in use") {
		t.Errorf("error does not say the port is in use: %v", err)
	}
}

// TestPostgresBusyPortShowsCause: pg_ctl's "exit status 1" comes with the server log's reason.
func TestPostgresBusyPortShowsCause(t *testing.T) {
	if _, err := localsvc.PostgresBinDir(); err != nil {
		t.Skip("needs PostgreSQL server binaries")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	pg, err := localsvc.StartPostgres(context.Background(), filepath.Join(t.TempDir(), "pgdata"), port, true)
	if err == nil {
		pg.Stop()
		t.Fatal("started on a busy port")
	}
	if !strings.Contains(err.Error(), "Address already in use") {
		t.Errorf("error does not show the server log's cause: %v", err)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}

// alive reports a live process (a zombie, waiting for its parent to reap it, is dead).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func listening(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}
