package config

import "testing"

func TestLicenceGraceDays(t *testing.T) {
	for v, want := range map[string]int{"": DefaultLicenceGraceDays, "0": 0, "30": 30, " 7 ": 7, "365": 365} {
		if n, err := LicenceGraceDays(func(string) string { return v }); err != nil || n != want {
			t.Errorf("%q: %d %v, want %d", v, n, err, want)
		}
	}
	for _, v := range []string{"-1", "366", "two", "1.5"} {
		if _, err := LicenceGraceDays(func(string) string { return v }); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}
