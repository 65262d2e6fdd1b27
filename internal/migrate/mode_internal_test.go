package migrate

import (
	"strings"
	"testing"
)

// TestChooseMode: auto picks timescale only when the extension is usable. A server where
// it is listed but not preloaded got timescale and then "FATAL: extension "timescaledb"
// must be preloaded" in the migration; it now gets postgres mode and says why.
func TestChooseMode(t *testing.T) {
	for _, c := range []struct {
		name      string
		requested string
		ts        Timescale
		mode      string
		reason    string // a part of the reason, or of the error when mode is ""
	}{
		{"not available", ModeAuto, Timescale{}, ModePostgres, "not available"},
		{"listed, not preloaded", ModeAuto, Timescale{Listed: true}, ModePostgres, "not preloaded"},
		{"listed and preloaded", ModeAuto, Timescale{Listed: true, Preloaded: true}, ModeTimescale, "preloaded"},
		{"already installed here", "", Timescale{Listed: true, Installed: true}, ModeTimescale, "installed in this database"},
		{"probe failed", ModeAuto, Timescale{Listed: true, Probed: true}, ModePostgres, "CREATE EXTENSION fails"},
		{"probe worked", ModeAuto, Timescale{Listed: true, Probed: true, Preloaded: true}, ModeTimescale, "rolled back"},
		{"timescale asked, not preloaded", ModeTimescale, Timescale{Listed: true}, "", "not preloaded"},
		{"timescale asked, absent", ModeTimescale, Timescale{}, "", "not available"},
		{"timescale asked, usable", ModeTimescale, Timescale{Listed: true, Preloaded: true}, ModeTimescale, "requested"},
	} {
		mode, reason, err := chooseMode(c.requested, c.ts)
		if c.mode == "" {
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("%s: err = %v, want one saying %q", c.name, err, c.reason)
			}
			continue
		}
		if err != nil || mode != c.mode || !strings.Contains(reason, c.reason) {
			t.Errorf("%s: got %q (%q, %v), want %q saying %q", c.name, mode, reason, err, c.mode, c.reason)
		}
	}
}

func TestPreloads(t *testing.T) {
	for setting, want := range map[string]bool{
		"": false, "timescaledb": true, "pg_stat_statements, timescaledb": true,
		`"timescaledb"`: true, "$libdir/timescaledb": true, "timescaledb_toolkit": false, "pg_stat_statements": false,
	} {
		if got := preloads(setting); got != want {
			t.Errorf("preloads(%q) = %v, want %v", setting, got, want)
		}
	}
}
