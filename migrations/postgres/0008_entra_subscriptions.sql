-- Graph change notifications: one subscription per connected tenant (DESIGN, "Change
-- notifications"). Graph echoes the subscription's clientState in every notification; it is
-- kept here as its SHA-256 only, so the table alone cannot forge one.
CREATE TABLE entra_subscriptions (
    subscription_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL UNIQUE REFERENCES tenants(id),
    client_state_sha256 TEXT NOT NULL,
    -- Seconds since the Unix epoch.
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_notification_at BIGINT
);

-- When the oldest change notification the reconciler has not yet acted on arrived; null
-- when none waits. A run clears it; many notifications before the run make one run.
ALTER TABLE tenants ADD COLUMN notified_at BIGINT;
