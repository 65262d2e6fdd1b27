// Package localsvc starts PostgreSQL and Redis servers owned by this process, for the local
// stack (persistent, under .dev/) and for tests (throwaway, in a temporary directory).
package localsvc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Postgres is a PostgreSQL server running from a data directory of ours.
type Postgres struct {
	DataDir string
	Port    int
	bin     string
	asUser  string // "" or "postgres" when we are root (initdb refuses to run as root)
	logFile string
	// Recovered is the process id of a server a previous run left running on DataDir (it
	// was killed before it could stop it) and that this start stopped first; 0 if none.
	Recovered int
	// Timescale reports that the server was started with timescaledb preloaded.
	Timescale bool
}

// ErrNotInstalled means the PostgreSQL server binaries are missing; Hint says how to get them.
type ErrNotInstalled struct{ Hint string }

func (e ErrNotInstalled) Error() string { return "PostgreSQL server is not installed: " + e.Hint }

// PostgresBinDir finds the newest /usr/lib/postgresql/<v>/bin holding initdb, or initdb on PATH.
func PostgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	if len(dirs) > 0 {
		return filepath.Dir(dirs[0]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNotInstalled{Hint: "install it with: sudo apt-get install -y postgresql"}
}

func version(initdbPath string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdbPath))))
	return v
}

// EnsurePostgresInstalled installs Debian's postgresql package when it is missing and we are
// root; otherwise it returns ErrNotInstalled with the command to run.
func EnsurePostgresInstalled(ctx context.Context, logf func(string, ...any)) error {
	if _, err := PostgresBinDir(); err == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return ErrNotInstalled{Hint: "install it with: sudo apt-get install -y postgresql (then re-run)"}
	}
	logf("PostgreSQL server not found: installing Debian's postgresql package")
	if err := aptInstall(ctx, "postgresql"); err != nil {
		return err
	}
	_, err := PostgresBinDir()
	return err
}

func aptInstall(ctx context.Context, pkgs ...string) error {
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{{"update", "-q"}, append([]string{"install", "-y", "-q", "--no-install-recommends"}, pkgs...)} {
		// Test packages may install tools at the same time (shellcheck, chromium): wait for
		// the other's apt lock rather than fail.
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"-o", "DPkg::Lock::Timeout=300"}, args...)...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %v: %s", args[0], err, tail(out))
		}
	}
	return nil
}

