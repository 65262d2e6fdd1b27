// Package mail sends email through SMTP (plain text, or plain text and HTML as
// multipart/alternative), or logs that mail is disabled.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/validate"
)

// Sender sends one plain-text message.
type Sender interface {
	Send(ctx context.Context, to, subject, body string) error
}

// Message is one mail to one recipient. Text is required; HTML, when set, is sent with it
// as multipart/alternative (clients show the richest part they can).
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// MessageSender sends a Message. SMTP, Disabled and the SES sender (mail/sesmail)
// implement it.
type MessageSender interface {
	SendMessage(ctx context.Context, m Message) error
}

// FromConfig returns an SMTP sender when SMTP_HOST is set, otherwise one that only logs.
func FromConfig(c config.SMTP, logger *slog.Logger) Sender {
	if !c.Enabled() {
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		return Disabled{Logger: logger}
	}
	return SMTP{Host: c.Host, Port: c.Port, User: c.User, Pass: c.Pass, From: c.From}
}

// MessageFromConfig is FromConfig for senders of Messages (text and HTML).
func MessageFromConfig(c config.SMTP, logger *slog.Logger) MessageSender {
	return FromConfig(c, logger).(MessageSender) // SMTP and Disabled both are
}

// Disabled logs that a message was not sent. It never logs the body, which may hold a
// secret (a password reset link).
type Disabled struct{ Logger *slog.Logger }

// Send logs and succeeds.
func (d Disabled) Send(ctx context.Context, _, subject, _ string) error {
	d.Logger.InfoContext(ctx, "mail disabled (SMTP_HOST not set): message not sent", "subject", subject)
	return nil
}

// SendMessage logs and succeeds.
func (d Disabled) SendMessage(ctx context.Context, m Message) error {
	return d.Send(ctx, m.To, m.Subject, m.Text)
}

// SMTP sends through a mail server: implicit TLS on port 465, otherwise STARTTLS when the
// server offers it. Credentials are only sent over TLS (net/smtp's PlainAuth refuses
// otherwise, except to localhost).
type SMTP struct {
	Host    string
	Port    int
	User    string
	Pass    string
	From    string
	Timeout time.Duration // whole conversation; 0: 15 s
	// TLSConfig overrides the TLS settings (a server with a private CA); nil: verify Host's
	// certificate against the system roots.
	TLSConfig *tls.Config
}

// ErrAddress refuses recipients or headers that could inject extra headers or recipients.
var ErrAddress = errors.New("mail: invalid recipient or header")

// Send delivers one plain-text message.
func (s SMTP) Send(ctx context.Context, to, subject, body string) error {
	return s.SendMessage(ctx, Message{To: to, Subject: subject, Text: body})
}

// SendMessage delivers m.
func (s SMTP) SendMessage(ctx context.Context, m Message) error {
	raw, err := Build(s.From, m, time.Now())
	if err != nil {
		return err
	}
	to := m.To
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	tlsConfig := s.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
	}
	var conn net.Conn
	if s.Port == 465 {
		conn, err = (&tls.Dialer{Config: tlsConfig}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("mail: connecting to %s: %w", addr, err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mail: %w", err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok && s.Port != 465 {
		if err := c.StartTLS(tlsConfig); err != nil {
			return fmt.Errorf("mail: STARTTLS: %w", err)
		}
	}
	if s.User != "" {
		if err := c.Auth(smtp.PlainAuth("", s.User, s.Pass, s.Host)); err != nil {
			return fmt.Errorf("mail: authentication: %w", err)
		}
	}
	if err := c.Mail(s.From); err != nil {
		return fmt.Errorf("mail: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("mail: RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mail: DATA: %w", err)
	}
	if _, err := w.Write(raw); err != nil {
		return fmt.Errorf("mail: writing: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: sending: %w", err)
	}
	return c.Quit()
}

// Build renders m as an RFC 5322 message from from: quoted-printable UTF-8 text, and
// with an HTML part, multipart/alternative (text first). It refuses addresses or a
// subject that could inject headers or recipients (ErrAddress).
func Build(from string, m Message, now time.Time) ([]byte, error) {
	if validate.Email(m.To) != nil || validate.Email(from) != nil || strings.ContainsAny(m.Subject, "\r\n") {
		return nil, ErrAddress
	}
	var b bytes.Buffer
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	domain := from[strings.LastIndexByte(from, '@')+1:]
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n",
		from, m.To, mime.QEncoding.Encode("utf-8", m.Subject), now.Format(time.RFC1123Z), hex.EncodeToString(id), domain)
	if m.HTML == "" {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		writeQP(&b, m.Text)
		return b.Bytes(), nil
	}
	mw := multipart.NewWriter(&b)
	fmt.Fprintf(&b, "Content-Type: multipart/alternative; boundary=%q\r\n\r\n", mw.Boundary())
	for _, part := range []struct{ ctype, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.ctype + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		writeQP(w, part.body)
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeQP(w io.Writer, body string) {
	qp := quotedprintable.NewWriter(w)
	_, _ = qp.Write([]byte(body)) // text mode: line breaks become CRLF
	_ = qp.Close()
}
