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
