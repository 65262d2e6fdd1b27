package alertrules

import (
	"testing"

	json "github.com/goccy/go-json"
)

func parse(t *testing.T, js string) (Patch, map[string]string) {
	t.Helper()
	var b Body
	if err := json.Unmarshal([]byte(js), &b); err != nil {
		t.Fatal(err)
	}
	return b.Parse()
}

func f64(v float64) *float64 { return &v }
func sp(v string) *string    { return &v }

// A body applies member by member: the kind decides which members are required, which are
// refused when sent and which are dropped when a former kind left them.
func TestApply(t *testing.T) {
	metric := Spec{Name: "cpu", Kind: "metric", Metric: sp("cpu"), Threshold: f64(90), RecoveryThreshold: f64(80), Severity: "warning", Enabled: true}
	for _, c := range []struct {
		name  string
		base  Spec
		body  string
		bad   []string
		check func(Spec) bool
	}{
		{"create metric", NewSpec(), `{"name":"x","kind":"metric","metric":"latency","threshold":250}`, nil,
			func(s Spec) bool {
				return *s.Threshold == 250 && s.RecoveryThreshold == nil && s.Enabled && s.Severity == "warning"
			}},
		{"kind change drops the former kind's members", metric, `{"kind":"offline","grace_seconds":0}`, nil,
			func(s Spec) bool {
				return s.Metric == nil && s.Threshold == nil && s.RecoveryThreshold == nil && *s.GraceSeconds == 0
			}},
		{"kind change needs the new kind's members", metric, `{"kind":"certificate"}`, []string{"days"}, nil},
		{"members of another kind refused when sent", metric, `{"days":3}`, []string{"days"}, nil},
		{"recovery above the new threshold", metric, `{"threshold":70}`, []string{"recovery_threshold"}, nil},
		{"recovery cleared", metric, `{"threshold":70,"recovery_threshold":null}`, nil, func(s Spec) bool { return s.RecoveryThreshold == nil }},
		{"threshold required", metric, `{"threshold":null}`, []string{"threshold"}, nil},
		{"metric not null", metric, `{"metric":null}`, []string{"metric"}, nil},
		{"temperature range follows the metric", metric, `{"metric":"cpu_temp","threshold":120,"recovery_threshold":110}`, nil,
			func(s Spec) bool { return *s.Metric == "cpu_temp" }},
		{"percent range", metric, `{"metric":"ram","threshold":120}`, []string{"threshold"}, nil},
		{"name trimmed", metric, `{"name":"  disk  "}`, nil, func(s Spec) bool { return s.Name == "disk" }},
		{"name with a control character", metric, `{"name":"a\u0000b"}`, []string{"name"}, nil},
		{"scope both", metric, `{"group_id":"7f9c1e4a-5a55-4a53-9d8e-111111111111","machine_id":"7f9c1e4a-5a55-4a53-9d8e-222222222222"}`,
			[]string{"group_id", "machine_id"}, nil},
		{"pattern", NewSpec(), `{"name":"s","kind":"service","service_pattern":"  sql*  "}`, nil, func(s Spec) bool { return *s.ServicePattern == "sql*" }},
		{"wrong types", metric, `{"pending_seconds":1.5,"enabled":1,"severity":3}`, []string{"pending_seconds", "enabled", "severity"}, nil},
	} {
		p, bad := parse(t, c.body)
		s := p.Apply(c.base, bad)
		for _, f := range c.bad {
			if bad[f] == "" {
				t.Errorf("%s: %v does not name %s", c.name, bad, f)
			}
		}
		if len(c.bad) == 0 && len(bad) > 0 {
			t.Errorf("%s: refused: %v", c.name, bad)
		}
		if c.check != nil && len(bad) == 0 && !c.check(s) {
			t.Errorf("%s: %+v", c.name, s)
		}
	}
}

func TestCloses(t *testing.T) {
	base := Spec{Kind: "metric", Metric: sp("cpu"), Threshold: f64(90), Enabled: true, Severity: "warning"}
	same := base
	same.Threshold, same.Severity, same.Name = f64(80), "critical", "renamed"
	if closes(base, same) {
		t.Error("a threshold, severity or name change closes episodes")
	}
	for name, change := range map[string]func(*Spec){
		"metric":   func(s *Spec) { s.Metric = sp("ram") },
		"kind":     func(s *Spec) { s.Kind, s.Metric = "smart", nil },
		"group":    func(s *Spec) { s.GroupID = sp("g") },
		"machine":  func(s *Spec) { s.MachineID = sp("m") },
		"disabled": func(s *Spec) { s.Enabled = false },
	} {
		s := base
		change(&s)
		if !closes(base, s) {
			t.Errorf("%s change keeps episodes open", name)
		}
	}
}
