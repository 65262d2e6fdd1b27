// Package tsdbsidecar starts the test-only TimescaleDB server of tools/tsdb-sidecar (PGlite WASM under Node) for tests.
package tsdbsidecar

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrMissingPrerequisite is wrapped by the errors of Start when node or npm is not installed.
// It fails the timescale tests like any other error, unless SkipEnv is set (SkipMissing).
var ErrMissingPrerequisite = errors.New("missing prerequisite")

// SkipEnv is the environment variable that opts out of the timescale tests on a machine
// without their prerequisites: set (to anything), a missing node or npm skips them instead
// of failing them. Unset — plain `go test`, `make test` — a missing prerequisite fails.
const SkipEnv = "OPTRALIS_SKIP_TIMESCALE"

// SkipMissing tells whether err, from Start, should skip the test rather than fail it:
// only a missing prerequisite, and only when SkipEnv opts out.
func SkipMissing(err error) bool {
	return errors.Is(err, ErrMissingPrerequisite) && os.Getenv(SkipEnv) != ""
}

// ReadyTimeout bounds how long Start waits for the sidecar's READY line (after npm ci).
const ReadyTimeout = 60 * time.Second

// sidecarRel is where the Node project lives, relative to the module root.
var sidecarRel = filepath.Join("tools", "tsdb-sidecar")

// stampFile, inside node_modules, records the hash of the package-lock.json that was installed.
const stampFile = ".tsdb-sidecar-installed"

// Server is a running sidecar process. Close stops it.
type Server struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	port  int
	logf  func(string, ...any)

	exited  chan struct{} // closed when the process has been reaped
	waitErr error         // valid once exited is closed
	readers sync.WaitGroup

	logMu     sync.Mutex
	logClosed bool

	closeOnce sync.Once
	closeErr  error
}

// Start installs the sidecar's npm dependencies when needed, starts `node server.mjs 0` and waits for it
// to accept connections. ctx bounds only the start-up (npm ci and the wait for READY), not the server's
// life. logf receives the sidecar's diagnostics (stderr) and may be nil; it is not called after Close
// returns. The caller must Close the server.
func Start(ctx context.Context, logf func(string, ...any)) (*Server, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("tsdbsidecar: node not found on PATH (install Node.js >= 20): %w", ErrMissingPrerequisite)
	}
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	if err := ensureInstalled(ctx, dir, logf); err != nil {
		return nil, err
	}

	cmd := exec.Command(node, "server.mjs", "0")
	cmd.Dir = dir
	// Own process group, so a ^C on the terminal reaches us first and Close decides.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe() // the sidecar exits when this pipe closes, e.g. when we die
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("tsdbsidecar: start node: %w", err)
	}
	s := &Server{cmd: cmd, stdin: stdin, logf: logf, exited: make(chan struct{})}

	tail := newTail(30)
	ready := make(chan int, 1)
	s.readers.Add(2)
	go func() {
		defer s.readers.Done()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			tail.add(sc.Text())
			s.log("%s", sc.Text())
		}
	}()
	go func() {
		defer s.readers.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if !sent {
				if p, ok := parseReady(line); ok {
					ready <- p
					sent = true
					continue
				}
			}
			tail.add(line)
			s.log("tsdb-sidecar stdout: %s", line)
		}
	}()
	go func() {
		// Wait closes the pipes only after the readers are done with them.
		s.readers.Wait()
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	timer := time.NewTimer(ReadyTimeout)
	defer timer.Stop()
	select {
	case p := <-ready:
		s.port = p
		logf("tsdb-sidecar: pid %d listening on 127.0.0.1:%d (started in %s)", cmd.Process.Pid, p, time.Since(started).Round(time.Millisecond))
		return s, nil
	case <-s.exited:
		_ = stdin.Close()
		return nil, fmt.Errorf("tsdbsidecar: node exited before READY (%v); last output:\n%s", s.waitErr, tail.String())
	case <-timer.C:
		_ = s.Close()
		return nil, fmt.Errorf("tsdbsidecar: no READY line within %s; last output:\n%s", ReadyTimeout, tail.String())
	case <-ctx.Done():
		_ = s.Close()
		return nil, fmt.Errorf("tsdbsidecar: waiting for READY: %w", ctx.Err())
	}
}

// Port is the TCP port the sidecar listens on (on 127.0.0.1).
func (s *Server) Port() int { return s.port }

