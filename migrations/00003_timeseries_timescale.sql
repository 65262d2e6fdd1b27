-- TimescaleDB mode: hypertables (1-day chunks), compression after 2 days segmented by
-- machine, retention safety nets, and the hourly continuous aggregates.
-- Applied only when the database is migrated in "timescale" mode (see internal/migrate).
-- Outside a transaction: continuous aggregates cannot be created inside one. Every
-- statement is idempotent so a run interrupted half-way can simply be repeated.

-- +goose NO TRANSACTION
-- +goose Up
CREATE EXTENSION IF NOT EXISTS timescaledb;

INSERT INTO schema_settings (key, value) VALUES ('timeseries_mode', 'timescale')
    ON CONFLICT (key) DO NOTHING;

-- +goose StatementBegin
DO $$
BEGIN
    IF (SELECT value FROM schema_settings WHERE key = 'timeseries_mode') <> 'timescale' THEN
        RAISE EXCEPTION 'database is in % mode, refusing to apply timescale migrations',
            (SELECT value FROM schema_settings WHERE key = 'timeseries_mode');
    END IF;
END
$$;
-- +goose StatementEnd

SELECT create_hypertable('metrics', by_range('recorded_at', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('disk_info', by_range('recorded_at', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('event_logs', by_range('recorded_at', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('smart_data', by_range('recorded_at', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('activity_logs', by_range('created_at', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('service_uptime', by_range('checked_at', INTERVAL '1 day'), if_not_exists => TRUE, migrate_data => TRUE);

-- Segmenting by machine keeps one machine's rows together, so a per-client licence DELETE
-- removes whole compressed batches instead of rewriting them.
ALTER TABLE metrics SET (timescaledb.compress, timescaledb.compress_segmentby = 'machine_id', timescaledb.compress_orderby = 'recorded_at DESC');
ALTER TABLE disk_info SET (timescaledb.compress, timescaledb.compress_segmentby = 'machine_id', timescaledb.compress_orderby = 'recorded_at DESC');
ALTER TABLE event_logs SET (timescaledb.compress, timescaledb.compress_segmentby = 'machine_id', timescaledb.compress_orderby = 'recorded_at DESC');
ALTER TABLE smart_data SET (timescaledb.compress, timescaledb.compress_segmentby = 'machine_id', timescaledb.compress_orderby = 'recorded_at DESC');
-- These two have no machine: segment by their natural grouping instead.
ALTER TABLE activity_logs SET (timescaledb.compress, timescaledb.compress_segmentby = 'client_id', timescaledb.compress_orderby = 'created_at DESC');
ALTER TABLE service_uptime SET (timescaledb.compress, timescaledb.compress_segmentby = 'service_name', timescaledb.compress_orderby = 'checked_at DESC');

SELECT add_compression_policy('metrics', INTERVAL '2 days', if_not_exists => TRUE);
SELECT add_compression_policy('disk_info', INTERVAL '2 days', if_not_exists => TRUE);
SELECT add_compression_policy('event_logs', INTERVAL '2 days', if_not_exists => TRUE);
SELECT add_compression_policy('smart_data', INTERVAL '2 days', if_not_exists => TRUE);
SELECT add_compression_policy('activity_logs', INTERVAL '2 days', if_not_exists => TRUE);
SELECT add_compression_policy('service_uptime', INTERVAL '2 days', if_not_exists => TRUE);

-- Safety nets: per-licence retention is the cleanup job's; nothing outlives 365 days.
SELECT add_retention_policy('metrics', INTERVAL '365 days', if_not_exists => TRUE);
SELECT add_retention_policy('disk_info', INTERVAL '365 days', if_not_exists => TRUE);
SELECT add_retention_policy('event_logs', INTERVAL '365 days', if_not_exists => TRUE);
SELECT add_retention_policy('smart_data', INTERVAL '365 days', if_not_exists => TRUE);
SELECT add_retention_policy('activity_logs', INTERVAL '30 days', if_not_exists => TRUE);
SELECT add_retention_policy('service_uptime', INTERVAL '30 days', if_not_exists => TRUE);

CREATE MATERIALIZED VIEW IF NOT EXISTS metrics_hourly WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 hour', recorded_at) AS bucket,
       machine_id,
       avg(cpu_percent) AS cpu_avg, min(cpu_percent) AS cpu_min, max(cpu_percent) AS cpu_max,
       avg(ram_percent) AS ram_avg, min(ram_percent) AS ram_min, max(ram_percent) AS ram_max,
       avg(cpu_temp) AS cpu_temp_avg, min(cpu_temp) AS cpu_temp_min, max(cpu_temp) AS cpu_temp_max,
       count(*) AS sample_count
FROM metrics
GROUP BY bucket, machine_id
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS disk_hourly WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 hour', recorded_at) AS bucket,
       machine_id,
       mount_point,
       avg(used_percent) AS disk_usage_avg, max(used_percent) AS disk_usage_max,
       count(*) AS sample_count
FROM disk_info
GROUP BY bucket, machine_id, mount_point
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS network_hourly WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 hour', recorded_at) AS bucket,
       machine_id,
       avg(bytes_recv) AS bytes_recv_avg, max(bytes_recv) AS bytes_recv_max,
       avg(bytes_sent) AS bytes_sent_avg, max(bytes_sent) AS bytes_sent_max,
       avg(packet_loss) AS packet_loss_avg, max(packet_loss) AS packet_loss_max,
       avg(latency_ms) AS latency_avg, max(latency_ms) AS latency_max,
       count(*) AS sample_count
FROM metrics
GROUP BY bucket, machine_id
WITH NO DATA;

SELECT add_continuous_aggregate_policy('metrics_hourly', start_offset => INTERVAL '31 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => TRUE);
SELECT add_continuous_aggregate_policy('disk_hourly', start_offset => INTERVAL '31 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => TRUE);
SELECT add_continuous_aggregate_policy('network_hourly', start_offset => INTERVAL '31 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => TRUE);

-- Aggregates follow the raw data's retention; the same 365-day safety net applies to them.
SELECT add_retention_policy('metrics_hourly', INTERVAL '365 days', if_not_exists => TRUE);
SELECT add_retention_policy('disk_hourly', INTERVAL '365 days', if_not_exists => TRUE);
SELECT add_retention_policy('network_hourly', INTERVAL '365 days', if_not_exists => TRUE);

-- +goose Down
-- Forward-only: converting hypertables back to plain tables is not supported.
SELECT 1;
