package config

import (
	"fmt"
	neturl "net/url"
	"strings"
)

// AIHealthURL is where the uptime check asks the AI provider for its health (spec: "HTTP
// GET /health"): AI_HEALTH_URL when set, otherwise AI_API_URL followed by /health; empty
// when neither is set (no provider configured: the ai service is not checked).
func AIHealthURL(getenv func(string) string) (string, error) {
	name, raw := "AI_HEALTH_URL", strings.TrimSpace(getenv("AI_HEALTH_URL"))
	if raw == "" {
		name, raw = "AI_API_URL", strings.TrimSpace(getenv("AI_API_URL"))
		if raw == "" {
			return "", nil
		}
		if err := httpURL(name, raw); err != nil {
			return "", err
		}
		return strings.TrimSuffix(raw, "/") + "/health", nil
	}
	return raw, httpURL(name, raw)
}

func httpURL(name, raw string) error {
	u, err := neturl.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s must be an http:// or https:// URL, not %q", name, raw)
	}
	return nil
}
