package enrol

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/optralis/optralis/internal/agentreq"
	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/audit"
	"github.com/optralis/optralis/internal/ca"
	"github.com/optralis/optralis/internal/cache"
	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/clock"
	"github.com/optralis/optralis/internal/db"
	"github.com/optralis/optralis/internal/fleetcache"
	"github.com/optralis/optralis/internal/httpx"
	"github.com/optralis/optralis/internal/tokenhash"
	"github.com/optralis/optralis/internal/validate"
)

// Deps are what enrolment needs.
type Deps struct {
	Pool   *pgxpool.Pool
	Cache  cache.Store // the machine count (licence check) and list caches
	CA     *ca.CA      // nil: bootstrap answers 503
	Clock  clock.Clock
	Logger *slog.Logger
	// AgentEndpoint is the agents domain URL handed to enrolled agents (AGENT_ENDPOINT).
	AgentEndpoint string
	// PublicAPIURL is the API domain's public URL, used by the installer and the
	// ready-to-paste command (PUBLIC_API_URL).
	PublicAPIURL string
	// AgentDownloadURL is the base URL the installer downloads the agent from
	// (AGENT_DOWNLOAD_URL; empty: the installer skips the download).
	AgentDownloadURL string
	// AllowServerKeys lets a bootstrap without CSR receive a key made by the server
	// (older installers; ALLOW_SERVER_GENERATED_KEYS). Off by default.
	AllowServerKeys bool
}

// Architectures an agent is built for.
func Architectures() []string { return []string{"amd64", "arm64", "armv7", "386"} }

// OperatingSystems that enrol.
func OperatingSystems() []string { return []string{"linux", "windows"} }

// MaxBootstrapBody bounds a bootstrap request (a CSR is a few KB).
const MaxBootstrapBody = 64 << 10

// Request is the bootstrap body.
type Request struct {
	Token     string `json:"token"`
	Arch      string `json:"arch"`
	Hostname  string `json:"hostname"`
	OS        string `json:"os"`
	OSVersion string `json:"os_version"`
	CSR       string `json:"csr"` // PEM CERTIFICATE REQUEST; the agent keeps its key
	// Windows only: the build (e.g. 26100) and product type ("client" or "server"),
	// checked against the agent requirements.
	OSBuild     int    `json:"os_build,omitempty"`
	WindowsType string `json:"windows_type,omitempty"`
	// MachineFingerprint is the machine's stable identity as the agent sees it (a hash of
	// /etc/machine-id, the Windows MachineGuid): a reinstalled agent sending the same one
	// takes its machine back instead of enrolling a duplicate. Optional.
	MachineFingerprint string `json:"machine_fingerprint,omitempty"`
}

// Bounds of a machine fingerprint, in characters.
const (
	MinFingerprintLen = 16
	MaxFingerprintLen = 256
)

// FingerprintHash is a fingerprint's stored form (machines.fingerprint_hash): SHA-256 hex
// of the client and the fingerprint, so the raw identifier is never stored and one
// machine's hashes in two clients cannot be matched.
func FingerprintHash(clientID, fingerprint string) string {
	return tokenhash.Sum("optralis-machine-fingerprint\x00" + clientID + "\x00" + fingerprint)
}

// Heartbeat is how often the agent reports (spec "Intervalle Dynamique").
type Heartbeat struct {
	IntervalSeconds      int `json:"interval_seconds"`
	AlertIntervalSeconds int `json:"alert_interval_seconds"`
	AlertCPUPercent      int `json:"alert_cpu_percent"`
	AlertRAMPercent      int `json:"alert_ram_percent"`
}

// DefaultHeartbeat is 60 s normally, 30 s while CPU > 80 % or RAM > 85 %.
func DefaultHeartbeat() Heartbeat {
	return Heartbeat{IntervalSeconds: 60, AlertIntervalSeconds: 30, AlertCPUPercent: 80, AlertRAMPercent: 85}
}

// Result is what an enrolled agent receives.
type Result struct {
	MachineID     string    `json:"machine_id"`
	ClientID      string    `json:"client_id"`
	Certificate   string    `json:"certificate"` // PEM
	CAChain       string    `json:"ca_chain"`    // PEM of the CA that signs machine certificates
	Serial        string    `json:"serial"`
	ExpiresAt     time.Time `json:"expires_at"`
	PrivateKey    string    `json:"private_key,omitempty"` // only when the server made the key (no CSR)
	AgentEndpoint string    `json:"agent_endpoint"`
	Heartbeat     Heartbeat `json:"heartbeat"`
	// ReEnrolled tells that the fingerprint matched a machine already enrolled: this is
	// that machine, and its earlier certificate no longer works.
	ReEnrolled bool `json:"re_enrolled"`
}

