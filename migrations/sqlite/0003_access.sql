-- Access that ends when it should: phones an admin can revoke, email claims that expire,
-- sign-ins that know which phone approved them, budgets that hold across devices, and the
-- server's own keys.

ALTER TABLE devices ADD COLUMN last_used_at BIGINT;

-- A verified email stays the device's for 180 days; then the app asks to verify it again.
ALTER TABLE email_claims ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
UPDATE email_claims SET expires_at = verified_at + 15552000;

-- The phone whose approval made the sign-in: revoking the phone ends it.
ALTER TABLE user_sessions ADD COLUMN device_id TEXT;

CREATE INDEX device_bindings_by_tenant ON device_bindings (tenant_id, device_id);
CREATE INDEX email_claims_by_device ON email_claims (device_id);

-- Fixed-window counters, one row per key (`code_mail:addr:…`, `code_fail:…`): taken and
-- checked in one statement, so concurrent requests cannot read the same count.
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    used BIGINT NOT NULL
);

-- Keys the server makes for itself once and every replica reads (the binding cookie's MAC key).
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
