package mail_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime/quotedprintable"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/config"
)

// fakeSMTP speaks just enough SMTP for net/smtp: EHLO with AUTH PLAIN, MAIL, RCPT, DATA.
type fakeSMTP struct {
	addr     string
	commands chan []string
	data     chan string
}

func startFakeSMTP(t *testing.T) *fakeSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f := &fakeSMTP{addr: ln.Addr().String(), commands: make(chan []string, 1), data: make(chan string, 1)}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		say := func(s string) { io.WriteString(conn, s+"\r\n") }
		var cmds []string
		say("220 fake ESMTP")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				f.commands <- cmds
				return
			}
			line = strings.TrimRight(line, "\r\n")
			cmds = append(cmds, line)
			verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
			switch verb {
			case "EHLO":
				say("250-fake")
				say("250 AUTH PLAIN")
			case "AUTH":
				say("235 ok")
			case "MAIL", "RCPT":
				say("250 ok")
			case "DATA":
				say("354 go on")
				var msg bytes.Buffer
				for {
					l, err := r.ReadString('\n')
					if err != nil || l == ".\r\n" {
						break
					}
					msg.WriteString(l)
				}
				f.data <- msg.String()
				say("250 queued")
			case "QUIT":
				say("221 bye")
				f.commands <- cmds
				return
			default:
				say("502 no")
			}
		}
	}()
	return f
}

func TestSMTPSendsOverTheWire(t *testing.T) {
	f := startFakeSMTP(t)
	host, port, _ := net.SplitHostPort(f.addr)
	p, _ := strconv.Atoi(port)
	s := mail.SMTP{Host: host, Port: p, User: "mailer", Pass: "s3cret", From: "noreply@optralis.example"}
	body := "Hello,\n\nReset link: https://dash.example.com/reset-password?token=abc_DEF-123\n\nÉquipe Optralis\n"
	if err := s.Send(context.Background(), "user@example.com", "Réinitialisation du mot de passe", body); err != nil {
		t.Fatal(err)
	}
	msg := <-f.data
	cmds := <-f.commands
	joined := strings.Join(cmds, "\n")
	for _, want := range []string{"AUTH PLAIN", "MAIL FROM:<noreply@optralis.example>", "RCPT TO:<user@example.com>", "QUIT"} {
		if !strings.Contains(joined, want) {
			t.Errorf("conversation lacks %q:\n%s", want, joined)
		}
	}
	head, enc, _ := strings.Cut(msg, "\r\n\r\n")
	for _, want := range []string{"To: user@example.com", "From: noreply@optralis.example", "Subject: =?utf-8?", "Content-Transfer-Encoding: quoted-printable"} {
		if !strings.Contains(head, want) {
			t.Errorf("headers lack %q:\n%s", want, head)
		}
	}
	plain, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(enc)))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ReplaceAll(string(plain), "\r\n", "\n"); got != body {
		t.Fatalf("body round trip:\n%q\nwant\n%q", got, body)
	}
}

func TestSMTPRefusesHeaderInjection(t *testing.T) {
	s := mail.SMTP{Host: "127.0.0.1", Port: 1, From: "noreply@optralis.example"}
	for _, to := range []string{"a@b.co\r\nBcc: victim@x.co", "not-an-address", ""} {
		if err := s.Send(context.Background(), to, "x", "y"); err != mail.ErrAddress {
			t.Errorf("Send to %q: %v, want ErrAddress", to, err)
		}
	}
	if err := s.Send(context.Background(), "a@b.co", "x\r\nBcc: v@x.co", "y"); err != mail.ErrAddress {
		t.Errorf("subject injection: %v", err)
	}
}

func TestDisabledLogsWithoutBody(t *testing.T) {
	var logs bytes.Buffer
	s := mail.FromConfig(config.SMTP{}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err := s.Send(context.Background(), "a@b.co", "Password reset", "token=SECRET-TOKEN"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "SECRET-TOKEN") || !strings.Contains(logs.String(), "mail disabled") {
		t.Fatalf("log: %s", logs.String())
	}
	if _, ok := mail.FromConfig(config.SMTP{Host: "smtp.example.com", Port: 587, From: "a@b.co"}, nil).(mail.SMTP); !ok {
		t.Fatal("SMTP host configured but no SMTP sender")
	}
}
