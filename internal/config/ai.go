package config

import (
	"errors"
	"fmt"
	"net"
	neturl "net/url"
	"strconv"
	"strings"
)

// DefaultAIURL is the Anthropic Messages API (the spec names the Claude API).
const DefaultAIURL = "https://api.anthropic.com/v1/messages"

// DefaultAIModel is the model asked when AI_MODEL is not set.
const DefaultAIModel = "claude-haiku-4-5"

// DefaultDriftAICalls is the default bound on provider calls per drift run.
const DefaultDriftAICalls = 20

// AI is the optional AI provider (drift explanations). Key empty: no provider; the drift
// job then writes explanations from a template.
type AI struct {
	Key   string // AI_API_KEY (on AWS: AI_API_KEY_SECRET_ARN, resolved at cold start)
	URL   string // AI_API_URL
	Model string // AI_MODEL
	// MaxCallsPerRun bounds the drift job's provider calls per run (DRIFT_AI_MAX_CALLS).
	MaxCallsPerRun int
}

// Enabled reports whether a provider is configured.
func (a AI) Enabled() bool { return a.Key != "" }

// LoadAI reads the AI provider settings. The URL must be https, except on a loopback host
// (a local stand-in for the provider).
func LoadAI(getenv func(string) string) (AI, error) {
	a := AI{
		Key:            strings.TrimSpace(getenv("AI_API_KEY")),
		URL:            strings.TrimSpace(getenv("AI_API_URL")),
		Model:          strings.TrimSpace(getenv("AI_MODEL")),
		MaxCallsPerRun: DefaultDriftAICalls,
	}
	if a.URL == "" {
		a.URL = DefaultAIURL
	}
	if a.Model == "" {
		a.Model = DefaultAIModel
	}
	u, err := neturl.Parse(a.URL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && loopback(u.Hostname()))) {
		return AI{}, errors.New("AI_API_URL must be an https:// URL (http:// only on a loopback host)")
	}
	if len(a.Model) > 100 {
		return AI{}, errors.New("AI_MODEL is longer than 100 characters")
	}
	if v := strings.TrimSpace(getenv("DRIFT_AI_MAX_CALLS")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			return AI{}, fmt.Errorf("DRIFT_AI_MAX_CALLS must be a whole number between 0 and 1000, not %q", v)
		}
		a.MaxCallsPerRun = n
	}
	return a, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
