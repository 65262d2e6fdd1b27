package enrol_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/enrol"
	"github.com/optralis/optralis/internal/enrol/enroltest"
	"github.com/optralis/optralis/internal/localsvc"
	"github.com/optralis/optralis/internal/tokenhash"
)

// shellcheck comes from Debian's package, installed here when missing and we are root (as
// in CI); otherwise the test says so rather than passing silently.
func TestInstallScriptPassesShellcheck(t *testing.T) {
	t.Parallel()
	bin, err := localsvc.EnsureTool(context.Background(), "shellcheck", "shellcheck")
	if err != nil {
		t.Skip("shellcheck unavailable, the installer was not linted: ", err)
	}
	served, ok := enrol.InstallScript("https://api.example.com", "https://downloads.example.com/agent")
	if !ok {
		t.Fatal("script not built")
	}
	tmpl, err := os.ReadFile("install.sh")
	if err != nil {
		t.Fatal(err)
	}
	for name, script := range map[string][]byte{"template": tmpl, "served": []byte(served)} {
		cmd := exec.Command(bin, "--shell=sh", "--severity=style", "-")
		cmd.Stdin = bytes.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("shellcheck on the %s script: %v\n%s", name, err, out)
		}
	}
}

func TestInstallScriptServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.d.AgentDownloadURL = "https://downloads.example.test/agent/"
	e.rebuild()
	a := e.do("GET", "/install.sh", "", nil)
	if a.Code != 200 || !strings.HasPrefix(a.Body, "#!/bin/sh\n") || !strings.HasPrefix(a.Header.Get("Content-Type"), "text/x-shellscript") {
		t.Fatalf("%d %s %s", a.Code, a.Header.Get("Content-Type"), a.Body[:min(len(a.Body), 100)])
	}
	if !strings.Contains(a.Body, "API_URL='https://api.example.test'\n") || !strings.Contains(a.Body, "DOWNLOAD_URL='https://downloads.example.test/agent'\n") || strings.Contains(a.Body, "@@") {
		t.Fatal("URLs not filled in")
	}
	e.d.PublicAPIURL = ""
	e.rebuild()
	if a := e.do("GET", "/install.sh", "", nil); a.Code != 503 {
		t.Fatalf("without PUBLIC_API_URL: %d", a.Code)
	}
	if _, ok := enrol.InstallScript("https://api.example.com/'; rm -rf / #", ""); ok {
		t.Fatal("a URL with a quote was written into the script")
	}
}

// recorder keeps the bodies the API received, to prove no private key left the machine.
type recorder struct {
	mu     sync.Mutex
	bodies []string
	next   http.Handler
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.bodies = append(r.bodies, string(b))
	r.mu.Unlock()
	req.Body = io.NopCloser(bytes.NewReader(b))
	r.next.ServeHTTP(w, req)
}

// bootstrapBody is the last bootstrap request received.
func (r *recorder) bootstrapBody() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.bodies) - 1; i >= 0; i-- {
		if strings.Contains(r.bodies[i], `"csr"`) {
			return r.bodies[i]
		}
	}
	return ""
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.bodies, "\n")
}

// installerStack serves the real handlers over HTTP (the script is fetched from it, as
// curl | sh does) with a fake agent download.
func installerStack(t *testing.T, e *env, badChecksum bool) (*recorder, string) {
	t.Helper()
	dl := enroltest.DownloadServer(t, badChecksum)
	rec := &recorder{}
	api := httptest.NewServer(rec)
	t.Cleanup(api.Close)
	e.d.PublicAPIURL = api.URL
	e.d.AgentDownloadURL = dl.URL + "/agent"
	e.rebuild()
	rec.next = e.handler
	resp, err := http.Get(api.URL + "/install.sh")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	script, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /install.sh: %d %s", resp.StatusCode, script)
	}
	return rec, string(script)
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return fi.Mode().Perm()
}

