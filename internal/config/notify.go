package config

import (
	"fmt"
	"strconv"
	"strings"
)

// NotifyAllowInsecureURLs reads NOTIFY_ALLOW_INSECURE_URLS: whether notification channels
// may post to plain http and to loopback or private addresses (the local stack and tests;
// never in production, where a user could aim a webhook at the VPC). Default false.
func NotifyAllowInsecureURLs(getenv func(string) string) (bool, error) {
	v := strings.TrimSpace(getenv("NOTIFY_ALLOW_INSECURE_URLS"))
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("NOTIFY_ALLOW_INSECURE_URLS must be true or false, not %q", v)
	}
	return b, nil
}