// ErrInvalidToken is the one answer to every bad token: unknown, malformed, expired,
// revoked or used up alike, so the answer tells nothing about which.
var ErrInvalidToken = apperr.New(apperr.Unauthenticated, "invalid or expired install token")

func (r *Request) validate(allowServerKeys bool) (crypto.PublicKey, error) {
	bad := map[string]string{}
	r.Hostname = strings.TrimSpace(r.Hostname)
	if err := validate.Hostname(r.Hostname); err != nil {
		bad["hostname"] = err.Error()
	}
	if !slices.Contains(Architectures(), r.Arch) {
		bad["arch"] = "must be one of " + strings.Join(Architectures(), ", ")
	}
	if !slices.Contains(OperatingSystems(), r.OS) {
		bad["os"] = "must be one of " + strings.Join(OperatingSystems(), ", ")
	}
	r.OSVersion = strings.TrimSpace(r.OSVersion)
	if !utf8.ValidString(r.OSVersion) || utf8.RuneCountInString(r.OSVersion) > 255 || strings.IndexFunc(r.OSVersion, unicode.IsControl) >= 0 {
		bad["os_version"] = "must be at most 255 characters of text"
	}
	if r.OS == "windows" {
		if r.WindowsType != agentreq.WindowsClient && r.WindowsType != agentreq.WindowsServer {
			bad["windows_type"] = "must be client or server for windows"
		}
		if r.OSBuild <= 0 || r.OSBuild > agentreq.MaxBuild {
			bad["os_build"] = "must be the Windows build number, e.g. 26100"
		}
	} else if r.OSBuild != 0 || r.WindowsType != "" {
		bad["os"] = "os_build and windows_type are for windows only"
	}
	if f := r.MachineFingerprint; f != "" && (len(f) < MinFingerprintLen || len(f) > MaxFingerprintLen ||
		strings.IndexFunc(f, func(c rune) bool { return c <= ' ' || c > '~' }) >= 0) {
		bad["machine_fingerprint"] = "must be 16 to 256 printable ASCII characters without spaces"
	}
	var pub crypto.PublicKey
	switch {
	case r.CSR != "":
		csr, err := ca.ParseCSR([]byte(r.CSR))
		if err != nil {
			bad["csr"] = publicCSRError(err)
		} else {
			pub = csr.PublicKey
		}
	case !allowServerKeys:
		bad["csr"] = "required: a PEM certificate request for the agent's own key"
	}
	if len(bad) > 0 {
		return nil, apperr.InvalidFields(bad)
	}
	return pub, nil
}

func publicCSRError(err error) string {
	for _, known := range []error{ca.ErrMalformedCSR, ca.ErrCSRSignature, ca.ErrKeyType} {
		if errors.Is(err, known) {
			return known.Error()
		}
	}
	return ca.ErrMalformedCSR.Error()
}

