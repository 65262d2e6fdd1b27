package config

// DashboardURL reads DASHBOARD_URL, the dashboard's base URL that links in mails point at
// (optional; an http(s) URL without credentials, query or fragment).
func DashboardURL(getenv func(string) string) (string, error) {
	return baseURL("DASHBOARD_URL", getenv("DASHBOARD_URL"), false)
}
