package notify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Webhook headers: when the body was signed (Unix seconds), the signature, and the
// delivery's id (the same for every retry of one message, so a receiver can drop repeats).
const (
	HeaderTimestamp = "X-Optralis-Timestamp"
	HeaderSignature = "X-Optralis-Signature"
	HeaderDelivery  = "X-Optralis-Delivery"
)

// DefaultTolerance is how old (or how far in the future) a signed timestamp a receiver
// should accept.
const DefaultTolerance = 5 * time.Minute

// ErrSignature is every verification failure: one generic error, so a caller probing with
// forged requests learns nothing about which check failed.
var ErrSignature = errors.New("notify: invalid or stale webhook signature")

// Sign returns the X-Optralis-Signature value of body sent at timestamp (Unix seconds):
// "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body)). Signing the timestamp with the
// body lets a receiver refuse replays outside its freshness window.
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a received webhook: the signature (constant-time) and that timestamp is
// within tolerance of now. signature may list several comma-separated values (a receiver
// during a secret rotation tries each of its secrets instead).
func Verify(secret, timestamp string, body []byte, signature string, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || secret == "" {
		return ErrSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrSignature
	}
	want := []byte(Sign(secret, timestamp, body))
	for _, s := range strings.Split(signature, ",") {
		if hmac.Equal([]byte(strings.TrimSpace(s)), want) {
			return nil
		}
	}
	return ErrSignature
}

// NewSecret is a webhook signing secret: 32 random bytes, URL-safe base64 with a prefix
// that makes a leaked one easy to recognise in logs and scanners.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b)
}