// Bootstrap exchanges an install token for an enrolled machine and its certificate. In
// one transaction: the token's use is counted (atomically: exactly max_usage bootstraps
// succeed however many race), the client's licence and the agent requirements are
// checked under the client's row lock, the machine is created — or, when the request's
// fingerprint names a live machine of the client, taken back without counting against
// the licence again — and its certificate signed and recorded (superseding any earlier
// one). Any refusal rolls everything back, the token's use included.
func Bootstrap(ctx context.Context, d Deps, req Request, ip string) (Result, error) {
	pub, err := req.validate(d.AllowServerKeys)
	if err != nil {
		return Result{}, err
	}
	if !WellFormed(req.Token) {
		d.Logger.InfoContext(ctx, "bootstrap refused", "reason", "malformed token", "ip", ip)
		return Result{}, ErrInvalidToken
	}
	if d.CA == nil || d.AgentEndpoint == "" {
		d.Logger.ErrorContext(ctx, "bootstrap unavailable: no certificate authority or AGENT_ENDPOINT configured")
		return Result{}, apperr.New(apperr.Unavailable, "enrolment is not configured on this server")
	}
	var keyPEM []byte
	if pub == nil { // server-made key, for installers that cannot make a CSR
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return Result{}, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return Result{}, err
		}
		keyPEM, pub = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), &key.PublicKey
	}

	var res Result
	// A concurrent bootstrap that created the machine of this fingerprint first makes
	// this one's insert fail: the next attempt finds that machine and takes it back.
	for attempt := 1; ; attempt++ {
		res, err = d.enrol(ctx, req, pub, keyPEM != nil, ip)
		if !errors.Is(err, errFingerprintTaken) || attempt == 3 {
			break
		}
	}
	if err != nil {
		return Result{}, err
	}
	res.CAChain = string(d.CA.CertPEM)
	res.PrivateKey = string(keyPEM)
	res.AgentEndpoint = d.AgentEndpoint
	res.Heartbeat = DefaultHeartbeat()
	d.Logger.InfoContext(ctx, "machine enrolled", "client_id", res.ClientID, "machine_id", res.MachineID, "serial", res.Serial,
		"re_enrolled", res.ReEnrolled)
	return res, nil
}

// errFingerprintTaken is a machine insert that lost the race for its fingerprint.
var errFingerprintTaken = apperr.New(apperr.Conflict, "this machine is being enrolled by another request; retry")

// enrol is one attempt of Bootstrap's transaction, then the cache invalidation.
func (d Deps) enrol(ctx context.Context, req Request, pub crypto.PublicKey, serverKey bool, ip string) (Result, error) {
	now := d.Clock.Now()
	hash := tokenhash.Sum(req.Token)
	var res Result
	var superseded []string
	err := db.InTxAt(ctx, d.Pool, now, func(tx *db.Tx) error {
		var tokenID, clientID, storedHash string
		var createdBy *string
		err := tx.QueryRow(ctx, `
			UPDATE install_tokens SET usage_count = usage_count + 1, updated_at = $2
			WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2
			  AND (max_usage = 0 OR usage_count < max_usage)
			RETURNING id::text, client_id::text, token_hash, created_by::text`, hash, now).
			Scan(&tokenID, &clientID, &storedHash, &createdBy)
		if db.IsNoRows(err) || (err == nil && subtle.ConstantTimeCompare([]byte(storedHash), []byte(hash)) != 1) {
			d.Logger.InfoContext(ctx, "bootstrap refused", "reason", "unknown, expired, revoked or used-up token", "ip", ip)
			return ErrInvalidToken
		}
		if err != nil {
			return db.Error(err, "enrol: use token")
		}
		res.ClientID = clientID
		maxMachines, err := checkLicence(ctx, tx, clientID, tx.Now)
		if err != nil {
			return err
		}
		reqs, err := agentreq.Get(ctx, tx)
		if err != nil {
			return err
		}
		if err := reqs.Check(req.OS, req.WindowsType, req.OSBuild); err != nil {
			return err
		}
		userID := ""
		if createdBy != nil {
			userID = *createdBy
		}
		var fingerprint string
		if req.MachineFingerprint != "" {
			fingerprint = FingerprintHash(clientID, req.MachineFingerprint)
			if res.MachineID, err = reEnrol(ctx, tx, clientID, fingerprint, req, ip); err != nil {
				return err
			}
			res.ReEnrolled = res.MachineID != ""
		}
		details := map[string]any{"token_id": tokenID, "hostname": req.Hostname, "os": req.OS, "arch": req.Arch,
			"server_generated_key": serverKey}
		action := "machine_re_enrolled"
		var count int
		if !res.ReEnrolled {
			action = "machine_enrolled"
			if count, err = CountMachines(ctx, tx, clientID); err != nil {
				return err
			}
			if count >= maxMachines {
				return apperr.New(apperr.PaymentRequired, "machine limit reached: %d of %d machines enrolled; upgrade the licence or remove a machine", count, maxMachines)
			}
			if res.MachineID, err = createMachine(ctx, tx, clientID, fingerprint, req, ip); err != nil {
				return err
			}
		}
		if err := audit.Log(ctx, tx, tx.Now, audit.Entry{ClientID: clientID, UserID: userID, MachineID: res.MachineID, IP: ip,
			Action: action, Details: details}); err != nil {
			return err
		}
		reason := "enrolment"
		if res.ReEnrolled {
			reason = "re-enrolment"
		}
		issued, err := certs.IssueTx(ctx, tx, d.CA, certs.IssueRequest{ClientID: clientID, MachineID: res.MachineID,
			PublicKey: pub, CreatedBy: userID, IP: ip, Reason: reason})
		if err != nil {
			return err
		}
		res.Certificate, res.Serial, res.ExpiresAt = string(issued.CertPEM), issued.Serial, issued.ExpiresAt
		superseded = issued.Superseded
		return nil
	})
	// After the commit: the lists show the machine, the count is read again; a re-enrolled
	// machine's old certificates are refused before their heartbeats' bodies are read.
	if err == nil {
		refused := make([]certs.Refusal, len(superseded))
		for i, s := range superseded {
			refused[i] = certs.Refusal{Serial: s}
		}
		certs.Marks{Store: d.Cache}.Refuse(context.WithoutCancel(ctx), now, refused...)
		fleetcache.Invalidate(context.WithoutCancel(ctx), d.Cache, res.ClientID)
	}
	return res, err
}

