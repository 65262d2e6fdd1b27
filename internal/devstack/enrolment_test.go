package devstack_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/devstack"
	"github.com/optralis/optralis/internal/enrol/enroltest"
	"github.com/optralis/optralis/internal/testenv"
)

func send(t *testing.T, c *http.Client, method, url, bearer, body string, into any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if into != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, url, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return resp.StatusCode
}

var demoPassword = regexp.MustCompile(`as the demo client's admin demo@optralis\.local, password: (\S+) \(shown once\)`)

// The "done when": on the local stack, a dashboard user signs in and creates an
// install token; one machine enrols with a CSR made here, another by running the real
// installer unprivileged; both complete a TLS handshake with their certificates on the
// agent port and reach a real agent route; one certificate is revoked from the dashboard
// and that machine's very next request is refused, while the other keeps working.
func TestEnrolmentEndToEnd(t *testing.T) {
	dl := enroltest.DownloadServer(t, false)
	r := start(t, t.TempDir(), map[string]string{
		"DATABASE_URL":           testenv.EmptyDatabase(t),
		"REDIS_URL":              testenv.RedisURL(t),
		"JWT_SECRET":             strings.Repeat("k", 40),
		"DEFAULT_ADMIN_PASSWORD": "Initial-Passw0rd!",
		"AGENT_DOWNLOAD_URL":     dl.URL + "/agent",
	})
	api, web := r.stack.APIURL, http.DefaultClient

	// 1. The dashboard user signs in (auth routes) with the password the banner printed.
	m := demoPassword.FindStringSubmatch(r.out.String())
	if m == nil {
		t.Fatalf("banner has no demo account:\n%s", r.out.String())
	}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if code := send(t, web, "POST", api+"/api/auth/login", "", `{"email":"`+devstack.DemoUserEmail+`","password":"`+m[1]+`"}`, &login); code != 200 {
		t.Fatalf("login: %d", code)
	}
	bearer := login.AccessToken

	// 2. An install token, and its ready-to-paste command.
	var tok struct {
		Token          string `json:"token"`
		InstallCommand string `json:"install_command"`
	}
	if code := send(t, web, "POST", api+"/api/install-tokens", bearer, `{"name":"e2e","max_usage":2}`, &tok); code != 201 {
		t.Fatalf("create token: %d", code)
	}
	if tok.InstallCommand != "curl -fsSL '"+api+"/install.sh' | sudo sh -s -- '"+tok.Token+"'" {
		t.Fatalf("install command %q", tok.InstallCommand)
	}

	// 3a. Enrolment with a CSR made here.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	body, _ := json.Marshal(map[string]string{"token": tok.Token, "arch": "amd64", "hostname": "e2e-go", "os": "linux", "os_version": "test", "csr": csr})
	var enrolled struct {
		MachineID     string `json:"machine_id"`
		Certificate   string `json:"certificate"`
		CAChain       string `json:"ca_chain"`
		AgentEndpoint string `json:"agent_endpoint"`
	}
	if code := send(t, web, "POST", api+"/api/public/bootstrap", "", string(body), &enrolled); code != 201 {
		t.Fatalf("bootstrap: %d", code)
	}
	if enrolled.AgentEndpoint != r.stack.AgentURL {
		t.Fatalf("agent endpoint %q, want %q", enrolled.AgentEndpoint, r.stack.AgentURL)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	goPair, err := tls.X509KeyPair([]byte(enrolled.Certificate), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	if err != nil {
		t.Fatal(err)
	}

	// 3b. Enrolment by the real installer, fetched from the stack, run unprivileged.
	script, err := http.Get(api + "/install.sh")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(script.Body)
	script.Body.Close()
	run := enroltest.RunInstaller(t, string(text), tok.Token)
	if run.ExitCode != 0 {
		t.Fatalf("installer (as %s): %d\n%s", run.AsUser, run.ExitCode, run.Output)
	}
	conf := filepath.Join(run.Root, "etc/optralis")
	certPEM, _ := os.ReadFile(filepath.Join(conf, "agent.crt"))
	keyPEM, _ := os.ReadFile(filepath.Join(conf, "agent.key"))
	caPEM, _ := os.ReadFile(filepath.Join(conf, "ca.crt"))
	shPair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("installer's files: %v", err)
	}

	// 4. Both handshake with the agent port (trusting the CA they were given) and reach a
	// real agent route.
	agent := func(pair tls.Certificate, caPEM string) *http.Client {
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM([]byte(caPEM)) {
			t.Fatal("CA PEM")
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
	}
	goAgent, shAgent := agent(goPair, enrolled.CAChain), agent(shPair, string(caPEM))
	collectors := r.stack.AgentURL + "/agent/config/collectors"
	for name, c := range map[string]*http.Client{"CSR agent": goAgent, "installer agent": shAgent} {
		if code := send(t, c, "GET", collectors, "", "", nil); code != 200 {
			t.Fatalf("%s on the agent port: %d", name, code)
		}
	}

	// 5. Revoked from the dashboard: the very next request (same keep-alive connection)
	// is refused; the other machine is unaffected.
	var revoked struct {
		Status string `json:"status"`
	}
	if code := send(t, web, "POST", api+"/api/machines/"+enrolled.MachineID+"/certificate/revoke", bearer, `{"reason":"e2e"}`, &revoked); code != 200 || revoked.Status != "revoked" {
		t.Fatalf("revoke: %d %+v", code, revoked)
	}
	if code := send(t, goAgent, "GET", collectors, "", "", nil); code != 401 {
		t.Fatalf("revoked machine's next request: %d, want 401", code)
	}
	if code := send(t, shAgent, "GET", collectors, "", "", nil); code != 200 {
		t.Fatalf("the other machine after the revocation: %d", code)
	}
	var status struct {
		Status string `json:"status"`
	}
	if code := send(t, web, "GET", api+"/api/machines/"+enrolled.MachineID+"/certificate", bearer, "", &status); code != 200 || status.Status != "revoked" {
		t.Fatalf("certificate status: %d %+v", code, status)
	}
}