// URL is a postgres URL for the sidecar, with sslmode=disable (the server has no TLS). The server
// accepts any user, password and database name, and always serves its one database.
// The password is there only for psql, which refuses to send an empty one.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres:postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// Close stops the sidecar (stdin EOF and SIGTERM, SIGKILL after 5 s) and waits for it to exit.
// It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		_ = s.stdin.Close()
		if s.cmd.Process != nil {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		s.logMu.Lock()
		s.logClosed = true
		s.logMu.Unlock()
		var ee *exec.ExitError
		if s.waitErr != nil && !(errors.As(s.waitErr, &ee) && (ee.ExitCode() == 0 || ee.ExitCode() == -1)) {
			s.closeErr = fmt.Errorf("tsdbsidecar: %w", s.waitErr)
		}
	})
	return s.closeErr
}

func (s *Server) log(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if !s.logClosed {
		s.logf(format, args...)
	}
}

// PoolConfig parses url into a pgxpool config fit for the sidecar: the sidecar is one PostgreSQL
// session shared by every connection, so the pool keeps at most one connection (MaxConns=1,
// MinConns=0) and every new connection drops the prepared statements a previous connection
// left in that session (DEALLOCATE ALL), which would otherwise clash with pgx's statement cache.
func PoolConfig(url string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 1
	cfg.MinConns = 0
	prev := cfg.AfterConnect
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "DEALLOCATE ALL"); err != nil {
			return fmt.Errorf("tsdbsidecar: DEALLOCATE ALL: %w", err)
		}
		if prev != nil {
			return prev(ctx, conn)
		}
		return nil
	}
	return cfg, nil
}

// Dir returns the absolute path of tools/tsdb-sidecar, found by walking up from the working directory
// to a directory with a go.mod that holds it (go test runs in the package's directory).
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			cand := filepath.Join(d, sidecarRel)
			if _, err := os.Stat(filepath.Join(cand, "server.mjs")); err == nil {
				return cand, nil
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("tsdbsidecar: no go.mod with %s above %s", sidecarRel, wd)
		}
		d = parent
	}
}

// ensureInstalled runs `npm ci` in dir unless node_modules matches package-lock.json already.
// Concurrent callers, in this process or others (several go test binaries), are serialized by an
// flock on a lock file outside the work tree.
func ensureInstalled(ctx context.Context, dir string, logf func(string, ...any)) error {
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return fmt.Errorf("tsdbsidecar: %w", err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", stampFile)
	installed := func() bool {
		got, err := os.ReadFile(stamp)
		return err == nil && strings.TrimSpace(string(got)) == want
	}
	if installed() {
		return nil
	}

	dirSum := sha256.Sum256([]byte(dir))
	lockPath := filepath.Join(os.TempDir(), "tsdb-sidecar-npm-"+hex.EncodeToString(dirSum[:6])+".lock")
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return fmt.Errorf("tsdbsidecar: open lock file: %w", err)
	}
	defer f.Close()
	if err := flock(ctx, f); err != nil {
		return err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck // closing the file unlocks too

	if installed() { // another process installed it while we waited
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("tsdbsidecar: npm not found on PATH (needed once to install %s/node_modules): %w", sidecarRel, ErrMissingPrerequisite)
	}
	logf("tsdb-sidecar: running npm ci in %s", dir)
	start := time.Now()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("tsdbsidecar: npm ci in %s: %v\n%s", dir, err, out)
	}
	if err := os.WriteFile(stamp, []byte(want+"\n"), 0o644); err != nil {
		return fmt.Errorf("tsdbsidecar: %w", err)
	}
	logf("tsdb-sidecar: npm ci done in %s", time.Since(start).Round(time.Millisecond))
	return nil
}

// flock takes an exclusive lock on f, giving up when ctx ends.
func flock(ctx context.Context, f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("tsdbsidecar: flock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tsdbsidecar: waiting for npm install lock %s: %w", f.Name(), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func parseReady(line string) (int, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "READY port=")
	if !ok {
		return 0, false
	}
	p, err := strconv.Atoi(rest)
	if err != nil || p <= 0 || p > 65535 {
		return 0, false
	}
	return p, true
}

// tail keeps the last lines of the sidecar's output for error messages.
type tail struct {
	mu    sync.Mutex
	lines []string
	max   int
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
