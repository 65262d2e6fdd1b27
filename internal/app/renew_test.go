package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/identity"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

func newCSR(t *testing.T) (string, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), key
}

type renewAnswer struct {
	Certificate string    `json:"certificate"`
	CAChain     string    `json:"ca_chain"`
	Serial      string    `json:"serial"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func (a renewAnswer) cert(t *testing.T) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(a.Certificate))
	if b == nil {
		t.Fatalf("certificate is not PEM: %q", a.Certificate)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Issue 12's done-when, through the real handlers and guards: an agent whose certificate
// expires in 20 days is told to renew by its heartbeat, renews with a new key, keeps
// heartbeating with the new certificate, and its old serial is refused. A retried renewal
// (answer lost) gets the same certificate within the grace window, and nothing else does.
func TestAgentRenewsItsCertificate(t *testing.T) {
	t.Parallel()
	s := newEnrolStack(t)
	ctx := context.Background()
	client := testenv.Client(t, s.d.Pool, "Pro")
	machine := testenv.Machine(t, s.d.Pool, client, "renew-node")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	old, err := certs.Issue(ctx, s.d.Pool, s.d.CA, certs.IssueRequest{ClientID: client, MachineID: machine, PublicKey: &key.PublicKey}, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	// 20 days before expiry.
	s.clock.Advance(old.ExpiresAt.Sub(s.clock.Now()) - 20*24*time.Hour)

	agent := contract(t, s.d.AgentHandler())
	do := func(method, path string, cert *x509.Certificate, body string) (int, string) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		if cert != nil {
			r = r.WithContext(identity.WithClientCert(r.Context(), cert))
		}
		w := httptest.NewRecorder()
		agent.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	heartbeat := func(cert *x509.Certificate) (int, map[string]any) {
		s.clock.Advance(time.Second)
		code, raw := do("POST", "/agent/heartbeat", cert,
			fmt.Sprintf(`{"recorded_at":%q,"metrics":{"cpu_percent":10,"ram_percent":20}}`, s.clock.Now().Format(time.RFC3339Nano)))
		var m map[string]any
		_ = json.Unmarshal([]byte(raw), &m)
		return code, m
	}
	renew := func(cert *x509.Certificate, csr string) (int, renewAnswer, string) {
		b, _ := json.Marshal(map[string]string{"csr": csr})
		code, raw := do("POST", "/agent/certificate/renew", cert, string(b))
		var a renewAnswer
		if code == 200 {
			if err := json.Unmarshal([]byte(raw), &a); err != nil {
				t.Fatalf("renew answer: %v %s", err, raw)
			}
		}
		return code, a, raw
	}

	if code, ans := heartbeat(old.Cert); code != 200 || ans["renew_certificate"] != true {
		t.Fatalf("heartbeat 20 days before expiry: %d %v, want renew_certificate true", code, ans)
	}
	// Bad input: 400 naming the field; no certificate: 401.
	for _, bad := range []string{"", "not a csr", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"} {
		if code, _, raw := renew(old.Cert, bad); code != 400 || !strings.Contains(raw, `"csr"`) {
			t.Errorf("csr %q: %d %s", bad, code, raw)
		}
	}
	if code, raw := do("POST", "/agent/certificate/renew", old.Cert, `{"csr":1}`); code != 400 {
		t.Errorf("csr of the wrong type: %d %s", code, raw)
	}
	csr, newKey := newCSR(t)
	if code, _, _ := renew(nil, csr); code != 401 {
		t.Errorf("renew without a certificate: %d", code)
	}

	code, fresh, raw := renew(old.Cert, csr)
	if code != 200 || fresh.Serial == "" || fresh.Serial == old.Serial || !strings.Contains(fresh.CAChain, "BEGIN CERTIFICATE") {
		t.Fatalf("renew: %d %s", code, raw)
	}
	nc := fresh.cert(t)
	if !nc.PublicKey.(*ecdsa.PublicKey).Equal(&newKey.PublicKey) || nc.Subject.CommonName != certs.CommonName(client, machine) {
		t.Fatalf("new certificate: key or CN wrong (%s)", nc.Subject.CommonName)
	}
	if _, err := nc.Verify(x509.VerifyOptions{Roots: s.d.CA.Pool(), CurrentTime: s.clock.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("new certificate does not verify: %v", err)
	}
	if want := s.clock.Now().AddDate(1, 0, 0); fresh.ExpiresAt.Sub(want).Abs() > time.Second {
		t.Errorf("expires_at %v, want a year from now (%v)", fresh.ExpiresAt, want)
	}

	// The new certificate heartbeats, with nothing to renew; the old one is refused.
	if code, ans := heartbeat(nc); code != 200 || ans["renew_certificate"] != false {
		t.Fatalf("heartbeat with the new certificate: %d %v", code, ans)
	}
	if code, ans := heartbeat(old.Cert); code != 401 {
		t.Fatalf("heartbeat with the old certificate: %d %v, want 401", code, ans)
	}
	if code, raw := do("GET", "/agent/config/collectors", old.Cert, ""); code != 401 {
		t.Fatalf("collectors with the old certificate: %d %s", code, raw)
	}

	// The answer was lost: the same request again gets the same certificate, signing nothing.
	s.clock.Advance(time.Minute)
	if code, again, raw := renew(old.Cert, csr); code != 200 || again.Serial != fresh.Serial || again.Certificate != fresh.Certificate {
		t.Fatalf("retried renewal: %d %s, want the same certificate %s", code, raw, fresh.Serial)
	}
	// ...but not for another key,
	other, _ := newCSR(t)
	if code, _, raw := renew(old.Cert, other); code != 401 {
		t.Fatalf("old certificate with another key: %d %s", code, raw)
	}
	// and the new certificate cannot be renewed again at once (429 with Retry-After).
	if code, _, raw := renew(nc, other); code != 429 {
		t.Fatalf("renewing a certificate issued a minute ago: %d %s", code, raw)
	}
	// After the grace window the old certificate gets nothing.
	s.clock.Advance(certs.RenewalGrace)
	if code, _, raw := renew(old.Cert, csr); code != 401 {
		t.Fatalf("retry after the grace window: %d %s", code, raw)
	}

	// Exactly one active certificate, the new one; the dashboard sees it valid; the renewal
	// is audited.
	var active int
	var pemStored string
	if err := s.d.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE revoked_at IS NULL), max(certificate_pem) FILTER (WHERE revoked_at IS NULL)
		FROM client_certificates WHERE machine_id = $1`, machine).Scan(&active, &pemStored); err != nil || active != 1 || pemStored != fresh.Certificate {
		t.Fatalf("active certificates: %d %v", active, err)
	}
	_, userTok := s.bearer(principal.RoleUser, client)
	if code, body := call(s.d.PublicHandler(), "GET", "/api/machines/"+machine+"/certificate", userTok, ""); code != 200 ||
		!strings.Contains(body, `"status":"valid"`) || !strings.Contains(body, fresh.Serial) {
		t.Fatalf("dashboard view: %d %s", code, body)
	}
	var renewed int
	if err := s.d.Pool.QueryRow(ctx, `SELECT count(*) FROM activity_logs WHERE machine_id = $1 AND action = 'certificate_renewed'
		AND details->>'reason' = 'renewal'`, machine).Scan(&renewed); err != nil || renewed != 1 {
		t.Fatalf("certificate_renewed entries: %d %v", renewed, err)
	}
}

