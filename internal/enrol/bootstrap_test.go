package enrol_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/enrol"
	"github.com/optralis/optralis/internal/fleetcache"
	"github.com/optralis/optralis/internal/testenv"
	"github.com/optralis/optralis/internal/tokenhash"
)

type bootstrapAnswer struct {
	enrol.Result
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

func (e *env) bootstrap(body string) (answer, bootstrapAnswer) {
	e.t.Helper()
	a := e.do("POST", "/api/public/bootstrap", body, nil)
	var b bootstrapAnswer
	a.decode(e.t, &b)
	return a, b
}

func TestBootstrapEnrolsAMachine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok, secret := e.token(0, 0)
	key := newKey(t)
	page, _ := fleetcache.GetPage(context.Background(), e.cache, e.clientID, "all", new([]string))
	page.Put(context.Background(), []string{"before"})
	a, res := e.bootstrap(bootstrapBody(t, secret, csrFor(t, key, nil), nil))
	if a.Code != 201 {
		t.Fatalf("bootstrap: %d %s", a.Code, a.Body)
	}
	if a.Header.Get("Cache-Control") != "no-store" {
		t.Error("bootstrap answer may be cached")
	}
	// The certificate: ours, for this machine, for the agent's own key.
	block, _ := pem.Decode([]byte(res.Certificate))
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != e.clientID+":"+res.MachineID || res.ClientID != e.clientID {
		t.Fatalf("CN %q, client %q", cert.Subject.CommonName, res.ClientID)
	}
	if !cert.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Fatal("certificate is not for the agent's key")
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(res.CAChain)) {
		t.Fatal("ca_chain is not PEM")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
	// The key pairs with the certificate for TLS, as the agent will use it.
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	if _, err := tls.X509KeyPair([]byte(res.Certificate), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})); err != nil {
		t.Fatal(err)
	}
	if res.AgentEndpoint != "https://agents.example.test" || res.Heartbeat != enrol.DefaultHeartbeat() || res.PrivateKey != "" ||
		!res.ExpiresAt.Equal(t0.AddDate(1, 0, 0)) || res.Serial != ca.SerialHex(cert.SerialNumber) {
		t.Fatalf("answer: %+v", res.Result)
	}
	// The records.
	if n := e.count(`SELECT count(*) FROM machines WHERE id = $1 AND client_id = $2 AND hostname = 'web-01.example.com' AND os = 'linux'
		AND arch = 'amd64' AND os_version = 'Debian GNU/Linux 12 (bookworm)' AND ip_address = '192.0.2.1' AND cert_serial = $3`, res.MachineID, e.clientID, res.Serial); n != 1 {
		t.Fatal("machine row")
	}
	if n := e.count(`SELECT count(*) FROM client_certificates WHERE machine_id = $1 AND serial = $2 AND revoked_at IS NULL AND created_by = $3`, res.MachineID, res.Serial, e.user.UserID); n != 1 {
		t.Fatal("certificate row")
	}
	if n := e.count(`SELECT usage_count FROM install_tokens WHERE id = $1`, tok.ID); n != 1 {
		t.Fatalf("usage_count %d", n)
	}
	for _, action := range []string{"machine_enrolled", "certificate_issued"} {
		if n := e.count(`SELECT count(*) FROM activity_logs WHERE machine_id = $1 AND action = $2 AND user_id = $3`, res.MachineID, action, e.user.UserID); n != 1 {
			t.Errorf("no %s entry", action)
		}
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE details::text LIKE '%' || $1 || '%' OR details::text LIKE '%' || $2 || '%'`, secret, tokenhash.Sum(secret)); n != 0 {
		t.Fatal("the token or its hash reached the activity log")
	}
	// The client's machine caches were invalidated after the commit: a list page cached
	// before is not served, and the count is read from the database again.
	if _, cached := fleetcache.GetPage(context.Background(), e.cache, e.clientID, "all", new([]string)); cached {
		t.Fatal("a machine list cached before the enrolment is still served")
	}
	if n, err := e.redis.Exists(context.Background(), e.countKey(e.clientID)).Result(); err != nil || n != 0 {
		t.Fatalf("count still cached: %d %v", n, err)
	}
	// The agent's certificate is accepted by the agent check.
	if c, m, err := certs.CheckPresented(context.Background(), e.pool, cert, t0); err != nil || c != e.clientID || m != res.MachineID {
		t.Fatalf("CheckPresented: %v", err)
	}
}

// Every kind of bad token gets the very same 401 body, and changes nothing.
func TestBootstrapBadTokensAreIndistinguishable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	csr := csrFor(t, newKey(t), nil)
	_, expired := e.token(time.Minute, 0)
	revokedTok, revoked := e.token(0, 0)
	if err := enrol.RevokeToken(context.Background(), e.pool, e.clientID, revokedTok.ID, e.user.UserID, "", t0); err != nil {
		t.Fatal(err)
	}
	_, exhausted := e.token(0, 1)
	if a, _ := e.bootstrap(bootstrapBody(t, exhausted, csr, nil)); a.Code != 201 {
		t.Fatalf("first use: %d %s", a.Code, a.Body)
	}
	e.clock.Advance(2 * time.Minute)
	_, valid := e.token(0, 0)
	other := []byte(valid)
	other[10] ^= 1 // a well-formed token that was never issued
	if other[10] == '_' || other[10] == '-' {
		other[10] = 'A'
	}

	cases := map[string]string{
		"unknown":        string(other),
		"expired":        expired,
		"revoked":        revoked,
		"used up":        exhausted,
		"too short":      valid[:43],
		"too long":       valid + "A",
		"not base64url":  strings.Replace(valid, valid[:2], "+/", 1),
		"padding inside": "=" + valid[1:],
		"empty":          "",
		"hash instead":   tokenhash.Sum(valid),
	}
	var first string
	for name, tok := range cases {
		a, b := e.bootstrap(bootstrapBody(t, tok, csr, nil))
		if a.Code != 401 || b.Error.Code != "unauthenticated" {
			t.Errorf("%s: %d %s", name, a.Code, a.Body)
			continue
		}
		if first == "" {
			first = a.errorBody()
		} else if a.errorBody() != first {
			t.Errorf("%s: body %s differs from %s", name, a.errorBody(), first)
		}
	}
	if n := e.count(`SELECT count(*) FROM machines WHERE client_id = $1`, e.clientID); n != 1 {
		t.Fatalf("%d machines, want only the first use's", n)
	}
	if n := e.count(`SELECT coalesce(sum(usage_count), 0) FROM install_tokens WHERE client_id = $1`, e.clientID); n != 1 {
		t.Fatalf("usage counted %d times", n)
	}
	// The valid token still works after all that.
	if a, _ := e.bootstrap(bootstrapBody(t, valid, csr, nil)); a.Code != 201 {
		t.Fatalf("valid token: %d %s", a.Code, a.Body)
	}
}

// 20 bootstraps race on a token with max_usage=5: exactly 5 machines, 15 refusals, none
// of them a server error.
func TestBootstrapConcurrentUsesOfALimitedToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok, secret := e.token(0, 5)
	const n = 20
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = bootstrapBody(t, secret, csrFor(t, newKey(t), nil), func(m map[string]any) { m["hostname"] = "host-" + string(rune('a'+i)) })
	}
	codes := make(chan int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes <- e.do("POST", "/api/public/bootstrap", bodies[i], nil).Code
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[201] != 5 || got[401] != 15 {
		t.Fatalf("answers %v, want 5×201 and 15×401", got)
	}
	if m := e.count(`SELECT count(*) FROM machines WHERE client_id = $1`, e.clientID); m != 5 {
		t.Fatalf("%d machines, want 5", m)
	}
	if u := e.count(`SELECT usage_count FROM install_tokens WHERE id = $1`, tok.ID); u != 5 {
		t.Fatalf("usage_count %d, want 5", u)
	}
	if c := e.count(`SELECT count(*) FROM client_certificates WHERE client_id = $1 AND revoked_at IS NULL`, e.clientID); c != 5 {
		t.Fatalf("%d active certificates, want 5", c)
	}
}

func TestBootstrapLicenceAndRequirements(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok, secret := e.token(0, 0)
	csr := csrFor(t, newKey(t), nil)
	refuse := func(name string, wantCode int, wantMsg string, body string) {
		t.Helper()
		before := e.count(`SELECT usage_count FROM install_tokens WHERE id = $1`, tok.ID)
		a, b := e.bootstrap(body)
		if a.Code != wantCode || !strings.Contains(b.Error.Message, wantMsg) {
			t.Errorf("%s: %d %s, want %d with %q", name, a.Code, a.Body, wantCode, wantMsg)
		}
		if after := e.count(`SELECT usage_count FROM install_tokens WHERE id = $1`, tok.ID); after != before {
			t.Errorf("%s: the refused bootstrap used the token", name)
		}
	}
	body := bootstrapBody(t, secret, csr, nil)

	e.exec(`UPDATE clients SET is_active = FALSE WHERE id = $1`, e.clientID)
	refuse("disabled client", 403, "client account is disabled", body)
	e.exec(`UPDATE clients SET is_active = TRUE, license_expires_at = $2 WHERE id = $1`, e.clientID, t0.Add(-time.Hour))
	refuse("expired licence", 402, "the licence expired on 2026-04-07", body)
	e.exec(`UPDATE clients SET license_expires_at = $2, max_machines = 2 WHERE id = $1`, e.clientID, t0.AddDate(0, 1, 0))
	testenv.Machine(t, e.pool, e.clientID, "existing-1")
	testenv.Machine(t, e.pool, e.clientID, "existing-2")
	refuse("machine limit", 402, "machine limit reached: 2 of 2", body)
	e.exec(`UPDATE clients SET max_machines = 3 WHERE id = $1`, e.clientID)

	e.exec(`UPDATE agent_requirements SET linux_enabled = FALSE, unsupported_os_message = 'Linux agents arrive in Q3.'`)
	refuse("linux disabled", 403, "Linux agents arrive in Q3.", body)
	e.exec(`UPDATE agent_requirements SET linux_enabled = TRUE, unsupported_os_message = '', windows_server_min_build = 20348`)
	win := func(typ string, build int) string {
		return bootstrapBody(t, secret, csr, func(m map[string]any) {
			m["os"], m["windows_type"], m["os_build"], m["hostname"] = "windows", typ, build, "WIN-SRV01"
		})
	}
	refuse("server build too old", 403, "not supported", win("server", 17763))

	if a, b := e.bootstrap(win("server", 20348)); a.Code != 201 {
		t.Fatalf("windows server 2022: %d %s", a.Code, a.Body)
	} else if n := e.count(`SELECT count(*) FROM machines WHERE id = $1 AND os = 'windows' AND os_build = 20348`, b.MachineID); n != 1 {
		t.Fatal("windows machine row")
	}
	// The limit is now reached again (3 of 3), as the cached count knows.
	refuse("limit after enrolment", 402, "3 of 3", body)
}

// Without Redis the count comes from the database; a cached count is what the licence
// check reads while it lives.
func TestBootstrapMachineCountCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, secret := e.token(0, 0)
	e.exec(`UPDATE clients SET max_machines = 2 WHERE id = $1`, e.clientID)

	down := e.d
	down.Cache.Redis = redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	e.d = down
	e.rebuild()
	for i := 0; i < 2; i++ {
		if a, _ := e.bootstrap(bootstrapBody(t, secret, csrFor(t, newKey(t), nil), nil)); a.Code != 201 {
			t.Fatalf("bootstrap %d without Redis: %d %s", i, a.Code, a.Body)
		}
	}
	if a, _ := e.bootstrap(bootstrapBody(t, secret, csrFor(t, newKey(t), nil), nil)); a.Code != 402 {
		t.Fatalf("limit without Redis: %d %s", a.Code, a.Body)
	}

	// With Redis: a cached count of 2 (another instance's view) refuses at once...
	e.d.Cache = e.cache
	e.rebuild()
	e.exec(`UPDATE clients SET max_machines = 5 WHERE id = $1`, e.clientID)
	ctx := context.Background()
	e.redis.Set(ctx, e.countKey(e.clientID), 5, time.Minute)
	if a, _ := e.bootstrap(bootstrapBody(t, secret, csrFor(t, newKey(t), nil), nil)); a.Code != 402 {
		t.Fatalf("cached count at the limit: %d %s", a.Code, a.Body)
	}
	// ...and once invalidated the database count (2) is read and cached again.
	fleetcache.Invalidate(ctx, e.cache, e.clientID)
	if a, _ := e.bootstrap(bootstrapBody(t, secret, csrFor(t, newKey(t), nil), nil)); a.Code != 201 {
		t.Fatalf("after invalidation: %d %s", a.Code, a.Body)
	}
	// The enrolment invalidated the count after its commit; the next read counts 3 and
	// caches it for the spec's minute.
	if n, err := (enrol.MachineCount{Cache: e.cache}).Get(ctx, e.pool, e.clientID); err != nil || n != 3 {
		t.Fatalf("count %d, want 3: %v", n, err)
	}
	v, _ := e.redis.Get(ctx, e.countKey(e.clientID)).Int()
	if ttl := e.redis.TTL(ctx, e.countKey(e.clientID)).Val(); v != 3 || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("cached count %d, ttl %v", v, ttl)
	}
}

// Bad input is refused with 400 (or 413) naming the field, before the token is looked at.
func TestBootstrapBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok, secret := e.token(0, 0)
	key := newKey(t)
	good := csrFor(t, key, nil)
	block, _ := pem.Decode([]byte(good))
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-3] ^= 0x55
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)

	cases := []struct {
		name, field string
		mod         func(m map[string]any)
	}{
		{"malformed PEM", "csr", func(m map[string]any) {
			m["csr"] = "-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n"
		}},
		{"not PEM", "csr", func(m map[string]any) { m["csr"] = "hello" }},
		{"certificate instead of CSR", "csr", func(m map[string]any) {
			m["csr"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}))
		}},
		{"CSR signature invalid", "csr", func(m map[string]any) {
			m["csr"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}))
		}},
		{"RSA 1024", "csr", func(m map[string]any) { m["csr"] = csrFor(t, rsa1024, nil) }},
		{"Ed25519", "csr", func(m map[string]any) { m["csr"] = csrFor(t, ed, nil) }},
		{"P-521", "csr", func(m map[string]any) { m["csr"] = csrFor(t, p521, nil) }},
		{"no CSR", "csr", func(m map[string]any) { delete(m, "csr") }},
		{"unknown arch", "arch", func(m map[string]any) { m["arch"] = "sparc64" }},
		{"arch alias", "arch", func(m map[string]any) { m["arch"] = "x86_64" }},
		{"hostname with underscore", "hostname", func(m map[string]any) { m["hostname"] = "web_01" }},
		{"hostname with space", "hostname", func(m map[string]any) { m["hostname"] = "web 01" }},
		{"hostname label too long", "hostname", func(m map[string]any) { m["hostname"] = strings.Repeat("a", 64) + ".example.com" }},
		{"hostname leading hyphen", "hostname", func(m map[string]any) { m["hostname"] = "-web" }},
		{"hostname injection", "hostname", func(m map[string]any) { m["hostname"] = "web01\"; rm -rf /" }},
		{"empty hostname", "hostname", func(m map[string]any) { m["hostname"] = "" }},
		{"unknown os", "os", func(m map[string]any) { m["os"] = "macos" }},
		{"windows without build", "os_build", func(m map[string]any) { m["os"], m["windows_type"] = "windows", "client" }},
		{"windows without type", "windows_type", func(m map[string]any) { m["os"], m["os_build"] = "windows", 26100 }},
		{"build on linux", "os", func(m map[string]any) { m["os_build"] = 5 }},
		{"os_version too long", "os_version", func(m map[string]any) { m["os_version"] = strings.Repeat("x", 256) }},
		{"os_version control char", "os_version", func(m map[string]any) { m["os_version"] = "Linux\x1b[31m" }},
		{"fingerprint too short", "machine_fingerprint", func(m map[string]any) { m["machine_fingerprint"] = strings.Repeat("a", 15) }},
		{"fingerprint too long", "machine_fingerprint", func(m map[string]any) { m["machine_fingerprint"] = strings.Repeat("a", 257) }},
		{"fingerprint with space", "machine_fingerprint", func(m map[string]any) { m["machine_fingerprint"] = "0123456789 abcdef" }},
		{"fingerprint not ASCII", "machine_fingerprint", func(m map[string]any) { m["machine_fingerprint"] = "0123456789abcdeé" }},
		{"fingerprint not a string", "", func(m map[string]any) { m["machine_fingerprint"] = 1234567890123456 }},
	}
	for _, tc := range cases {
		a, b := e.bootstrap(bootstrapBody(t, secret, good, tc.mod))
		if a.Code != 400 || (tc.field != "" && b.Error.Fields[tc.field] == "") {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.name, a.Code, a.Body, tc.field)
		}
	}
	for name, body := range map[string]string{
		"unknown field": `{"token":"` + secret + `","arch":"amd64","hostname":"h","os":"linux","csr":"","admin":true}`,
		"not JSON":      `token=` + secret,
		"two values":    `{} {}`,
		"empty":         ``,
	} {
		if a := e.do("POST", "/api/public/bootstrap", body, nil); a.Code != 400 {
			t.Errorf("%s: %d %s", name, a.Code, a.Body)
		}
	}
	huge := bootstrapBody(t, secret, good, func(m map[string]any) { m["os_version"] = strings.Repeat("x", enrol.MaxBootstrapBody) })
	if a := e.do("POST", "/api/public/bootstrap", huge, nil); a.Code != 413 {
		t.Errorf("oversized body: %d %s", a.Code, a.Body)
	}
	if n := e.count(`SELECT usage_count FROM install_tokens WHERE id = $1`, tok.ID); n != 0 {
		t.Fatalf("bad requests used the token %d times", n)
	}
	if n := e.count(`SELECT count(*) FROM machines`); n != 0 {
		t.Fatalf("%d machines created", n)
	}
}

// A CSR asking for another identity, SANs, CA rights and server auth gets none of them:
// the certificate is the server's, for the new machine.
func TestBootstrapIgnoresRequestedIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, secret := e.token(0, 0)
	victim := testenv.Machine(t, e.pool, testenv.Client(t, e.pool, "Pro"), "victim")
	csr := csrFor(t, newKey(t), &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: e.clientID + ":" + victim, Organization: []string{"Optralis"}},
		DNSNames:       []string{"agents.optralis.com"},
		EmailAddresses: []string{"admin@optralis.com"},
		IPAddresses:    []net.IP{net.ParseIP("127.0.0.1")},
	})
	a, res := e.bootstrap(bootstrapBody(t, secret, csr, nil))
	if a.Code != 201 {
		t.Fatalf("%d %s", a.Code, a.Body)
	}
	block, _ := pem.Decode([]byte(res.Certificate))
	cert, _ := x509.ParseCertificate(block.Bytes)
	if cert.Subject.CommonName != e.clientID+":"+res.MachineID || res.MachineID == victim {
		t.Fatalf("CN %q", cert.Subject.CommonName)
	}
	if len(cert.DNSNames)+len(cert.EmailAddresses)+len(cert.IPAddresses)+len(cert.URIs) != 0 || cert.IsCA ||
		len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("requested fields leaked into the certificate: %+v", cert)
	}
}

// Older installers without openssl: with ALLOW_SERVER_GENERATED_KEYS the server makes the
// key and returns it once; without it, a CSR is required.
func TestBootstrapServerGeneratedKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, secret := e.token(0, 0)
	noCSR := bootstrapBody(t, secret, "", func(m map[string]any) { delete(m, "csr") })
	if a, b := e.bootstrap(noCSR); a.Code != 400 || b.Error.Fields["csr"] == "" {
		t.Fatalf("without CSR, not allowed: %d %s", a.Code, a.Body)
	}
	e.d.AllowServerKeys = true
	e.rebuild()
	a, res := e.bootstrap(noCSR)
	if a.Code != 201 || res.PrivateKey == "" {
		t.Fatalf("without CSR, allowed: %d %s", a.Code, a.Body)
	}
	if _, err := tls.X509KeyPair([]byte(res.Certificate), []byte(res.PrivateKey)); err != nil {
		t.Fatalf("returned key does not match the certificate: %v", err)
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE action = 'machine_enrolled' AND details->>'server_generated_key' = 'true'`); n != 1 {
		t.Fatal("server-made key not recorded in the activity log")
	}
	if n := e.count(`SELECT count(*) FROM activity_logs WHERE details::text LIKE '%PRIVATE KEY%'`); n != 0 {
		t.Fatal("private key in the activity log")
	}
}

func TestBootstrapUnconfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok, secret := e.token(0, 0)
	body := bootstrapBody(t, secret, csrFor(t, newKey(t), nil), nil)
	orig := e.d
	for name, mod := range map[string]func(d *enrol.Deps){
		"no CA":             func(d *enrol.Deps) { d.CA = nil },
		"no agent endpoint": func(d *enrol.Deps) { d.AgentEndpoint = "" },
	} {
		d := e.d
		mod(&d)
		e.d = d
		e.rebuild()
		if a := e.do("POST", "/api/public/bootstrap", body, nil); a.Code != 503 || !strings.Contains(a.Body, "not configured") {
			t.Errorf("%s: %d %s", name, a.Code, a.Body)
		}
		e.d = orig
	}
	if n := e.count(`SELECT usage_count FROM install_tokens WHERE id = $1`, tok.ID); n != 0 {
		t.Fatal("an unconfigured bootstrap used the token")
	}
}
