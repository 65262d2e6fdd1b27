package smtptest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/auth/mail"
	"github.com/optralis/optralis/internal/testenv/smtptest"
)

// The server receives what the product's SMTP sender sends, decoded.
func TestReceivesTheProductsMail(t *testing.T) {
	srv := smtptest.Start(t)
	s := mail.SMTP{Host: srv.Host, Port: srv.Port, From: "noreply@optralis.test"}
	body := "Hello,\n\nset your password: https://dash.example.com/set-password?token=" + strings.Repeat("x", 90) + "\n"
	if err := s.Send(context.Background(), "pat@example.com", "Votre invitation é", body); err != nil {
		t.Fatal(err)
	}
	got := srv.Wait(1, 5*time.Second)
	if len(got) != 1 || len(got[0].To) != 1 || got[0].To[0] != "pat@example.com" || got[0].From != "noreply@optralis.test" {
		t.Fatalf("messages: %+v", got)
	}
	if got[0].Header("Subject") != "Votre invitation é" || strings.TrimSpace(got[0].Text()) != strings.TrimSpace(body) {
		t.Fatalf("subject %q body %q", got[0].Header("Subject"), got[0].Text())
	}
}

// A message with an HTML part arrives as multipart/alternative, each part decoded.
func TestReceivesTextAndHTML(t *testing.T) {
	srv := smtptest.Start(t)
	s := mail.SMTP{Host: srv.Host, Port: srv.Port, From: "noreply@optralis.test"}
	m := mail.Message{To: "pat@example.com", Subject: "Licence", Text: "Expires in 14 days.\nRenew: https://dash.example.com/\n",
		HTML: "<p>Expires in <b>14 days</b> — <a href=\"https://dash.example.com/\">renew</a></p>\n"}
	if err := s.SendMessage(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.Wait(1, 5*time.Second)
	if len(got) != 1 {
		t.Fatalf("messages: %+v", got)
	}
	if ct := got[0].Header("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative;") {
		t.Fatalf("Content-Type %q", ct)
	}
	if p := got[0].Part("text/plain"); p != strings.ReplaceAll(m.Text, "\r\n", "\n") {
		t.Errorf("text part %q", p)
	}
	if p := got[0].Part("text/html"); p != m.HTML {
		t.Errorf("html part %q", p)
	}
	if err := s.SendMessage(context.Background(), mail.Message{To: "a@b.co\r\nBcc: v@x.co", Subject: "x", Text: "y", HTML: "<p>y</p>"}); err != mail.ErrAddress {
		t.Errorf("injection through SendMessage: %v", err)
	}
}
