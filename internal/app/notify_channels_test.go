package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/auth"
	"github.com/optralis/optralis/internal/notify"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

// withInsecureNotify is NOTIFY_ALLOW_INSECURE_URLS=true: channels may post to this
// test's http://127.0.0.1 receivers.
func withInsecureNotify(_ *auth.Options, d *testDeps) { d.Config.NotifyAllowInsecureURLs = true }

type channelView struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	Recipients  []string `json:"recipients"`
	URLMasked   *string  `json:"url_masked"`
	HasSecret   bool     `json:"has_secret"`
	MinSeverity string   `json:"min_severity"`
	Enabled     bool     `json:"enabled"`
	Secret      string   `json:"secret"`
}

// hookReceiver is a real local HTTP server that accepts only correctly signed webhooks
// (signed with *secret at the time it receives them).
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	ok     int
	bad    int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		// The stack's clock is fixed in 2026; the signature's timestamp is the real time.
		if notify.Verify(h.secret, r.Header.Get(notify.HeaderTimestamp), body, r.Header.Get(notify.HeaderSignature), time.Now(), notify.DefaultTolerance) != nil {
			h.bad++
			w.WriteHeader(401)
			return
		}
		h.ok++
		w.WriteHeader(204)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// The channels' API: admins write, users read; the URL and secret are write-only (the