// Renewal refuses what the guard refuses: a revoked certificate (even with its own key), a
// certificate of a disabled client, and answers 503 without a CA.
func TestRenewalRefusals(t *testing.T) {
	t.Parallel()
	s := newEnrolStack(t)
	ctx := context.Background()
	client := testenv.Client(t, s.d.Pool, "Pro")
	machine := testenv.Machine(t, s.d.Pool, client, "revoked-node")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issued, err := certs.Issue(ctx, s.d.Pool, s.d.CA, certs.IssueRequest{ClientID: client, MachineID: machine, PublicKey: &key.PublicKey}, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(2 * time.Hour)
	csr, _ := newCSR(t)
	body, _ := json.Marshal(map[string]string{"csr": csr})
	renew := func(cert *x509.Certificate) (int, string) {
		r := httptest.NewRequest("POST", "/agent/certificate/renew", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		r = r.WithContext(identity.WithClientCert(r.Context(), cert))
		w := httptest.NewRecorder()
		s.d.AgentHandler().ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	// Without a CA: 503.
	authority := s.d.CA
	s.d.CA = nil
	if code, raw := renew(issued.Cert); code != 503 {
		t.Errorf("without a CA: %d %s", code, raw)
	}
	s.d.CA = authority
	// A disabled client: 403.
	if _, err := s.d.Pool.Exec(ctx, `UPDATE clients SET is_active = false WHERE id = $1`, client); err != nil {
		t.Fatal(err)
	}
	if code, raw := renew(issued.Cert); code != 403 {
		t.Errorf("disabled client: %d %s", code, raw)
	}
	if _, err := s.d.Pool.Exec(ctx, `UPDATE clients SET is_active = true WHERE id = $1`, client); err != nil {
		t.Fatal(err)
	}
	// Revoked from the dashboard: 401, and no certificate is issued.
	if _, _, err := certs.Revoke(ctx, s.d.Pool, certs.RevokeRequest{ClientID: client, MachineID: machine, Reason: "stolen"}, s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if code, raw := renew(issued.Cert); code != 401 {
		t.Errorf("revoked certificate: %d %s", code, raw)
	}
	var n int
	if err := s.d.Pool.QueryRow(ctx, `SELECT count(*) FROM client_certificates WHERE machine_id = $1`, machine).Scan(&n); err != nil || n != 1 {
		t.Errorf("certificates after refusals: %d %v", n, err)
	}
}

// Concurrent renewals of one machine with the same key (an agent retrying before the first
// answer) all get the one certificate; with different keys, one wins and the rest are
// refused. Either way the machine keeps exactly one active certificate.
func TestConcurrentRenewals(t *testing.T) {
	t.Parallel()
	for _, sameKey := range []bool{true, false} {
		s := newEnrolStack(t)
		ctx := context.Background()
		client := testenv.Client(t, s.d.Pool, "Pro")
		machine := testenv.Machine(t, s.d.Pool, client, "race")
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		old, err := certs.Issue(ctx, s.d.Pool, s.d.CA, certs.IssueRequest{ClientID: client, MachineID: machine, PublicKey: &key.PublicKey}, s.clock.Now().AddDate(0, -11, 0))
		if err != nil {
			t.Fatal(err)
		}
		a := certs.Agent{ClientID: client, MachineID: machine, Serial: old.Serial}
		next, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		const n = 6
		serials := make([]string, n)
		errs := make([]error, n)
		done := make(chan int)
		for i := 0; i < n; i++ {
			go func() {
				k := next
				if !sameKey {
					k, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				}
				r, err := certs.Renew(ctx, s.d.Pool, s.d.CA, a, &k.PublicKey, "192.0.2.1", s.clock.Now())
				serials[i], errs[i] = r.Serial, err
				done <- i
			}()
		}
		for i := 0; i < n; i++ {
			<-done
		}
		won := map[string]bool{}
		refused := 0
		for i := range serials {
			switch {
			case errs[i] == nil:
				won[serials[i]] = true
			case errors.Is(errs[i], certs.ErrRefused):
				refused++
			default:
				t.Fatalf("same key %v: %v", sameKey, errs[i])
			}
		}
		if len(won) != 1 || (sameKey && refused != 0) || (!sameKey && refused != n-1) {
			t.Fatalf("same key %v: certificates %v, %d refused", sameKey, won, refused)
		}
		var active int
		if err := s.d.Pool.QueryRow(ctx, `SELECT count(*) FROM client_certificates WHERE machine_id = $1 AND revoked_at IS NULL`, machine).Scan(&active); err != nil || active != 1 {
			t.Fatalf("active certificates: %d %v", active, err)
		}
	}
}
