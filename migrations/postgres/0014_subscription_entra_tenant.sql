-- The Entra tenant a subscription was made in. A tenant that reconnects to another Entra
-- tenant must end the subscription it had in the first one, in that one; without this the
-- keeper only knew the tenant's current connection. Null for subscriptions made before.
ALTER TABLE entra_subscriptions ADD COLUMN entra_tenant_id TEXT;
