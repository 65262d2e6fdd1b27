package config

import (
	"strings"
	"testing"
)

func TestDashboard(t *testing.T) {
	cors := []string{"https://app.example.com", "http://localhost:3001"}
	for _, tc := range []struct {
		v    string
		cors []string
		want string
	}{
		{"", cors, "https://app.example.com"},
		{"", []string{"*"}, ""},
		{"", nil, ""},
		{"https://dash.example.com/", cors, "https://dash.example.com"},
		{" https://dash.example.com/app ", nil, "https://dash.example.com/app"},
		{"http://localhost:5173", nil, "http://localhost:5173"},
		{"http://127.0.0.1:5173", nil, "http://127.0.0.1:5173"},
	} {
		got, err := Dashboard(env(map[string]string{"DASHBOARD_URL": tc.v}), tc.cors)
		if err != nil || got != tc.want {
			t.Errorf("DASHBOARD_URL=%q cors %v: %q %v, want %q", tc.v, tc.cors, got, err, tc.want)
		}
	}
	for _, bad := range []string{"http://dash.example.com", "dash.example.com", "https://u:p@dash.example.com",
		"https://dash.example.com/?x=1", "https://dash.example.com/#x", "ftp://dash.example.com", "https://"} {
		_, err := Dashboard(env(map[string]string{"DASHBOARD_URL": bad}), nil)
		if err == nil || !strings.Contains(err.Error(), "DASHBOARD_URL") {
			t.Errorf("DASHBOARD_URL=%q accepted (%v)", bad, err)
		}
	}
}

func TestLoadSES(t *testing.T) {
	s, err := LoadSES(env(nil))
	if err != nil || s.Enabled() {
		t.Fatalf("default: %+v %v", s, err)
	}
	s, err = LoadSES(env(map[string]string{"SES_FROM": "noreply@optralis.example", "SES_IDENTITY_ARN": "arn:aws:ses:eu-west-3:111111111111:identity/optralis.example"}))
	if err != nil || !s.Enabled() || s.IdentityARN == "" {
		t.Fatalf("values: %+v %v", s, err)
	}
	for name, m := range map[string]map[string]string{
		"SES_FROM":         {"SES_FROM": "not an address"},
		"SES_IDENTITY_ARN": {"SES_FROM": "a@b.co", "SES_IDENTITY_ARN": "arn:aws:kms:eu-west-3:1:key/x"},
		"SES_FROM is req":  {"SES_IDENTITY_ARN": "arn:aws:ses:eu-west-3:1:identity/b.co"},
	} {
		if _, err := LoadSES(env(m)); err == nil || !strings.Contains(err.Error(), strings.Fields(name)[0]) {
			t.Errorf("%v: %v", m, err)
		}
	}
}