func TestInstallerEnrolsUnprivileged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok, secret := e.token(0, 0)
	rec, script := installerStack(t, e, false)

	run := enroltest.RunInstaller(t, script, secret)
	if run.ExitCode != 0 {
		t.Fatalf("installer failed (%d) as %s:\n%s", run.ExitCode, run.AsUser, run.Output)
	}
	t.Logf("installer ran as %s:\n%s", run.AsUser, run.Output)
	if os.Geteuid() == 0 && run.AsUser != "nobody" {
		t.Fatal("the installer ran privileged")
	}
	conf := filepath.Join(run.Root, "etc/optralis")
	if m := mode(t, conf); m != 0o700 {
		t.Errorf("%s mode %o, want 700", conf, m)
	}
	for _, f := range []string{"agent.key", "agent.crt", "ca.crt", "agent.json"} {
		if m := mode(t, filepath.Join(conf, f)); m != 0o600 {
			t.Errorf("%s mode %o, want 600", f, m)
		}
	}
	if m := mode(t, filepath.Join(run.Root, "usr/local/bin/optralis-agent")); m != 0o755 {
		t.Errorf("agent binary mode %o", m)
	}
	if b, _ := os.ReadFile(filepath.Join(run.Root, "usr/local/bin/optralis-agent")); string(b) != enroltest.AgentBinary {
		t.Error("agent binary content")
	}
	unit, _ := os.ReadFile(filepath.Join(run.Root, "etc/systemd/system/optralis-agent.service"))
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/optralis-agent --config /etc/optralis/agent.json") {
		t.Errorf("unit:\n%s", unit)
	}
	for _, leftover := range []string{"agent.key.tmp", "agent.crt.tmp"} {
		if _, err := os.Stat(filepath.Join(conf, leftover)); err == nil {
			t.Errorf("%s left behind", leftover)
		}
	}

	// The files make a working TLS identity from our CA, for the machine just created.
	certPEM, _ := os.ReadFile(filepath.Join(conf, "agent.crt"))
	keyPEM, _ := os.ReadFile(filepath.Join(conf, "agent.key"))
	caPEM, _ := os.ReadFile(filepath.Join(conf, "ca.crt"))
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("certificate and key do not pair: %v", err)
	}
	if !bytes.Equal(bytes.TrimSpace(caPEM), bytes.TrimSpace(e.d.CA.CertPEM)) {
		t.Error("ca.crt is not the CA")
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: e.d.CA.Pool(), CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Endpoint  string `json:"endpoint"`
		ClientID  string `json:"client_id"`
		MachineID string `json:"machine_id"`
		KeyFile   string `json:"key_file"`
		Interval  int    `json:"heartbeat_interval_seconds"`
	}
	raw, _ := os.ReadFile(filepath.Join(conf, "agent.json"))
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("agent.json: %v\n%s", err, raw)
	}
	if cfg.Endpoint != "https://agents.example.test" || cfg.ClientID != e.clientID || leaf.Subject.CommonName != e.clientID+":"+cfg.MachineID ||
		cfg.KeyFile != "/etc/optralis/agent.key" || cfg.Interval != 60 {
		t.Fatalf("agent.json: %s", raw)
	}
	host, _ := os.Hostname()
	if n := e.count(`SELECT count(*) FROM machines WHERE id = $1 AND hostname = $2 AND os = 'linux' AND arch <> ''`, cfg.MachineID, host); n != 1 {
		t.Fatal("machine row")
	}
	if n := e.count(`SELECT usage_count FROM install_tokens WHERE id = $1`, tok.ID); n != 1 {
		t.Fatalf("usage_count %d", n)
	}
	// The private key never left the machine.
	block, _ := pem.Decode(keyPEM)
	if strings.Contains(rec.all(), "PRIVATE KEY") || block == nil || strings.Contains(rec.all(), string(keyPEM[30:80])) {
		t.Fatal("the private key was sent to the server")
	}

	// Running it again refuses: the machine is enrolled already.
	again := enroltest.RunInstallerIn(t, run.Root, script, secret)
	if again.ExitCode == 0 || !strings.Contains(again.Output, "already enrolled") {
		t.Fatalf("second run: %d\n%s", again.ExitCode, again.Output)
	}

	// The fingerprint sent is the SHA-256 of /etc/machine-id, when the system has one.
	want := ""
	if id, err := os.ReadFile("/etc/machine-id"); err == nil {
		if s := strings.TrimSpace(string(id)); s != "" && s != "uninitialized" {
			want = tokenhash.Sum(s)
		}
	}
	var sent struct {
		Fingerprint *string `json:"machine_fingerprint"`
	}
	if err := json.Unmarshal([]byte(rec.bootstrapBody()), &sent); err != nil {
		t.Fatalf("request body: %v", err)
	}
	if want == "" {
		if sent.Fingerprint != nil {
			t.Fatalf("a fingerprint without /etc/machine-id: %q", *sent.Fingerprint)
		}
		t.Log("no /etc/machine-id here: the re-enrolment by fingerprint was not exercised")
		return
	}
	if sent.Fingerprint == nil || *sent.Fingerprint != want {
		t.Fatalf("fingerprint sent %v, want %s", sent.Fingerprint, want)
	}
	if strings.Contains(rec.all(), machineID(t)) {
		t.Fatal("/etc/machine-id was sent as it is")
	}
	// Reinstalled from scratch (configuration removed), the machine is taken back.
	if err := os.RemoveAll(conf); err != nil {
		t.Fatal(err)
	}
	reinstall := enroltest.RunInstallerIn(t, run.Root, script, secret)
	raw, _ = os.ReadFile(filepath.Join(conf, "agent.json"))
	var cfg2 struct {
		MachineID string `json:"machine_id"`
	}
	if err := json.Unmarshal(raw, &cfg2); reinstall.ExitCode != 0 || err != nil || cfg2.MachineID != cfg.MachineID {
		t.Fatalf("reinstall: %d, machine %q (was %s)\n%s", reinstall.ExitCode, cfg2.MachineID, cfg.MachineID, reinstall.Output)
	}
	if n := e.count(`SELECT count(*) FROM machines WHERE client_id = $1`, e.clientID); n != 1 {
		t.Fatalf("%d machines after a reinstall", n)
	}
}

