package certs

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/optralis/optralis/internal/db"
)

// syncSQL brings machines.cert_serial/issued_at/expires_at/revoked_at in line with the
// machine's current certificate (spec "Synchronisation automatique des certificats"). It
// writes only when something differs, so a heartbeat that finds the columns current costs
// no row update; a machine without any certificate is left as it is (status unknown).
const syncSQL = `
	UPDATE machines m
	SET cert_serial = c.serial, cert_issued_at = c.issued_at, cert_expires_at = c.expires_at,
	    cert_revoked_at = c.revoked_at
	FROM (` + latestCertificate + `) c
	WHERE m.id = $1
	  AND (m.cert_serial IS DISTINCT FROM c.serial OR m.cert_issued_at IS DISTINCT FROM c.issued_at
	       OR m.cert_expires_at IS DISTINCT FROM c.expires_at OR m.cert_revoked_at IS DISTINCT FROM c.revoked_at)`

// SyncStatement is the certificate sync of one machine as a statement and its arguments,
// so the heartbeat can queue it in the pgx.Batch of its other writes (one round trip):
//
//	sql, args := certs.SyncStatement(machineID)
//	batch.Queue(sql, args...)
func SyncStatement(machineID string) (string, []any) { return syncSQL, []any{machineID} }

// syncManySQL is syncSQL for the machines of $1 (a uuid array): one statement for a whole
// group of heartbeats. Rows are locked in machine id order, the order every group writer
// uses, so two groups sharing machines do not deadlock on them.
const syncManySQL = `
	UPDATE machines m
	SET cert_serial = c.serial, cert_issued_at = c.issued_at, cert_expires_at = c.expires_at,
	    cert_revoked_at = c.revoked_at
	FROM (SELECT DISTINCT id FROM unnest($1::uuid[]) AS x (id)) x
	CROSS JOIN LATERAL (` + latestCertificateOf + `x.id` + latestCertificateOrder + `) c
	WHERE m.id = x.id
	  AND (m.cert_serial IS DISTINCT FROM c.serial OR m.cert_issued_at IS DISTINCT FROM c.issued_at
	       OR m.cert_expires_at IS DISTINCT FROM c.expires_at OR m.cert_revoked_at IS DISTINCT FROM c.revoked_at)`

// SyncManyStatement is the certificate sync of several machines as one statement.
func SyncManyStatement(machineIDs []string) (string, []any) { return syncManySQL, []any{machineIDs} }

// QueueSync queues the sync in b.
func QueueSync(b *pgx.Batch, machineID string) *pgx.QueuedQuery {
	sql, args := SyncStatement(machineID)
	return b.Queue(sql, args...)
}

// Sync runs the statement on its own and tells whether the machine's columns changed.
func Sync(ctx context.Context, q db.Querier, machineID string) (bool, error) {
	sql, args := SyncStatement(machineID)
	tag, err := q.Exec(ctx, sql, args...)
	if err != nil {
		return false, db.Error(err, "certs: sync")
	}
	return tag.RowsAffected() > 0, nil
}
