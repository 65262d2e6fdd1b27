-- Reminder mails (issue 12): licence expiry to a client's admins, password expiry to the
-- user. notification_history records every reminder; dedup_key names what a reminder is
-- about (kind, milestone and the expiry it announces), so one reminder is claimed once per
-- user, whatever the retries, overlapping runs or missed days. A row is inserted (status
-- 'sending') before the mail goes out: a concurrent run finds the claim and skips it;
-- 'failed' rows may be claimed again by a later run.

-- +goose Up
ALTER TABLE notification_history ADD COLUMN dedup_key VARCHAR(100);
ALTER TABLE notification_history DROP CONSTRAINT notification_history_status_check;
ALTER TABLE notification_history ADD CONSTRAINT notification_history_status_check
    CHECK (status IN ('sending', 'sent', 'failed', 'skipped'));
CREATE UNIQUE INDEX idx_notification_history_dedup ON notification_history (user_id, notification_type, dedup_key)
    WHERE dedup_key IS NOT NULL;

-- +goose Down
DROP INDEX IF EXISTS idx_notification_history_dedup;
DELETE FROM notification_history WHERE status = 'sending';
ALTER TABLE notification_history DROP CONSTRAINT notification_history_status_check;
ALTER TABLE notification_history ADD CONSTRAINT notification_history_status_check
    CHECK (status IN ('sent', 'failed', 'skipped'));
ALTER TABLE notification_history DROP COLUMN IF EXISTS dedup_key;
