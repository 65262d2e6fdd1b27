package collectorcfg_test

import (
	"testing"

	json "github.com/goccy/go-json"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/collectorcfg"
)

func parse(t *testing.T, body string) (collectorcfg.Config, map[string]string) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	c, err := collectorcfg.Parse(m)
	if e, ok := apperr.As(err); ok {
		return nil, e.Fields
	}
	return c, nil
}

// The layers overlay field by field: built-in, then the client's default, then the machine's.
func TestEffectiveOverlaysFieldByField(t *testing.T) {
	def, bad := parse(t, `{"services":{"enabled":false,"interval_seconds":600},"patches":{"interval_seconds":3600}}`)
	own, bad2 := parse(t, `{"services":{"interval_seconds":120}}`)
	if bad != nil || bad2 != nil {
		t.Fatal(bad, bad2)
	}
	eff := collectorcfg.Effective(def, own, collectorcfg.Config{"unknown": {}})
	if len(eff) != len(collectorcfg.Names()) {
		t.Fatalf("%d collectors", len(eff))
	}
	for name, want := range map[string]struct {
		enabled  bool
		interval int
	}{"services": {false, 120}, "patches": {true, 3600}, "software": {true, 86400}, "metrics": {true, 60}} {
		if e := eff[name]; *e.Enabled != want.enabled || *e.IntervalSeconds != want.interval {
			t.Errorf("%s = %v/%v, want %+v", name, *e.Enabled, *e.IntervalSeconds, want)
		}
	}
	// Effective copies: changing its entries leaves the layers alone.
	*eff["services"].IntervalSeconds = 1
	if *own["services"].IntervalSeconds != 120 {
		t.Error("Effective aliased a layer's value")
	}
}

func TestParseNamesEachProblem(t *testing.T) {
	_, bad := parse(t, `{"nope":{"enabled":true},"software":{"enabled":1,"extra":true},"network":{"interval_seconds":30.5},"metrics":{"enabled":false}}`)
	for _, f := range []string{"nope", "software.enabled", "software.extra", "network.interval_seconds", "metrics.enabled"} {
		if bad[f] == "" {
			t.Errorf("%s not reported: %v", f, bad)
		}
	}
	if c, bad := parse(t, `{"events":{"enabled":false,"interval_seconds":30},"storage":{"interval_seconds":86400}}`); bad != nil || len(c) != 2 {
		t.Errorf("valid configuration refused: %v", bad)
	}
}

func TestStored(t *testing.T) {
	for _, raw := range []string{"", "{}", `{"software":{"enabled":false}}`} {
		if _, err := collectorcfg.Stored([]byte(raw)); err != nil {
			t.Errorf("%q: %v", raw, err)
		}
	}
	if _, err := collectorcfg.Stored([]byte(`[1]`)); err == nil {
		t.Error("a non-object was accepted")
	}
}
