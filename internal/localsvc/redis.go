package localsvc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Redis is a redis-server process of ours. It keeps nothing on disk: it is a cache.
type Redis struct {
	Port int
	// Recovered is the process id of a redis-server a previous run left running (recorded
	// in the pid file) and that this start stopped first; 0 if none.
	Recovered int
	pidFile   string
	cmd       *exec.Cmd
	done      chan struct{}
	mu        sync.Mutex
	lines     []string // the server's last output lines, for start-up errors
}

// RedisAvailable reports whether redis-server is installed.
func RedisAvailable() bool {
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// EnsureRedisInstalled installs Debian's redis-server when missing and we are root.
func EnsureRedisInstalled(ctx context.Context) error {
	if RedisAvailable() {
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("redis-server is not installed: sudo apt-get install -y redis-server")
	}
	return aptInstall(ctx, "redis-server")
}

// StartRedis runs redis-server on 127.0.0.1:port (0 picks a free one) until Stop.
func StartRedis(ctx context.Context, port int) (*Redis, error) {
	return StartRedisWithPIDFile(ctx, port, "")
}

// StartRedisWithPIDFile is StartRedis for a server that outlives a crash of this process:
// its pid is kept in pidFile (removed by Stop). A redis-server that a previous run left
// running (killed before it could stop it) is stopped first, never adopted: this process
// then owns exactly the server it started, and stops it.
func StartRedisWithPIDFile(ctx context.Context, port int, pidFile string) (*Redis, error) {
	r := &Redis{Port: port, pidFile: pidFile, done: make(chan struct{})}
	if pidFile != "" {
		pid, err := stopLeftoverRedis(pidFile)
		if err != nil {
			return nil, err
		}
		r.Recovered = pid
	}
	if r.Port == 0 {
		var err error
		if r.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(r.Port),
		"--save", "", "--appendonly", "no", "--maxmemory", "128mb", "--maxmemory-policy", "allkeys-lru")
	cmd.Dir = os.TempDir()
	// Our own pipe rather than StdoutPipe: Wait would close that one under the reader.
	out, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	r.cmd = cmd
	// Ready means OUR process said so: a server already listening on the port (another
	// one's) must not pass for ours, as a mere successful dial would let it.
	ready := make(chan struct{})
	go r.readOutput(out, ready)
	go func() { _ = cmd.Wait(); close(r.done) }()
	if pidFile != "" {
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
			r.Stop()
			return nil, err
		}
	}
	select {
	case <-ready:
		return r, nil
	case <-r.done:
		r.removePIDFile()
		time.Sleep(50 * time.Millisecond) // let the reader take the last lines
		return nil, fmt.Errorf("redis-server exited at start-up (port %d): %s", r.Port, r.output())
	case <-ctx.Done():
		r.Stop()
		return nil, ctx.Err()
	case <-time.After(10 * time.Second):
		r.Stop()
		return nil, fmt.Errorf("redis-server did not start within 10s: %s", r.output())
	}
}

// readOutput keeps the server's last lines and signals its readiness message; it reads
// until the server exits so that the server never blocks on a full pipe.
func (r *Redis) readOutput(out io.ReadCloser, ready chan struct{}) {
	defer out.Close()
	sc := bufio.NewScanner(out)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		r.mu.Lock()
		r.lines = append(r.lines, line)
		if len(r.lines) > 10 {
			r.lines = r.lines[len(r.lines)-10:]
		}
		r.mu.Unlock()
		if !signalled && strings.Contains(line, "Ready to accept connections") {
			signalled = true
			close(ready)
		}
	}
	_, _ = io.Copy(io.Discard, out)
}

func (r *Redis) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lines) > 3 {
		return strings.Join(r.lines[len(r.lines)-3:], " | ")
	}
	return strings.Join(r.lines, " | ")
}

// stopLeftoverRedis stops the redis-server recorded in pidFile when it still runs, and
// returns its pid (0 when there was none). A pid now used by another program is left alone.
func stopLeftoverRedis(pidFile string) (int, error) {
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !isRedisServer(pid) {
		_ = os.Remove(pidFile)
		return 0, nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for isRedisServer(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(5 * time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = os.Remove(pidFile)
	return pid, nil
}

// isRedisServer reports whether pid is a live redis-server (a zombie has no command line).
func isRedisServer(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && strings.Contains(string(b), "redis-server")
}

func (r *Redis) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)) }

// URL is the redis:// address of the server.
func (r *Redis) URL() string { return "redis://" + r.addr() + "/0" }

// PID is the server's process id.
func (r *Redis) PID() int { return r.cmd.Process.Pid }

// Stop terminates the server, waits for it and removes its pid file.
func (r *Redis) Stop() {
	if r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.removePIDFile()
}

func (r *Redis) removePIDFile() {
	if r.pidFile != "" {
		_ = os.Remove(r.pidFile)
	}
}