// machineID is this system's /etc/machine-id, which must never be sent as it is.
func machineID(t *testing.T) string {
	t.Helper()
	b, _ := os.ReadFile("/etc/machine-id")
	return strings.TrimSpace(string(b))
}

func TestInstallerFailsCleanly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok, secret := e.token(0, 0)
	_, script := installerStack(t, e, false)
	nothingWritten := func(name string, run enroltest.Run) {
		t.Helper()
		if run.ExitCode == 0 {
			t.Errorf("%s: exit 0\n%s", name, run.Output)
		}
		if _, err := os.Stat(filepath.Join(run.Root, "etc/optralis")); err == nil {
			t.Errorf("%s: /etc/optralis was written", name)
		}
	}

	other := []byte(secret)
	if other[5] == 'A' {
		other[5] = 'B'
	} else {
		other[5] = 'A'
	}
	run := enroltest.RunInstaller(t, script, string(other))
	nothingWritten("unknown token", run)
	if !strings.Contains(run.Output, "enrolment refused (HTTP 401): invalid or expired install token") {
		t.Errorf("unknown token output:\n%s", run.Output)
	}
	for name, arg := range map[string]string{"no token": "", "short token": "abc", "shell characters": strings.Repeat("a", 40) + "$(x)"} {
		run := enroltest.RunInstaller(t, script, arg)
		nothingWritten(name, run)
		if !strings.Contains(run.Output, "optralis: error:") {
			t.Errorf("%s output:\n%s", name, run.Output)
		}
	}
	// A download whose checksum does not match stops before enrolment.
	_, badScript := installerStack(t, e, true)
	run = enroltest.RunInstaller(t, badScript, secret)
	nothingWritten("bad checksum", run)
	if !strings.Contains(run.Output, "does not match its SHA-256") {
		t.Errorf("bad checksum output:\n%s", run.Output)
	}
	if n := e.count(`SELECT usage_count FROM install_tokens WHERE id = $1`, tok.ID); n != 0 {
		t.Fatalf("failed installs used the token %d times", n)
	}
}
