-- Alerting API (issue 13, part A): what the dashboard's alert reads need.
--
-- Rows written before migration 00012 have no started_at and no state of their own (the
-- column default 'firing'): they started when they triggered, and those with resolved_at
-- are resolved. The alerts list pages on (client_id, started_at DESC, id), which needs a
-- started_at on every row; the evaluator sets it on every episode it opens.
--
-- The machine list shows each machine's firing alerts: a small partial index answers that
-- per row without reading the episodes' history.

-- +goose Up
UPDATE alert_rule_history SET started_at = triggered_at WHERE started_at IS NULL AND triggered_at IS NOT NULL;
UPDATE alert_rule_history SET state = 'resolved' WHERE resolved_at IS NOT NULL AND state <> 'resolved';
CREATE INDEX idx_alert_rule_history_machine_firing ON alert_rule_history (machine_id, severity) WHERE state = 'firing';

-- +goose Down
DROP INDEX IF EXISTS idx_alert_rule_history_machine_firing;
