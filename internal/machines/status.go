// Package machines is the dashboard's view of a client's fleet: the machine list, a
// machine's details, renaming, notes, group membership and deletion, and the fleet overview.
package machines

import (
	"fmt"
	"time"

	"github.com/optralis/optralis/internal/certs"
)

// Status is whether a machine answers, computed at request time from when its next
// heartbeat was due; never stored.
type Status string

const (
	StatusOnline  Status = "online"
	StatusOffline Status = "offline"
	// StatusAlert is online with the last heartbeat over the spec's alert thresholds.
	StatusAlert Status = "alert"
)

// Alert thresholds of the spec's "Intervalle Dynamique": above them the agent reports every
// 30 s instead of 60 s, and the dashboard shows the machine in alert.
const (
	AlertCPUPercent = 80
	AlertRAMPercent = 85
)

// Online window. The heartbeat records when the next heartbeat is due (its time plus the
// interval it answered: 30 or 60 s). A machine stays online until that instant plus a
// grace of one more interval, and at least MinGrace, so one lost or slow heartbeat does
// not flap it offline:
//
//	online ⟺ now ≤ due + max(MinGrace, due − last_seen)
//
// At 60 s that is 2 minutes after the last heartbeat, at 30 s 90 seconds. A machine whose
// row predates heartbeat_due_at (a heartbeat before migration 00006) is taken as due
// DefaultInterval after it was last seen; a machine never seen is offline.
const (
	MinGrace        = 60 * time.Second
	DefaultInterval = 60 * time.Second
)

// OnlineUntil is the last instant a machine counts as online, and false for a machine
// never seen. It is the Go twin of onlineSQL; tests hold them to the same answers.
func OnlineUntil(lastSeen, due *time.Time) (time.Time, bool) {
	if due == nil {
		if lastSeen == nil {
			return time.Time{}, false
		}
		d := lastSeen.Add(DefaultInterval)
		due = &d
	}
	grace := MinGrace
	if lastSeen != nil && due.Sub(*lastSeen) > grace {
		grace = due.Sub(*lastSeen)
	}
	return due.Add(grace), true
}

// ComputeStatus applies the online window and the alert thresholds at now.
func ComputeStatus(lastSeen, due *time.Time, cpu, ram *float64, now time.Time) Status {
	until, seen := OnlineUntil(lastSeen, due)
	switch {
	case !seen || now.After(until):
		return StatusOffline
	case cpu != nil && *cpu > AlertCPUPercent, ram != nil && *ram > AlertRAMPercent:
		return StatusAlert
	}
	return StatusOnline
}

// statusSQL is ComputeStatus over machines m at the instant in parameter now ("$3"): the
// database compares with the application's clock, never its own now().
func statusSQL(now string) string {
	due := fmt.Sprintf("COALESCE(m.heartbeat_due_at, m.last_seen + interval '%d seconds')", int(DefaultInterval.Seconds()))
	online := fmt.Sprintf("(%[1]s IS NOT NULL AND %[2]s::timestamptz <= %[1]s + GREATEST(interval '%[3]d seconds', %[1]s - COALESCE(m.last_seen, %[1]s)))",
		due, now, int(MinGrace.Seconds()))
	return fmt.Sprintf(`(CASE WHEN NOT %s THEN 'offline'
		WHEN m.last_cpu_percent > %d OR m.last_ram_percent > %d THEN 'alert' ELSE 'online' END)`,
		online, AlertCPUPercent, AlertRAMPercent)
}

// certStatusSQL is certs.ComputeStatus over the machine's cert_* columns (spec "Calcul du
// statut certificat"), with now and now + certs.ExpiringWithin as parameters.
func certStatusSQL(now, expiringBefore string) string {
	return fmt.Sprintf(`(CASE WHEN COALESCE(m.cert_serial, '') = '' OR m.cert_expires_at IS NULL THEN 'unknown'
		WHEN m.cert_revoked_at IS NOT NULL THEN 'revoked'
		WHEN m.cert_expires_at < %s::timestamptz THEN 'expired'
		WHEN m.cert_expires_at < %s::timestamptz THEN 'expiring' ELSE 'valid' END)`, now, expiringBefore)
}

// expiringBefore is the bound of the "expiring" window at now.
func expiringBefore(now time.Time) time.Time { return now.Add(certs.ExpiringWithin) }

// statuses and certStatuses are the values the list filters accept.
var (
	statuses     = []Status{StatusOnline, StatusOffline, StatusAlert}
	certStatuses = []certs.Status{certs.StatusUnknown, certs.StatusRevoked, certs.StatusExpired, certs.StatusExpiring, certs.StatusValid}
)
