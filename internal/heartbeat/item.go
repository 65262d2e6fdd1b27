package heartbeat

import (
	"time"

	"github.com/optralis/optralis/internal/apperr"
	"github.com/optralis/optralis/internal/certs"
)

// Item is one validated heartbeat ready to write: everything the group writer needs,
// JSON-serializable so that it survives a queue (SQS) between the function that received
// it and the one that writes it. The derived inventory is not serialized: the writer
// derives it again from the payload when it is missing.
type Item struct {
	MachineID string `json:"machine_id"`
	ClientID  string `json:"client_id"`
	// Serial and CertNotAfter are the presented certificate's: the writer asserts the
	// serial is still the machine's active certificate, and the answer asks for a renewal
	// when NotAfter is near.
	Serial       string    `json:"serial"`
	CertNotAfter time.Time `json:"cert_not_after"`
	IP           string    `json:"ip,omitempty"`
	// ReceivedAt is the application clock's instant when the heartbeat arrived: it stamps
	// the rows and is the "now" of the certificate and licence checks.
	ReceivedAt time.Time `json:"received_at"`
	// IntervalSeconds is the interval the answer gives the agent (NextInterval).
	IntervalSeconds int `json:"interval_seconds"`
	// WantVersion asks the writer to read the channel's latest agent version (the
	// receiver did not have it cached).
	WantVersion bool    `json:"want_version,omitempty"`
	Payload     Payload `json:"payload"`

	inv *Inventory // derived by NewItem; nil after a JSON round trip
}

// NewItem validates p (Payload.Validate: 400 naming the bad fields) and returns the item.
func NewItem(agent certs.Agent, certNotAfter time.Time, ip string, now time.Time, p Payload, ret Retention) (Item, error) {
	bad, inv := p.Validate(now, ret)
	if bad != nil {
		return Item{}, apperr.InvalidFields(bad)
	}
	return Item{MachineID: agent.MachineID, ClientID: agent.ClientID, Serial: agent.Serial, CertNotAfter: certNotAfter,
		IP: ip, ReceivedAt: now, IntervalSeconds: NextInterval(*p.Metrics.CPUPercent, *p.Metrics.RAMPercent),
		Payload: p, inv: inv}, nil
}

// inventory is the item's derived inventory, derived again after a JSON round trip (the
// payload was validated when the item was made, so only a corrupted item fails here).
func (it *Item) inventory() (*Inventory, error) {
	if it.inv != nil {
		return it.inv, nil
	}
	if it.Payload.Metrics == nil || it.Payload.Metrics.CPUPercent == nil || it.Payload.Metrics.RAMPercent == nil {
		return nil, apperr.InvalidFields(map[string]string{"metrics": "is required"})
	}
	bad := problems{}
	inv := deriveInventory(it.Payload.Collectors, bad)
	if len(bad) > 0 {
		return nil, apperr.InvalidFields(bad)
	}
	it.inv = inv
	return inv, nil
}

// Outcome is what the writer did with one item: Err is nil when the item's group
// committed (Answer and Fresh are then set), otherwise the item's own error — a refusal
// (certs.ErrRefused 401, certs.ErrClientDisabled 403, ErrLicenceExpired 402), its data
// refused by the database (400), or its group's failure (503 on a database outage:
// nothing of that group was written).
type Outcome struct {
	Answer Answer
	// Fresh is false when the item's (machine, recorded_at) was already recorded: nothing
	// but the machine's last sighting was written.
	Fresh bool
	Err   error
}
