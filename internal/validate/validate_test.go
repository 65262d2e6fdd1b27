package validate_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/optralis/optralis/internal/validate"
)

func TestEmail(t *testing.T) {
	good := []string{
		"a@b.co", "first.last@example.com", "o'brien+tag@mail.example.org", "x_y-z@sub-domain.example.io",
		"UPPER@EXAMPLE.COM", "1234@123.example", strings.Repeat("l", 64) + "@example.com",
		"a@" + strings.Repeat("d", 63) + "." + strings.Repeat("e", 63) + "." + strings.Repeat("f", 63) + "." + strings.Repeat("g", 57),
	}
	bad := []string{
		"", "@", "a@", "@b.co", "plain", "a@b", "a@b.", "a@.b.co", "a@b..co", ".a@b.co", "a.@b.co", "a..b@c.co",
		"a b@c.co", "a@b c.co", "a@-b.co", "a@b-.co", "a@@b.co", "a@b@c.co", "\"quoted\"@b.co", "a@[127.0.0.1]",
		"a(comment)@b.co", "ü@b.co", "a@bü.co", "a@b.co\n", "a\x00@b.co", "a@b_c.co",
		strings.Repeat("l", 65) + "@example.com", "a@" + strings.Repeat("d.", 126) + "co",
	}
	for _, s := range good {
		if err := validate.Email(s); err != nil {
			t.Errorf("Email(%q) = %v, want ok", s, err)
		}
	}
	for _, s := range bad {
		if err := validate.Email(s); err == nil {
			t.Errorf("Email(%q) accepted", s)
		}
	}
}

func TestHostname(t *testing.T) {
	good := []string{"a", "web-01", "3com", "123", "srv.example.com", "srv.example.com.", "A-B.C-D",
		strings.Repeat("a", 63), strings.Repeat("a.", 126) + "a"}
	bad := []string{"", ".", "-a", "a-", "a..b", ".a", "a_b", "a b", "héhé", "a/b", "a:b",
		strings.Repeat("a", 64), strings.Repeat("a.", 126) + "ab", "a\n", "a.b..", "a.-b"}
	for _, s := range good {
		if err := validate.Hostname(s); err != nil {
			t.Errorf("Hostname(%q) = %v, want ok", s, err)
		}
	}
	for _, s := range bad {
		if err := validate.Hostname(s); err == nil {
			t.Errorf("Hostname(%q) accepted", s)
		}
	}
}

func TestHexColor(t *testing.T) {
	for _, s := range []string{"#000000", "#FFFFFF", "#3b82F6", "#abcdef"} {
		if err := validate.HexColor(s); err != nil {
			t.Errorf("HexColor(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "#", "000000", "#00000", "#0000000", "#GGGGGG", "#abcde ", " #abcdef", "#ABC", "##abcde", "#abcdeé"} {
		if err := validate.HexColor(s); err == nil {
			t.Errorf("HexColor(%q) accepted", s)
		}
	}
}

func TestGroupName(t *testing.T) {
	ok := map[string]string{
		"Servers":                     "Servers",
		"  Paris office \t":           "Paris office",
		strings.Repeat("é", 50):       strings.Repeat("é", 50),
		" " + strings.Repeat("x", 50): strings.Repeat("x", 50),
		"日本のサーバー":                     "日本のサーバー",
	}
	for in, want := range ok {
		got, err := validate.GroupName(in)
		if err != nil || got != want {
			t.Errorf("GroupName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, s := range []string{"", "   ", "\t\n", strings.Repeat("x", 51), strings.Repeat("é", 51), "a\x00b", "a\nb", "a\x7fb", "bad\xffutf8", "a\u2028b"} {
		if got, err := validate.GroupName(s); err == nil {
			t.Errorf("GroupName(%q) accepted as %q", s, got)
		}
	}
}

// The fuzz targets check invariants of what each validator accepts; their seeds are in
// testdata/fuzz. Run one with: go test -fuzz FuzzEmail ./internal/validate

var (
	hostnameShape = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)
	emailShape    = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[^@]+$")
)

func FuzzEmail(f *testing.F) {
	for _, s := range []string{"a@b.co", "first.last@example.com", "a@b", "a..b@c.d", "\"x\"@y.z", "@", "a@b.c."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validate.Email(s) != nil {
			return
		}
		at := strings.LastIndexByte(s, '@')
		if len(s) > validate.MaxEmailLen || strings.Count(s, "@") != 1 || at > 64 || !emailShape.MatchString(s) {
			t.Fatalf("accepted malformed email %q", s)
		}
		if validate.Hostname(s[at+1:]) != nil || !strings.Contains(s[at+1:], ".") || strings.HasSuffix(s, ".") {
			t.Fatalf("accepted email %q with a bad domain", s)
		}
	})
}

func FuzzHostname(f *testing.F) {
	for _, s := range []string{"a", "web-01.example.com", "-a", "a..b", "x.", strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validate.Hostname(s) != nil {
			return
		}
		if len(strings.TrimSuffix(s, ".")) > 253 || !hostnameShape.MatchString(s) {
			t.Fatalf("accepted bad hostname %q", s)
		}
	})
}

func FuzzHexColor(f *testing.F) {
	for _, s := range []string{"#3B82F6", "#abc", "3B82F6", "#GGGGGG"} {
		f.Add(s)
	}
	re := regexp.MustCompile(`^#[0-9A-Fa-f]{6}$`)
	f.Fuzz(func(t *testing.T, s string) {
		if (validate.HexColor(s) == nil) != re.MatchString(s) {
			t.Fatalf("HexColor(%q) disagrees with the database CHECK", s)
		}
	})
}

func FuzzGroupName(f *testing.F) {
	for _, s := range []string{"Servers", "  padded  ", "", strings.Repeat("x", 51), "a\x00b", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := validate.GroupName(s)
		if err != nil {
			return
		}
		n := utf8.RuneCountInString(got)
		if got != strings.TrimSpace(got) || n < 1 || n > validate.MaxGroupNameLen || !utf8.ValidString(got) {
			t.Fatalf("GroupName(%q) = %q", s, got)
		}
		if again, err := validate.GroupName(got); err != nil || again != got {
			t.Fatalf("GroupName is not idempotent on %q", got)
		}
	})
}
