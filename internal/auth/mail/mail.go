// Package mail sends plain-text email through SMTP, or logs that mail is disabled.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"time"

	"github.com/optralis/optralis/internal/config"
	"github.com/optralis/optralis/internal/validate"
)

// Sender sends one message.
type Sender interface {
	Send(ctx context.Context, to, subject, body string) error
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

// Disabled logs that a message was not sent. It never logs the body, which may hold a
// secret (a password reset link).
type Disabled struct{ Logger *slog.Logger }

// Send logs and succeeds.
func (d Disabled) Send(ctx context.Context, _, subject, _ string) error {
	d.Logger.InfoContext(ctx, "mail disabled (SMTP_HOST not set): message not sent", "subject", subject)
	return nil
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
	if validate.Email(to) != nil || validate.Email(s.From) != nil || strings.ContainsAny(subject, "\r\n") {
		return ErrAddress
	}
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
	var err error
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
	if _, err := w.Write(message(s.From, to, subject, body, time.Now())); err != nil {
		return fmt.Errorf("mail: writing: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mail: sending: %w", err)
	}
	return c.Quit()
}

func message(from, to, subject, body string, now time.Time) []byte {
	var b bytes.Buffer
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	domain := from[strings.LastIndexByte(from, '@')+1:]
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\n",
		from, to, mime.QEncoding.Encode("utf-8", subject), now.Format(time.RFC1123Z), hex.EncodeToString(id), domain)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(body)) // text mode: line breaks become CRLF
	_ = qp.Close()
	return b.Bytes()
}
