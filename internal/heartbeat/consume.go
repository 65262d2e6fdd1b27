package heartbeat

import (
	"context"
	"encoding/json"

	"github.com/optralis/optralis/internal/apperr"
)

// Queued is one message of the heartbeat queue (queue mode): an Item as JSON.
type Queued struct {
	ID   string
	Body string
	// ReceiveCount is how many times the queue delivered it (1 the first time).
	ReceiveCount int
}

// ConsumeStats counts what one Consume did with its batch.
type ConsumeStats struct {
	Written, Duplicates, Dropped, Retried int
}

// Consume writes a batch of queued heartbeats as one group (Write) and returns the ids
// of the messages to deliver again: those whose write failed on our side (database
// outage, internal error: a 5xx), which the queue redelivers until its maxReceiveCount
// sends them to the dead-letter queue. A message refused for good — not an Item, its data
// invalid (400), its certificate revoked or superseded since it was queued (401), its
// client disabled (403) or licence over (402) — is dropped and logged: retrying it would
// only fail again. A redelivered message whose rows exist writes nothing (natural keys).
func (w *Writer) Consume(ctx context.Context, msgs []Queued) (retry []string, st ConsumeStats) {
	items := make([]Item, 0, len(msgs))
	from := make([]int, 0, len(msgs)) // item index -> message index
	for i, m := range msgs {
		var it Item
		if err := json.Unmarshal([]byte(m.Body), &it); err != nil || it.MachineID == "" || it.Payload.Metrics == nil {
			st.Dropped++
			w.c.Logger.WarnContext(ctx, "heartbeat queue: dropped a message that is not a heartbeat", "message_id", m.ID)
			continue
		}
		items = append(items, it)
		from = append(from, i)
	}
	for k, o := range w.Write(ctx, items) {
		m, it := msgs[from[k]], items[k]
		switch {
		case o.Err == nil && o.Fresh:
			st.Written++
		case o.Err == nil:
			st.Duplicates++
		case serverFault(o.Err):
			st.Retried++
			retry = append(retry, m.ID)
			w.c.Logger.WarnContext(ctx, "heartbeat queue: write failed; the queue delivers it again", "message_id", m.ID,
				"machine_id", it.MachineID, "receive_count", m.ReceiveCount, "error", o.Err.Error())
		default:
			st.Dropped++
			code := apperr.Code("")
			if e, ok := apperr.As(o.Err); ok {
				code = e.Code
			}
			w.c.Logger.InfoContext(ctx, "heartbeat queue: dropped a refused heartbeat", "message_id", m.ID,
				"machine_id", it.MachineID, "code", string(code), "error", o.Err.Error())
		}
	}
	return retry, st
}