// secret shown once, at creation and rotation); the test action delivers a signed
// webhook now and records it; every change is audited without secrets.
func TestNotificationChannelsAPI(t *testing.T) {
	t.Parallel()
	s := newStack(t, withInsecureNotify)
	client := testenv.Client(t, s.d.Pool, "Pro")
	admin, user := s.account(client, principal.RoleAdmin), s.account(client, principal.RoleUser)
	adminTok, userTok := s.bearer(admin), s.bearer(user)
	hook := newHookReceiver(t)
	hookURL := hook.srv.URL + "/optralis/secret-path"

	var created channelView
	code, body := s.api("POST", "/api/notification-channels", adminTok,
		`{"name":" On-call hook ","kind":"webhook","url":"`+hookURL+`","min_severity":"critical"}`, &created)
	if code != 201 || created.Secret == "" || !created.HasSecret || created.Name != "On-call hook" || created.MinSeverity != "critical" ||
		created.URLMasked == nil || *created.URLMasked != hook.srv.URL || strings.Contains(body, "secret-path") {
		t.Fatalf("create: %d %s", code, body)
	}
	hook.mu.Lock()
	hook.secret = created.Secret
	hook.mu.Unlock()
	for _, path := range []string{"/api/notification-channels", "/api/notification-channels/" + created.ID} {
		code, body := s.api("GET", path, userTok, "", nil)
		if code != 200 || !strings.Contains(body, created.ID) || strings.Contains(body, created.Secret) || strings.Contains(body, "secret-path") ||
			strings.Contains(body, `"secret"`) {
			t.Fatalf("GET %s as a user: %d %s", path, code, body)
		}
	}
	// The client's default email channel is there too.
	var list struct{ Channels []channelView }
	s.api("GET", "/api/notification-channels", userTok, "", &list)
	var defaultEmail channelView
	for _, c := range list.Channels {
		if c.Kind == "email" {
			defaultEmail = c
		}
	}
	if len(list.Channels) != 2 || defaultEmail.ID == "" || len(defaultEmail.Recipients) != 0 {
		t.Fatalf("list: %+v", list)
	}
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/api/notification-channels", `{"name":"x","kind":"email"}`},
		{"PATCH", "/api/notification-channels/" + created.ID, `{"enabled":false}`},
		{"DELETE", "/api/notification-channels/" + created.ID, ""},
		{"POST", "/api/notification-channels/" + created.ID + "/test", ""},
	} {
		if code, _ := s.api(r.method, r.path, userTok, r.body, nil); code != http.StatusForbidden {
			t.Errorf("%s %s as a user: %d", r.method, r.path, code)
		}
	}

	// The test action: delivered, signed, recorded.
	var res notify.TestResult
	if code, body := s.api("POST", "/api/notification-channels/"+created.ID+"/test", adminTok, "", &res); code != 200 || res.Status != "delivered" {
		t.Fatalf("test: %d %s", code, body)
	}
	// Rotation: a new secret, once; the receiver that still holds the old one refuses.
	var rotated channelView
	if code, body := s.api("PATCH", "/api/notification-channels/"+created.ID, adminTok, `{"rotate_secret":true}`, &rotated); code != 200 ||
		rotated.Secret == "" || rotated.Secret == created.Secret {
		t.Fatalf("rotate: %d %s", code, body)
	}
	if code, body := s.api("POST", "/api/notification-channels/"+created.ID+"/test", adminTok, "{}", &res); code != 200 || res.Status != "failed" ||
		!strings.Contains(res.Error, "HTTP 401") {
		t.Fatalf("test with the old secret at the receiver: %d %s", code, body)
	}
	hook.mu.Lock()
	hook.secret = rotated.Secret
	hook.mu.Unlock()
	if code, body := s.api("POST", "/api/notification-channels/"+created.ID+"/test", adminTok, "", &res); code != 200 || res.Status != "delivered" {
		t.Fatalf("test after rotation: %d %s", code, body)
	}
	if hook.ok != 2 || hook.bad != 1 {
		t.Fatalf("receiver: %d accepted, %d refused", hook.ok, hook.bad)
	}
	var sent, failed int
	if err := s.d.Pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed')
		FROM notification_history WHERE channel_id = $1 AND notification_type = 'alert_test'`, created.ID).Scan(&sent, &failed); err != nil || sent != 2 || failed != 1 {
		t.Fatalf("history: %d sent, %d failed, %v", sent, failed, err)
	}
	// Email without a mail server: skipped, said so.
	if code, body := s.api("POST", "/api/notification-channels/"+defaultEmail.ID+"/test", adminTok, "", &res); code != 200 || res.Status != "skipped" {
		t.Fatalf("email test without mail: %d %s", code, body)
	}

	// Slack with a changed URL, disabled; then deleted.
	var slack channelView
	if code, body := s.api("POST", "/api/notification-channels", adminTok, `{"name":"Slack","kind":"slack","url":"https://hooks.slack.com/services/T0/B0/XYZ"}`, &slack); code != 201 ||
		slack.Secret != "" || slack.HasSecret || slack.MinSeverity != "warning" {
		t.Fatalf("slack: %d %s", code, body)
	}
	if code, body := s.api("PATCH", "/api/notification-channels/"+slack.ID, adminTok, `{"url":"https://hooks.slack.com/services/T0/B0/NEW","enabled":false}`, &slack); code != 200 ||
		slack.Enabled || strings.Contains(body, "NEW") {
		t.Fatalf("patch slack: %d %s", code, body)
	}
	var email channelView
	if code, body := s.api("POST", "/api/notification-channels", adminTok, `{"name":"Ops","kind":"email","recipients":["ops@example.com","OPS@example.com","noc@example.com"]}`, &email); code != 201 ||
		len(email.Recipients) != 2 || email.URLMasked != nil {
		t.Fatalf("email: %d %s", code, body)
	}
	if code, _ := s.api("DELETE", "/api/notification-channels/"+slack.ID, adminTok, "", nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := s.api("GET", "/api/notification-channels/"+slack.ID, adminTok, "", nil); code != 404 {
		t.Fatalf("deleted channel: %d", code)
	}

	// Audited, without URL or secret.
	rows, err := s.d.Pool.Query(context.Background(), `SELECT action, details::text FROM activity_logs WHERE client_id = $1 AND action LIKE 'notification_channel_%' ORDER BY created_at, action`, client)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for rows.Next() {
		var action, details string
		_ = rows.Scan(&action, &details)
		actions[action]++
		for _, secret := range []string{created.Secret, rotated.Secret, "secret-path", "XYZ", "NEW"} {
			if strings.Contains(details, secret) {
				t.Errorf("audit %s shows %q: %s", action, secret, details)
			}
		}
	}
	if actions["notification_channel_created"] != 3 || actions["notification_channel_updated"] != 2 || actions["notification_channel_tested"] != 4 ||
		actions["notification_channel_deleted"] != 1 {
		t.Fatalf("audit: %v", actions)
	}
}

// Bad input: a 400 naming the field, and nothing changes.
func TestNotificationChannelsValidation(t *testing.T) {
	t.Parallel()
	s := newStack(t) // production policy: https to public addresses only
	client := testenv.Client(t, s.d.Pool, "Pro")
	tok := s.bearer(s.account(client, principal.RoleAdmin))
	var ch channelView
	if code, body := s.api("POST", "/api/notification-channels", tok, `{"name":"Hook","kind":"webhook","url":"https://hooks.example.com/x"}`, &ch); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var email channelView
	if code, body := s.api("POST", "/api/notification-channels", tok, `{"name":"Mail","kind":"email"}`, &email); code != 201 {
		t.Fatalf("create email: %d %s", code, body)
	}
	many := `"a@example.com"` + strings.Repeat(`,"a@example.com"`, 20)
	for _, tc := range []struct{ method, path, body, field string }{
		{"POST", "/api/notification-channels", `{"kind":"email"}`, "name"},
		{"POST", "/api/notification-channels", `{"name":"  ","kind":"email"}`, "name"},
		{"POST", "/api/notification-channels", `{"name":"` + strings.Repeat("n", 101) + `","kind":"email"}`, "name"},
		{"POST", "/api/notification-channels", `{"name":"x"}`, "kind"},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"pager"}`, "kind"},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"webhook"}`, "url"},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"email","url":"https://example.com"}`, "url"},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"slack","recipients":["a@example.com"],"url":"https://hooks.slack.com/x"}`, "recipients"},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"email","recipients":[` + many + `]}`, "recipients"},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"email","recipients":["not-an-address"]}`, "recipients"},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"webhook","url":"http://hooks.example.com/x"}`, "url"},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"webhook","url":"https://169.254.169.254/latest/meta-data/"}`, "url"},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"webhook","url":"https://10.1.2.3/x"}`, "url"},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"webhook","url":"https://127.0.0.1/x"}`, "url"},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"teams","url":"https://user:pw@example.com/x"}`, "url"},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"email","min_severity":"urgent"}`, "min_severity"},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"webhook","url":"https://example.com","rotate_secret":true}`, "rotate_secret"},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"email","colour":"red"}`, ""},
		{"POST", "/api/notification-channels", `{"name":"x","kind":"email","enabled":"yes"}`, ""},
		{"PATCH", "/api/notification-channels/" + ch.ID, `{}`, "body"},
		{"PATCH", "/api/notification-channels/" + ch.ID, `{"kind":"slack"}`, "kind"},
		{"PATCH", "/api/notification-channels/" + ch.ID, `{"recipients":["a@example.com"]}`, "recipients"},
		{"PATCH", "/api/notification-channels/" + ch.ID, `{"url":"ftp://example.com/x"}`, "url"},
		{"PATCH", "/api/notification-channels/" + email.ID, `{"url":"https://example.com/x"}`, "url"},
		{"PATCH", "/api/notification-channels/" + email.ID, `{"rotate_secret":true}`, "rotate_secret"},
		{"PATCH", "/api/notification-channels/" + ch.ID, `{"min_severity":"none","name":"ok"}`, "min_severity"},
		{"POST", "/api/notification-channels/" + ch.ID + "/test", `{"now":true}`, ""},
		{"GET", "/api/notification-channels?kind=email", "", "kind"},
		{"GET", "/api/notification-channels/" + ch.ID + "?x=1&x=2", "", "x"},
	} {
		code, body := s.api(tc.method, tc.path, tok, tc.body, nil)
		var e struct {
			Error struct {
				Fields map[string]string `json:"fields"`
			} `json:"error"`
		}
		_ = json.Unmarshal([]byte(body), &e)
		if code != 400 || (tc.field != "" && e.Error.Fields[tc.field] == "") {
			t.Errorf("%s %s %s: %d %s, want 400 naming %q", tc.method, tc.path, tc.body, code, body, tc.field)
		}
	}
	var n int
	var name string
	var enabled bool
	if err := s.d.Pool.QueryRow(context.Background(), `SELECT count(*), min(name), bool_and(enabled) FROM notification_channels WHERE client_id = $1 AND kind = 'webhook'`, client).
		Scan(&n, &name, &enabled); err != nil || n != 1 || name != "Hook" || !enabled {
		t.Fatalf("something changed: %d %q %v %v", n, name, enabled, err)
	}
	if err := s.d.Pool.QueryRow(context.Background(), `SELECT count(*) FROM notification_history WHERE client_id = $1`, client).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a refused test was sent: %d %v", n, err)
	}
	// Malformed ids are channels that do not exist.
	if code, _ := s.api("GET", "/api/notification-channels/not-a-uuid", tok, "", nil); code != 404 {
		t.Fatalf("malformed id: %d", code)
	}
}
