package apperr

// Refusals several packages answer alike, written once. Each is generic on purpose: the
// reason goes to the log, not to the client.
var (
	// ErrUnauthenticated answers a request without a valid session or credential.
	ErrUnauthenticated = New(Unauthenticated, "authentication required")
	// ErrNoClientCert answers an agent route reached without a verified client certificate.
	ErrNoClientCert = New(Unauthenticated, "a client certificate is required")
)
