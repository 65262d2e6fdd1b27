package devstack_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/testenv"
	"github.com/optralis/optralis/internal/testenv/smtptest"
)

// obj is a decoded JSON object, read by path ("machines.0.hostname").
type obj map[string]any

func (o obj) get(path string) any {
	var cur any = map[string]any(o)
	for _, k := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			cur = v[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i >= len(v) {
				return nil
			}
			cur = v[i]
		default:
			return nil
		}
	}
	return cur
}

func (o obj) str(path string) string { s, _ := o.get(path).(string); return s }
func (o obj) list(path string) []any { l, _ := o.get(path).([]any); return l }

var inviteLink = regexp.MustCompile(`https://dash\.example\.com/\S*token=([A-Za-z0-9_-]+)`)

// The "done when", on the local stack over real HTTP (and mutual TLS for the
// agent), with a real SMTP server: the platform admin creates a client with a licence and
// invites its admin, who sets a password from the mailed link, signs in, creates an
// install token and enrols a machine; the machine's heartbeats show in the list, its
// details, 24 h history, disks, inventory and events; it is grouped; its collector
// configuration changes and the next heartbeat says so; a published agent version reaches
// the heartbeat answer; the machine is deleted and disappears, and its agent is refused.
func TestReadSideEndToEnd(t *testing.T) {
	smtp := smtptest.Start(t)
	r := start(t, t.TempDir(), map[string]string{
		"DATABASE_URL":           testenv.EmptyDatabase(t),
		"REDIS_URL":              testenv.RedisURL(t),
		"JWT_SECRET":             strings.Repeat("k", 40),
		"DEFAULT_ADMIN_PASSWORD": "Initial-Passw0rd!",
		"CORS_ALLOWED_ORIGINS":   "https://dash.example.com",
		"SMTP_HOST":              smtp.Host,
		"SMTP_PORT":              strconv.Itoa(smtp.Port),
		"SMTP_FROM":              "noreply@optralis.test",
	})
	api, web := r.stack.APIURL, http.DefaultClient
	call := func(method, path, bearer, body string, want int) obj {
		t.Helper()
		var out obj
		var into any = &out
		if want == http.StatusNoContent {
			into = nil
		}
		if code := send(t, web, method, api+path, bearer, body, into); code != want {
			t.Fatalf("%s %s: %d, want %d", method, path, code, want)
		}
		return out
	}
	login := func(email, password string) string {
		t.Helper()
		return call("POST", "/api/auth/login", "", `{"email":"`+email+`","password":"`+password+`"}`, 200).str("access_token")
	}

	// 1. The platform admin's first sign-in: the initial password must be changed.
	root := login("admin@optralis.local", "Initial-Passw0rd!")
	root = call("POST", "/api/auth/password", root, `{"current_password":"Initial-Passw0rd!","new_password":"Platform-Admin-2026!"}`, 200).str("access_token")

	// 2. A customer with a Pro licence, and its first admin, invited by mail.
	expires := time.Now().AddDate(1, 0, 0).UTC().Format(time.RFC3339)
	client := call("POST", "/api/admin/clients", root,
		`{"name":"Acme MSP","license_tier":"Pro","license_expires_at":"`+expires+`","max_machines":10,"agent_channel":"stable"}`, 201)
	clientID := client.str("id")
	if clientID == "" {
		t.Fatalf("client: %v", client)
	}
	call("POST", "/api/admin/clients/"+clientID+"/users", root, `{"email":"ops@acme.example","name":"Ops"}`, 201)
	mails := smtp.Wait(1, 10*time.Second)
	if len(mails) != 1 || mails[0].To[0] != "ops@acme.example" {
		t.Fatalf("invitation mail: %+v", mails)
	}
	m := inviteLink.FindStringSubmatch(mails[0].Text())
	if m == nil {
		t.Fatalf("no set-password link in the invitation:\n%s", mails[0].Text())
	}
	call("POST", "/api/auth/password/reset", "", `{"token":"`+m[1]+`","new_password":"Acme-Admin-Pass-2026"}`, 200)
	bearer := login("ops@acme.example", "Acme-Admin-Pass-2026")

	// 3. An install token, and a machine enrolled with it (key made here, CSR sent).
	tok := call("POST", "/api/install-tokens", bearer, `{"name":"e2e"}`, 201).str("token")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	body, _ := json.Marshal(map[string]string{"token": tok, "arch": "amd64", "hostname": "web-01", "os": "linux", "os_version": "Debian 12", "csr": csr})
	enrolled := call("POST", "/api/public/bootstrap", "", string(body), 201)
	machineID := enrolled.str("machine_id")
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	pair, err := tls.X509KeyPair([]byte(enrolled.str("certificate")), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(enrolled.str("ca_chain")))
	agent := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
	heartbeat := func(at time.Time, want int) obj {
		t.Helper()
		hb, _ := json.Marshal(map[string]any{
			"recorded_at": at.UTC().Format(time.RFC3339Nano), "agent_version": "1.0.0",
			"metrics": map[string]any{"cpu_percent": 23.5, "ram_percent": 41.0, "cpu_temp": 48.0, "bytes_recv": 1000, "bytes_sent": 2000},
			"disks":   []any{map[string]any{"mount_point": "/", "device": "/dev/sda1", "fs_type": "ext4", "total_gb": 100, "used_gb": 40, "used_percent": 40}},
			"events": []any{map[string]any{"event_time": at.UTC().Format(time.RFC3339), "log_name": "syslog", "source": "kernel",
				"level": "error", "message": "disk I/O error"}},
		})
		var out obj
		if code := send(t, agent, "POST", r.stack.AgentURL+"/agent/heartbeat", "", string(hb), &out); code != want {
			t.Fatalf("heartbeat: %d, want %d", code, want)
		}
		return out
	}
	now := time.Now()
	for i := 3; i >= 1; i-- {
		heartbeat(now.Add(-time.Duration(i)*time.Minute), 200)
	}

	// 4. The machine, as the dashboard shows it.
	list := call("GET", "/api/machines?search=WEB", bearer, "", 200)
	if rows := list.list("machines"); len(rows) != 1 || list.str("machines.0.id") != machineID || list.str("machines.0.status") != "online" {
		t.Fatalf("list: %v", list)
	}
	details := call("GET", "/api/machines/"+machineID, bearer, "", 200)
	if !strings.Contains(mustJSON(details), "web-01") {
		t.Fatalf("details: %v", details)
	}
	if pts := call("GET", "/api/machines/"+machineID+"/metrics?period=24h", bearer, "", 200).list("points"); len(pts) == 0 {
		t.Fatal("24 h history has no point")
	}
	if pts := call("GET", "/api/machines/"+machineID+"/disks?period=24h", bearer, "", 200).list("points"); len(pts) == 0 {
		t.Fatal("disk history has no point")
	}
	call("GET", "/api/machines/"+machineID+"/inventory", bearer, "", 200)
	if ev := call("GET", "/api/machines/"+machineID+"/events?level=error", bearer, "", 200); !strings.Contains(mustJSON(ev), "disk I/O error") {
		t.Fatalf("events: %v", ev)
	}

	// 5. Grouped.
	group := call("POST", "/api/groups", bearer, `{"name":"Web servers","color":"#22AA44"}`, 201).str("id")
	call("PUT", "/api/groups/"+group+"/machines", bearer, `{"machine_ids":["`+machineID+`"]}`, 200)
	if l := call("GET", "/api/machines?group="+group, bearer, "", 200); l.str("machines.0.groups.0.name") != "Web servers" {
		t.Fatalf("grouped list: %v", l)
	}

	// 6. A new collector configuration reaches the agent.
	call("PUT", "/api/machines/"+machineID+"/collector-config", bearer, `{"software":{"enabled":false}}`, 200)
	if hb := heartbeat(now, 200); hb.get("config_changed") != true {
		t.Fatalf("heartbeat after the configuration change: %v", hb)
	}

	// 7. A published agent version reaches the heartbeat answer.
	call("PUT", "/api/admin/agent-versions/stable", root,
		`{"version":"1.2.0","downloads":{"amd64":{"url":"https://downloads.example.com/agent-1.2.0-amd64","sha256":"`+strings.Repeat("ab", 32)+`"}}}`, 200)
	if hb := heartbeat(now.Add(time.Second), 200); hb.str("latest_agent_version") != "1.2.0" {
		t.Fatalf("heartbeat after publishing: %v", hb)
	}

	// 8. Deleted: gone from the list at once, and its agent refused.
	call("DELETE", "/api/machines/"+machineID, bearer, "", 204)
	if l := call("GET", "/api/machines", bearer, "", 200); len(l.list("machines")) != 0 {
		t.Fatalf("list after delete: %v", l)
	}
	call("GET", "/api/machines/"+machineID, bearer, "", 404)
	heartbeat(now.Add(2*time.Second), 401)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
