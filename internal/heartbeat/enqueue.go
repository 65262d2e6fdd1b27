package heartbeat

import (
	"context"
	"encoding/json"
	"time"

	"github.com/optralis/optralis/internal/certs"
	"github.com/optralis/optralis/internal/db"
)

// Enqueuer puts an accepted heartbeat, an Item as JSON, on the ingest queue (queue mode,
// INGEST_MODE=queue; ingestqueue.SQS on AWS). Send returns nil only once the message is
// stored durably; its errors are answered as they are (ingestqueue.ErrUnavailable: 503 +
// Retry-After).
type Enqueuer interface {
	Send(ctx context.Context, body []byte) error
}

// CheckTTL is how long a heartbeat instance in queue mode reuses a certificate check that
// accepted a serial: a hit costs no database round trip. It bounds how long a revocation
// can go unnoticed *here* when its Redis refusal mark is missing (Redis down or flushed);
// with the mark, the guard refuses from the very next request. Either way the writer
// asserts the certificate again when it writes, so a heartbeat of a revoked certificate
// is acknowledged at worst within CheckTTL of the revocation and never written after it.
// The cached answer fields (config_changed, licence) are as stale as CheckTTL too.
const CheckTTL = 30 * time.Second

// checkEntry is one cached acceptance.
type checkEntry struct {
	at      time.Time
	changed bool
	version *string
	licence *time.Time
}

// enqueue is the queue mode's submit: check the certificate (cache, or one read round
// trip with the writer's own check statement), put the item on the queue, answer. The
// write path of the database is not touched: during a database outage heartbeats keep
// being accepted as long as their check is cached or Redis vouches for the certificate
// (the guard read its refusal marks), and wait in the queue.
func (s *Service) enqueue(ctx context.Context, it Item) Outcome {
	c, err := s.check(ctx, &it)
	if err != nil {
		return Outcome{Err: err}
	}
	want := it.WantVersion
	it.WantVersion = false // the writer need not read it again
	body, err := json.Marshal(it)
	if err != nil {
		return Outcome{Err: err}
	}
	if err := s.d.Queue.Send(ctx, body); err != nil {
		s.d.Logger.WarnContext(ctx, "heartbeat: not queued", "machine_id", it.MachineID, "error", err.Error())
		return Outcome{Err: err}
	}
	ans := Answer{NextIntervalSeconds: it.IntervalSeconds, ConfigChanged: c.changed,
		RenewCertificate: !it.CertNotAfter.IsZero() && certs.ShouldRenew(it.CertNotAfter, it.ReceivedAt)}
	if want {
		ans.LatestAgentVersion = deref(c.version)
	}
	if c.licence != nil && !c.licence.After(it.ReceivedAt) {
		until := c.licence.AddDate(0, 0, s.d.LicenceGraceDays)
		ans.LicenceExpired, ans.LicenceGraceUntil = true, &until
	}
	// Fresh is unknown until the writer runs; natural keys make a duplicate a no-op there.
	return Outcome{Answer: ans, Fresh: true}
}

// check returns the item's certificate check: cached for CheckTTL after an acceptance,
// otherwise checkGroup for this one item (a read: the writer repeats it in its
// transaction). Refusals are not cached: the guard's Redis marks remember them.
func (s *Service) check(ctx context.Context, it *Item) (checkEntry, error) {
	key := it.Serial + "/" + it.MachineID
	s.checkMu.Lock()
	c, ok := s.checks[key]
	s.checkMu.Unlock()
	if ok && it.ReceivedAt.Sub(c.at) < CheckTTL && it.ReceivedAt.Sub(c.at) >= 0 {
		return c, nil
	}
	var ord int64
	var code, reason *string
	err := s.d.Pool.QueryRow(ctx, checkGroup, []string{it.Serial}, []string{it.ClientID}, []string{it.MachineID},
		[]time.Time{it.ReceivedAt}, []bool{true}, s.d.LicenceGraceDays).Scan(&ord, &code, &reason, &c.changed, &c.version, &c.licence)
	if err != nil {
		if _, outage := db.AsUnavailable(err); outage && s.d.Redis != nil && s.breaker.Ready() {
			// The database is down but Redis is not: the guard found no refusal mark, so the
			// certificate was not refused when its refusal was last written. Queue it with a
			// plain answer; the writer asserts the certificate when the database is back.
			s.d.Logger.WarnContext(ctx, "heartbeat: database unavailable; queued on the guard's word, checked again at write", "machine_id", it.MachineID)
			return checkEntry{at: it.ReceivedAt}, nil
		}
		return checkEntry{}, storeError(err)
	}
	if code != nil {
		return checkEntry{}, refusal(*code, deref(reason))
	}
	c.at = it.ReceivedAt
	s.checkMu.Lock()
	if len(s.checks) > 100000 {
		clear(s.checks)
	}
	s.checks[key] = c
	s.checkMu.Unlock()
	return c, nil
}
