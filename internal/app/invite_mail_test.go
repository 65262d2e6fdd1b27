package app_test

import (
	"context"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/optralis/optralis/internal/app/adminfn"
	"github.com/optralis/optralis/internal/auth"
	authmail "github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/migrate"
	"github.com/optralis/optralis/internal/principal"
	"github.com/optralis/optralis/internal/testenv"
)

// received is one message a mailbox accepted.
type received struct {
	From string
	To   []string
	Data []byte
}

// mailbox is a real SMTP server (emersion/go-smtp) on a loopback port that keeps what it
// receives.
type mailbox struct {
	addr string
	srv  *smtp.Server
	got  chan received
}

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &mailbox{addr: ln.Addr().String(), got: make(chan received, 10)}
	m.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{box: m}, nil }))
	m.srv.Domain = "mail.test"
	m.srv.ReadTimeout, m.srv.WriteTimeout = 10*time.Second, 10*time.Second
	go func() { _ = m.srv.Serve(ln) }()
	t.Cleanup(func() { _ = m.srv.Close() })
	return m
}

func (m *mailbox) sender(t *testing.T) authmail.SMTP {
	host, port, _ := net.SplitHostPort(m.addr)
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return authmail.SMTP{Host: host, Port: p, From: "noreply@optralis.test", Timeout: 5 * time.Second}
}

// next waits for the next message and returns its recipient and decoded text body.
func (m *mailbox) next(t *testing.T) (to, subject, body string) {
	t.Helper()
	select {
	case r := <-m.got:
		msg, err := mail.ReadMessage(strings.NewReader(string(r.Data)))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
		if err != nil {
			t.Fatal(err)
		}
		if len(r.To) != 1 || r.To[0] != msg.Header.Get("To") || r.From != "noreply@optralis.test" {
			t.Fatalf("envelope %s → %v, header To %q", r.From, r.To, msg.Header.Get("To"))
		}
		return r.To[0], msg.Header.Get("Subject"), string(b)
	case <-time.After(10 * time.Second):
		t.Fatal("no mail arrived")
	}
	return "", "", ""
}

type mailSession struct {
	box *mailbox
	cur received
}

func (s *mailSession) Reset()        { s.cur = received{} }
func (s *mailSession) Logout() error { return nil }
func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.cur.From = from
	return nil
}
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = b
	s.box.got <- s.cur
	return nil
}

var linkPattern = regexp.MustCompile(`https://dash\.example\.com/reset-password\?token=[A-Za-z0-9_-]+`)

// With SMTP configured, invitations are mailed, never answered: the invitee follows the
// mailed link, sets a password and signs in — the platform admin's invitation of a client's
// first admin, then that admin's invitation of a colleague, all over HTTP.
func TestInvitationsAreMailed(t *testing.T) {
	t.Parallel()
	box := startMailbox(t)
	s := newStack(t, func(o *auth.Options, _ *testDeps) { o.Mailer = box.sender(t) })
	admin := s.bearer(s.account("", principal.RolePlatformAdmin))
	var c clientView
	if code, raw := s.api("POST", "/api/admin/clients", admin, `{"name":"Mailed MSP","license_tier":"Business"}`, &c); code != 201 {
		t.Fatalf("create: %d %s", code, raw)
	}
	accept := func(email string, inv invited) string {
		t.Helper()
		if !inv.Invitation.Sent || inv.Invitation.Link != "" || inv.Invitation.Token != "" {
			t.Fatalf("a mailed invitation answered %+v", inv.Invitation)
		}
		to, subject, body := box.next(t)
		link := linkPattern.FindString(body)
		if to != email || !strings.Contains(subject, "invitation") || link == "" || !strings.Contains(body, "Mailed MSP") {
			t.Fatalf("mail to %s, %q:\n%s", to, subject, body)
		}
		b := s.browser("192.0.2.51")
		if w := b.do("POST", "/api/auth/password/reset", `{"token":"`+tokenOf(t, link)+`","new_password":"`+pw+`"}`); w.Code != 200 {
			t.Fatalf("set password: %d %s", w.Code, w.Body.String())
		}
		w := b.do("POST", "/api/auth/login", `{"email":"`+email+`","password":"`+pw+`"}`)
		var tk tokens
		if w.Code != 200 {
			t.Fatalf("login: %d %s", w.Code, w.Body.String())
		}
		w.json(&tk)
		return tk.AccessToken
	}
	var inv invited
	if code, raw := s.api("POST", "/api/admin/clients/"+c.ID+"/users", admin, `{"email":"first.admin@mailed.example","name":"First"}`, &inv); code != 201 {
		t.Fatalf("invite: %d %s", code, raw)
	}
	first := accept("first.admin@mailed.example", inv)
	if code, raw := s.api("POST", "/api/users", first, `{"email":"colleague@mailed.example","role":"user"}`, &inv); code != 201 {
		t.Fatalf("invite a colleague: %d %s", code, raw)
	}
	colleague := accept("colleague@mailed.example", inv)
	if code, raw := s.api("GET", "/api/client", colleague, "", nil); code != 200 || !strings.Contains(raw, "Mailed MSP") {
		t.Fatalf("the colleague's client: %d %s", code, raw)
	}

	// The server gone: the user exists, the answer says the mail failed and holds no link.
	_ = box.srv.Close()
	code, raw := s.api("POST", "/api/users", first, `{"email":"unlucky@mailed.example"}`, &inv)
	if code != 201 || inv.Invitation.Sent || inv.Invitation.MailError == "" || inv.Invitation.Link != "" || inv.Invitation.Token != "" {
		t.Fatalf("invitation with the mail server down: %d %s", code, raw)
	}
}

// The admin function now mails invitations: its cold start reads the SMTP settings, and
// refuses an incomplete set naming the variable.
func TestAdminFunctionReadsSMTP(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": testenv.NewDB(t, migrate.ModePostgres).Config().ConnString(),
		"JWT_SECRET": strings.Repeat("j", 32), "SMTP_HOST": "smtp.example.test"}
	_, err := adminfn.Open(context.Background(), func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "SMTP_FROM") {
		t.Fatalf("admin without SMTP_FROM: %v", err)
	}
	env["SMTP_FROM"] = "noreply@example.test"
	f, err := adminfn.Open(context.Background(), func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}