// reEnrol takes back the client's live machine of this fingerprint, if any: its
// description is refreshed from the request, and it will be sent its collector
// configuration again (the new agent has none). "" when there is no such machine.
func reEnrol(ctx context.Context, tx *db.Tx, clientID, fingerprint string, req Request, ip string) (string, error) {
	var id string
	err := tx.QueryRow(ctx, `
		UPDATE machines SET hostname = $3, os = $4, os_version = $5, os_build = $6, arch = $7,
		    ip_address = COALESCE(NULLIF($8, ''), ip_address), last_config_sync = NULL, updated_at = $9
		WHERE client_id = $1 AND fingerprint_hash = $2 AND deleted_at IS NULL
		RETURNING id::text`, clientID, fingerprint, req.Hostname, req.OS, req.OSVersion, osBuild(req), req.Arch, ip, tx.Now).Scan(&id)
	if db.IsNoRows(err) {
		return "", nil
	}
	return id, db.Error(err, "enrol: re-enrol machine")
}

func createMachine(ctx context.Context, tx *db.Tx, clientID, fingerprint string, req Request, ip string) (string, error) {
	var id string
	err := tx.QueryRow(ctx, `
		INSERT INTO machines (client_id, hostname, os, os_version, os_build, arch, ip_address, fingerprint_hash,
		    collector_config_updated_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), NULLIF($8, ''), $9, $9, $9) RETURNING id::text`,
		clientID, req.Hostname, req.OS, req.OSVersion, osBuild(req), req.Arch, ip, fingerprint, tx.Now).Scan(&id)
	// The only unique key a new machine can collide on is its fingerprint's.
	return id, db.Error(err, "enrol: create machine", db.On(db.UniqueViolation, errFingerprintTaken))
}

func osBuild(req Request) *int {
	if req.OS == "windows" {
		return &req.OSBuild
	}
	return nil
}

// checkLicence locks the client's row (bootstraps of one client run one after another,
// which keeps the machine count exact), refuses a disabled client or an expired licence,
// and returns the licence's machine limit.
func checkLicence(ctx context.Context, tx db.Querier, clientID string, now time.Time) (maxMachines int, err error) {
	var active bool
	var expires *time.Time
	if err := tx.QueryRow(ctx, `SELECT is_active, license_expires_at, max_machines FROM clients WHERE id = $1 FOR UPDATE`, clientID).
		Scan(&active, &expires, &maxMachines); err != nil {
		return 0, db.Error(err, "enrol: client")
	}
	if !active {
		return 0, apperr.New(apperr.Forbidden, "this client account is disabled: machines cannot be enrolled")
	}
	if expires != nil && !expires.After(now) {
		return 0, apperr.New(apperr.PaymentRequired, "the licence expired on %s: renew it to enrol machines", expires.UTC().Format("2006-01-02"))
	}
	return maxMachines, nil
}

// HandleBootstrap is POST /api/public/bootstrap.
func HandleBootstrap(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		var req Request
		if err := httpx.DecodeJSONLimit(r, &req, MaxBootstrapBody); err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		res, err := Bootstrap(r.Context(), d, req, httpx.ClientIP(r))
		if err != nil {
			httpx.WriteError(w, r, d.Logger, err)
			return
		}
		httpx.WriteJSON(w, http.StatusCreated, res)
	})
}
