package config

import (
	"strings"
	"testing"
)

func TestAIDefaults(t *testing.T) {
	a, err := LoadAI(env(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if a.Enabled() || a.URL != DefaultAIURL || a.Model != DefaultAIModel || a.MaxCallsPerRun != DefaultDriftAICalls {
		t.Fatalf("defaults: %+v", a)
	}
	a, err = LoadAI(env(map[string]string{"AI_API_KEY": "k", "AI_API_URL": "http://127.0.0.1:8080/v1/messages", "AI_MODEL": "m", "DRIFT_AI_MAX_CALLS": "0"}))
	if err != nil || !a.Enabled() || a.URL != "http://127.0.0.1:8080/v1/messages" || a.Model != "m" || a.MaxCallsPerRun != 0 {
		t.Fatalf("values: %+v %v", a, err)
	}
}

func TestAIRefusals(t *testing.T) {
	for _, c := range []struct{ k, v, want string }{
		{"AI_API_URL", "http://api.example.com/v1/messages", "AI_API_URL"},
		{"AI_API_URL", "ftp://x", "AI_API_URL"},
		{"AI_MODEL", strings.Repeat("m", 101), "AI_MODEL"},
		{"DRIFT_AI_MAX_CALLS", "-1", "DRIFT_AI_MAX_CALLS"},
		{"DRIFT_AI_MAX_CALLS", "lots", "DRIFT_AI_MAX_CALLS"},
	} {
		_, err := LoadAI(env(map[string]string{c.k: c.v}))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%q: %v", c.k, c.v, err)
		}
	}
}
