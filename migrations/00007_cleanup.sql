-- The hourly cleanup job (internal/retention) finds each machine's oldest row of a table
-- with ORDER BY <time> LIMIT 1 and deletes by (machine, time): these indexes make both one
-- index probe per machine where the table's keys do not lead with (machine_id, time).
-- The raw series' unique keys already do.

-- +goose Up
CREATE INDEX IF NOT EXISTS idx_metric_aggregates_machine_period_start ON metric_aggregates (machine_id, period_start);

-- disk_hourly is a table only in postgres mode (a continuous aggregate in timescale mode,
-- where TimescaleDB indexes it by machine and bucket itself).
-- +goose StatementBegin
DO $$
BEGIN
    IF (SELECT value FROM schema_settings WHERE key = 'timeseries_mode') = 'postgres' THEN
        CREATE INDEX IF NOT EXISTS idx_disk_hourly_machine_bucket ON disk_hourly (machine_id, bucket);
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP INDEX IF EXISTS idx_disk_hourly_machine_bucket;
DROP INDEX IF EXISTS idx_metric_aggregates_machine_period_start;
