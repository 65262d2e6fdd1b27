// Where the status page reads GET /status. Empty: the page's own origin (the local stack).
// The deployment replaces this file with the API domain (infra/stack/cdn.go).
window.OPTRALIS_STATUS_CONFIG = { apiUrl: "" };
