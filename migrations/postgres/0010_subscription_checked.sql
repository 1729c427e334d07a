-- When Gatehouse last asked Graph whether the subscription still exists (seconds since the
-- Unix epoch). For users Microsoft sends no lifecycle event when a subscription is removed,
-- so the keeper looks every hour; null until the first look.
ALTER TABLE entra_subscriptions ADD COLUMN checked_at BIGINT;
