package notify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/optralis/optralis/internal/notify"
)

func TestSignVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"version":"1","events":[]}`)
	sig := notify.Sign("whsec_k", ts, body)
	if !strings.HasPrefix(sig, "v1=") || len(sig) != 3+64 {
		t.Fatalf("signature %q", sig)
	}
	ok := func(err error) bool { return err == nil }
	for _, tc := range []struct {
		name                  string
		secret, ts, body, sig string
		at                    time.Time
		want                  bool
	}{
		{"valid", "whsec_k", ts, string(body), sig, now, true},
		{"valid, 4 min late", "whsec_k", ts, string(body), sig, now.Add(4 * time.Minute), true},
		{"valid among rotated", "whsec_k", ts, string(body), "v1=00, " + sig, now, true},
		{"wrong secret", "whsec_other", ts, string(body), sig, now, false},
		{"tampered body", "whsec_k", ts, string(body) + " ", sig, now, false},
		{"other timestamp", "whsec_k", strconv.FormatInt(now.Unix()+1, 10), string(body), sig, now, false},
		{"stale", "whsec_k", ts, string(body), sig, now.Add(6 * time.Minute), false},
		{"from the future", "whsec_k", ts, string(body), sig, now.Add(-6 * time.Minute), false},
		{"malformed timestamp", "whsec_k", "12a", string(body), sig, now, false},
		{"empty secret", "", ts, string(body), notify.Sign("", ts, body), now, false},
		{"no signature", "whsec_k", ts, string(body), "", now, false},
	} {
		err := notify.Verify(tc.secret, tc.ts, []byte(tc.body), tc.sig, tc.at, notify.DefaultTolerance)
		if ok(err) != tc.want {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil && !errors.Is(err, notify.ErrSignature) {
			t.Errorf("%s: not the generic error: %v", tc.name, err)
		}
	}
	if a, b := notify.NewSecret(), notify.NewSecret(); a == b || !strings.HasPrefix(a, "whsec_") || len(a) < 40 {
		t.Fatalf("secrets %q %q", a, b)
	}
}

func TestCheckURL(t *testing.T) {
	strict, dev := notify.Policy{}, notify.Policy{AllowInsecure: true}
	for _, tc := range []struct {
		url         string
		strict, dev bool
	}{
		{"https://hooks.slack.com/services/T0/B0/X", true, true},
		{"https://example.com:8443/hook?x=1", true, true},
		{"http://example.com/hook", false, true},
		{"http://127.0.0.1:8080/hook", false, true},
		{"https://10.0.0.5/hook", false, true},
		{"https://192.168.1.1/hook", false, true},
		{"https://[::1]/hook", false, true},
		{"https://localhost/hook", false, true},
		{"https://169.254.169.254/latest/meta-data", false, false},
		{"http://169.254.169.254/latest/meta-data", false, false},
		{"https://[fe80::1]/", false, false},
		{"https://[fd00:ec2::254]/", false, false},
		{"https://0.0.0.0/", false, false},
		{"https://user:pass@example.com/", false, false},
		{"https://example.com/#frag", false, false},
		{"ftp://example.com/", false, false},
		{"example.com/hook", false, false},
		{"", false, false},
		{"https://" + strings.Repeat("a", 2048) + ".com", false, false},
	} {
		if got := strict.CheckURL(tc.url) == nil; got != tc.strict {
			t.Errorf("strict %q: allowed %v", tc.url, got)
		}
		if got := dev.CheckURL(tc.url) == nil; got != tc.dev {
			t.Errorf("insecure %q: allowed %v", tc.url, got)
		}
	}
	if m := notify.MaskURL("https://hooks.slack.com/services/T0/B0/SECRET"); m != "https://hooks.slack.com" {
		t.Fatalf("mask %q", m)
	}
}

// The address is checked when dialling, after name resolution: a production client does
// not reach a loopback receiver, and no client reaches the metadata address.
func TestDialTimeAddressCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }))
	defer srv.Close()
	post := func(c *http.Client, url string) error {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", url, strings.NewReader("{}"))
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	// "localhost" resolves to loopback: refused by the strict dialer though CheckURL only
	// sees a name.
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	if err := post(notify.NewHTTPClient(notify.Policy{}, time.Second), url); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("strict client reached loopback: %v", err)
	}
	if err := post(notify.NewHTTPClient(notify.Policy{AllowInsecure: true}, time.Second), url); err != nil {
		t.Fatalf("insecure client: %v", err)
	}
	if err := post(notify.NewHTTPClient(notify.Policy{AllowInsecure: true}, time.Second), "http://169.254.169.254/latest/meta-data/"); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("metadata address: %v", err)
	}
}
