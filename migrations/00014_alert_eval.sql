-- Alert evaluation (issue 13, internal/alerteval): the instant of the latest run. A run
-- takes this row first: concurrent runs serialise on its lock, and a run whose instant is
-- not after the latest (an EventBridge retry carrying its original, older time) evaluates
-- nothing, so the evaluation never goes back in time (a stale instant would resolve an
-- offline alert that a later run fired).

-- +goose Up
CREATE TABLE alert_eval_runs (
    singleton   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    last_run_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE IF EXISTS alert_eval_runs;