// StartPostgres initialises dataDir when empty and starts a server on 127.0.0.1:port
// (port 0 picks a free one). Durability is traded for speed only when fast is set (tests).
func StartPostgres(ctx context.Context, dataDir string, port int, fast bool) (*Postgres, error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	pg := &Postgres{DataDir: dataDir, Port: port, bin: bin, logFile: filepath.Join(filepath.Dir(dataDir), filepath.Base(dataDir)+".log")}
	if os.Geteuid() == 0 {
		pg.asUser = "postgres"
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	if err := pg.chown(dataDir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		args := []string{"-D", dataDir, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"}
		if fast {
			args = append(args, "--nosync")
		}
		if out, err := pg.run(ctx, "initdb", args...); err != nil {
			return nil, fmt.Errorf("initdb: %v: %s", err, tail(out))
		}
	}
	if f, err := os.OpenFile(pg.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
		f.Close()
		_ = pg.chown(pg.logFile)
	}
	// A previous run killed with SIGKILL leaves its detached server running on our data
	// directory (postmaster.pid), and pg_ctl start would then fail: stop it first. The data
	// directory is ours, so whatever server holds it is ours too.
	if pid, running := pg.leftover(ctx); running {
		if out, err := pg.run(ctx, "pg_ctl", "-D", dataDir, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
			return nil, fmt.Errorf("stopping the PostgreSQL server (pid %d) a previous run left on %s: %v: %s", pid, dataDir, err, tail(out))
		}
		pg.Recovered = pid
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c max_connections=300", port, dataDir)
	if fast {
		opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	if !fast && TimescaleInstalled(bin) {
		opts += " -c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off"
		pg.Timescale = true
	}
	logStart := fileSize(pg.logFile)
	if out, err := pg.run(ctx, "pg_ctl", "-D", dataDir, "-l", pg.logFile, "-o", opts, "-w", "-t", "60", "start"); err != nil {
		// pg_ctl only says "exit status 1"; the cause (port in use, ...) is in the server log.
		return nil, fmt.Errorf("pg_ctl start: %v: %s\nserver log (%s):\n%s", err, tail(out), pg.logFile, logTail(pg.logFile, logStart, 8))
	}
	return pg, nil
}

// leftover reports a server running on the data directory (pg_ctl status exits 0) and its pid.
func (p *Postgres) leftover(ctx context.Context) (int, bool) {
	if _, err := os.Stat(filepath.Join(p.DataDir, "postmaster.pid")); err != nil {
		return 0, false
	}
	if _, err := p.run(ctx, "pg_ctl", "-D", p.DataDir, "status"); err != nil {
		return 0, false // exit 3: not running (a stale postmaster.pid the server ignores)
	}
	return p.postmasterPID(), true
}

// TimescaleInstalled reports whether the PostgreSQL of bin has the timescaledb extension
// installed (its library and control file), so a local server can preload it.
func TimescaleInstalled(bin string) bool {
	lib := filepath.Join(filepath.Dir(bin), "lib", "timescaledb.so")
	if _, err := os.Stat(lib); err != nil {
		return false
	}
	for _, share := range []string{
		filepath.Join("/usr/share/postgresql", filepath.Base(filepath.Dir(bin))), // Debian
		filepath.Join(filepath.Dir(bin), "share"),                                // a source build's prefix
		filepath.Join(filepath.Dir(bin), "share", "postgresql"),
	} {
		if _, err := os.Stat(filepath.Join(share, "extension", "timescaledb.control")); err == nil {
			return true
		}
	}
	return false
}

func fileSize(path string) int64 {
	if fi, err := os.Stat(path); err == nil {
		return fi.Size()
	}
	return 0
}

// logTail returns the last n lines the server wrote to path after offset from.
func logTail(path string, from int64, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	if from >= 0 && from <= int64(len(b)) {
		b = b[from:]
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// URL is the connection string for database name.
func (p *Postgres) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, database)
}

// Stop shuts the server down quickly and cleanly.
func (p *Postgres) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pid := p.postmasterPID()
	if out, err := p.run(ctx, "pg_ctl", "-D", p.DataDir, "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, tail(out))
	}
	// pg_ctl returns once postmaster.pid is gone, which the postmaster removes on its way
	// out, a moment before the process ends: wait for the end, so "stopped" means stopped.
	for pid > 0 && running(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("pg_ctl stop: postmaster %d still running", pid)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// postmasterPID is the pid recorded in postmaster.pid, 0 when there is none.
func (p *Postgres) postmasterPID() int {
	b, err := os.ReadFile(filepath.Join(p.DataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}

// running reports whether process pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func (p *Postgres) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	path := filepath.Join(p.bin, name)
	var cmd *exec.Cmd
	if p.asUser != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", p.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = "/"
	return cmd.CombinedOutput()
}

// chown gives path to the server's user when we run as root, and makes its parents traversable.
func (p *Postgres) chown(path string) error {
	if p.asUser == "" {
		return nil
	}
	u, err := user.Lookup(p.asUser)
	if err != nil {
		return fmt.Errorf("user %s: %w", p.asUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		return err
	}
	// The server user must be able to reach its data directory through our directories.
	for dir := filepath.Dir(path); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o001 == 0 {
			_ = os.Chmod(dir, fi.Mode().Perm()|0o001)
		}
	}
	return nil
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return s
}

// EnsureTool makes the command available, installing Debian's package pkg when it is
// missing and we are root (tests use it for linters such as shellcheck).
func EnsureTool(ctx context.Context, command, pkg string) (string, error) {
	if p, err := exec.LookPath(command); err == nil {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("%s is not installed: sudo apt-get install -y %s", command, pkg)
	}
	if err := aptInstall(ctx, pkg); err != nil {
		return "", err
	}
	return exec.LookPath(command)
}
