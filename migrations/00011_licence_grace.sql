-- An expired licence: agents are served for a grace period (LICENSE_GRACE_DAYS, the
-- heartbeat's setting, passed in) and then refused with SQLSTATE OA402 (402). The
-- heartbeat batch runs this after optralis_assert_agent, so the decision reads the
-- client row of the same transaction, never an in-process cache: renewing the licence
-- takes effect on the next heartbeat. p_now is the application's clock.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION optralis_assert_licence(p_client UUID, p_now TIMESTAMPTZ, p_grace INTERVAL)
RETURNS VOID LANGUAGE plpgsql STABLE AS $$
DECLARE
    expires TIMESTAMPTZ;
BEGIN
    SELECT license_expires_at INTO expires FROM clients WHERE id = p_client;
    IF expires IS NOT NULL AND expires + p_grace <= p_now THEN
        RAISE EXCEPTION 'agent refused: the licence of client % expired at %, grace period over', p_client,
            to_char(expires AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') USING ERRCODE = 'OA402';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION IF EXISTS optralis_assert_licence(UUID, TIMESTAMPTZ, INTERVAL);
