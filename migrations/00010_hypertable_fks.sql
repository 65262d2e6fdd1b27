-- No foreign keys from the time-series tables (hypertables in timescale mode) to the hot
-- tables machines, clients and users, in both modes (issue 15 §1). On a TimescaleDB
-- server, retention (drop_chunks) locks every table a hypertable references: a retention
-- run deadlocked with INSERT INTO machines and blocked heartbeats' UPDATE machines.
-- TimescaleDB advises against foreign keys from large hypertables to hot tables.
-- Integrity is kept by the write path and the cleanup job instead:
--   - heartbeats write a machine's series only after optralis_assert_agent has checked the
--     machine (same batch); audit rows (activity_logs) carry ids the caller just read;
--   - a machine deleted from the dashboard is soft-deleted (deleted_at), and the cleanup
--     job (series.PurgeDeletedMachines) deletes its metrics, disk_info, event_logs and
--     smart_data rows before the machine row, in one transaction: nothing relied on the
--     ON DELETE CASCADE any more. Nothing deletes clients.
--   - activity_logs is an audit trail: its user_id / machine_id now outlive a deleted
--     user or machine (before: SET NULL); readers LEFT JOIN, so a gone user shows no name.
-- The plain rollup tables of postgres mode (metrics_hourly, ...) keep theirs: they are
-- small, written by the rollups job only, and have no counterpart in timescale mode.

-- +goose Up
ALTER TABLE metrics DROP CONSTRAINT IF EXISTS metrics_machine_id_fkey;
ALTER TABLE disk_info DROP CONSTRAINT IF EXISTS disk_info_machine_id_fkey;
ALTER TABLE event_logs DROP CONSTRAINT IF EXISTS event_logs_machine_id_fkey;
ALTER TABLE smart_data DROP CONSTRAINT IF EXISTS smart_data_machine_id_fkey;
ALTER TABLE activity_logs DROP CONSTRAINT IF EXISTS activity_logs_client_id_fkey;
ALTER TABLE activity_logs DROP CONSTRAINT IF EXISTS activity_logs_user_id_fkey;
ALTER TABLE activity_logs DROP CONSTRAINT IF EXISTS activity_logs_machine_id_fkey;

-- +goose Down
-- Rows of machines, users or clients deleted since have no parent: remove or detach them
-- first, as the cascades would have.
DELETE FROM metrics t WHERE NOT EXISTS (SELECT 1 FROM machines m WHERE m.id = t.machine_id);
DELETE FROM disk_info t WHERE NOT EXISTS (SELECT 1 FROM machines m WHERE m.id = t.machine_id);
DELETE FROM event_logs t WHERE NOT EXISTS (SELECT 1 FROM machines m WHERE m.id = t.machine_id);
DELETE FROM smart_data t WHERE NOT EXISTS (SELECT 1 FROM machines m WHERE m.id = t.machine_id);
DELETE FROM activity_logs t WHERE t.client_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM clients c WHERE c.id = t.client_id);
UPDATE activity_logs t SET user_id = NULL WHERE t.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id);
UPDATE activity_logs t SET machine_id = NULL WHERE t.machine_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM machines m WHERE m.id = t.machine_id);
ALTER TABLE metrics ADD CONSTRAINT metrics_machine_id_fkey FOREIGN KEY (machine_id) REFERENCES machines (id) ON DELETE CASCADE;
ALTER TABLE disk_info ADD CONSTRAINT disk_info_machine_id_fkey FOREIGN KEY (machine_id) REFERENCES machines (id) ON DELETE CASCADE;
ALTER TABLE event_logs ADD CONSTRAINT event_logs_machine_id_fkey FOREIGN KEY (machine_id) REFERENCES machines (id) ON DELETE CASCADE;
ALTER TABLE smart_data ADD CONSTRAINT smart_data_machine_id_fkey FOREIGN KEY (machine_id) REFERENCES machines (id) ON DELETE CASCADE;
ALTER TABLE activity_logs ADD CONSTRAINT activity_logs_client_id_fkey FOREIGN KEY (client_id) REFERENCES clients (id) ON DELETE CASCADE;
ALTER TABLE activity_logs ADD CONSTRAINT activity_logs_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE activity_logs ADD CONSTRAINT activity_logs_machine_id_fkey FOREIGN KEY (machine_id) REFERENCES machines (id) ON DELETE SET NULL;
