// Package enroltest runs the Linux installer for tests: unprivileged, under a temporary
// root prefix, and serves a fake agent binary for it to download.
package enroltest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// AgentBinary is the content of the fake agent the download server serves.
const AgentBinary = "#!/bin/sh\necho optralis-agent test binary\n"

// DownloadServer serves <url>/optralis-agent-linux-<arch> and its .sha256. With
// badChecksum the published checksum does not match the binary.
func DownloadServer(t testing.TB, badChecksum bool) *httptest.Server {
	t.Helper()
	sum := sha256.Sum256([]byte(AgentBinary))
	digest := hex.EncodeToString(sum[:])
	if badChecksum {
		digest = strings.Repeat("0", 64)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/agent/")
		switch {
		case strings.HasPrefix(name, "optralis-agent-linux-") && strings.HasSuffix(name, ".sha256"):
			_, _ = w.Write([]byte(digest + "  " + strings.TrimSuffix(name, ".sha256") + "\n"))
		case strings.HasPrefix(name, "optralis-agent-linux-"):
			_, _ = w.Write([]byte(AgentBinary))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Run is one run of the installer.
type Run struct {
	Root     string // the OPTRALIS_ROOT the script installed under
	Output   string // its stdout and stderr
	ExitCode int
	AsUser   string // the user it ran as
}

// RunInstaller writes script into a fresh root directory and runs it with sh and the
// token, as the unprivileged user nobody when the test runs as root (as the current,
// unprivileged user otherwise), with OPTRALIS_ROOT set to that directory.
func RunInstaller(t testing.TB, script, token string) Run {
	t.Helper()
	root, err := os.MkdirTemp("", "optralis-install-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return RunInstallerIn(t, root, script, token)
}

// RunInstallerIn is RunInstaller under an existing root (a second run).
func RunInstallerIn(t testing.TB, root, script, token string) Run {
	t.Helper()
	path := filepath.Join(root, "install.sh")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	envv := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "OPTRALIS_ROOT=" + root, "LC_ALL=C"}
	args := []string{"env", "-i"}
	args = append(args, envv...)
	args = append(args, "sh", path, token)
	run := Run{Root: root}
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("running unprivileged needs the nobody user: %v", err)
		}
		uid, _ := strconv.Atoi(nobody.Uid)
		gid, _ := strconv.Atoi(nobody.Gid)
		if err := os.Chown(root, uid, gid); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"runuser", "-u", "nobody", "--"}, args...)
		run.AsUser = "nobody"
	} else if u, err := user.Current(); err == nil {
		run.AsUser = u.Username
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	out, err := cmd.CombinedOutput()
	run.Output = string(out)
	if ee, ok := err.(*exec.ExitError); ok {
		run.ExitCode = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running the installer: %v\n%s", err, out)
	}
	return run
}
