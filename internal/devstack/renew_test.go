package devstack_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/testenv"
)

// Issue 12's done-when on the local stack, over real mutual TLS: an agent whose certificate
// expires in 20 days is told to renew by its heartbeat, renews on the agent port with a new
// key, keeps heartbeating with the new certificate, and the old one is refused.
func TestCertificateRenewalOverMutualTLS(t *testing.T) {
	r := start(t, t.TempDir(), map[string]string{
		"DATABASE_URL": testenv.EmptyDatabase(t),
		"JWT_SECRET":   strings.Repeat("k", 40),
	})
	ctx := context.Background()
	pool, authority := r.stack.Core.Pool, r.stack.CA
	client := testenv.Client(t, pool, "Pro")
	machine := testenv.Machine(t, pool, client, "renew-e2e")
	oldKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issuedAt := time.Now().Add(20*24*time.Hour).AddDate(-1, 0, 0) // expires in 20 days
	old, err := certs.Issue(ctx, pool, authority, certs.IssueRequest{ClientID: client, MachineID: machine, PublicKey: &oldKey.PublicKey}, issuedAt)
	if err != nil {
		t.Fatal(err)
	}
	oldAgent := agentClient(authority, &tls.Certificate{Certificate: [][]byte{old.Cert.Raw}, PrivateKey: oldKey, Leaf: old.Cert})
	beat := func(c *http.Client) (int, bool) {
		t.Helper()
		var ans struct {
			RenewCertificate bool `json:"renew_certificate"`
		}
		body := fmt.Sprintf(`{"recorded_at":%q,"metrics":{"cpu_percent":10,"ram_percent":20}}`, time.Now().UTC().Format(time.RFC3339Nano))
		code := send(t, c, "POST", r.stack.AgentURL+"/agent/heartbeat", "", body, &ans)
		return code, ans.RenewCertificate
	}
	if code, renew := beat(oldAgent); code != 200 || !renew {
		t.Fatalf("heartbeat 20 days before expiry: %d renew_certificate=%v", code, renew)
	}

	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, newKey)
	req, _ := json.Marshal(map[string]string{"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	var renewed struct {
		Certificate string    `json:"certificate"`
		CAChain     string    `json:"ca_chain"`
		Serial      string    `json:"serial"`
		ExpiresAt   time.Time `json:"expires_at"`
	}
	if code := send(t, oldAgent, "POST", r.stack.AgentURL+"/agent/certificate/renew", "", string(req), &renewed); code != 200 {
		t.Fatalf("renew: %d", code)
	}
	if renewed.Serial == old.Serial || time.Until(renewed.ExpiresAt) < 364*24*time.Hour {
		t.Fatalf("renewed: %+v", renewed)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(newKey)
	pair, err := tls.X509KeyPair([]byte(renewed.Certificate), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	if err != nil {
		t.Fatal(err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM([]byte(renewed.CAChain)) {
		t.Fatal("ca_chain is not PEM")
	}
	newAgent := agentClient(authority, &pair)
	if code, renew := beat(newAgent); code != 200 || renew {
		t.Fatalf("heartbeat with the renewed certificate: %d renew_certificate=%v", code, renew)
	}
	if code, _ := beat(oldAgent); code != 401 {
		t.Fatalf("heartbeat with the old certificate: %d, want 401", code)
	}
}
