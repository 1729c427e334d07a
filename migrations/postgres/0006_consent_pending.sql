-- Admin consent that Microsoft has not applied yet. Right after consent, tokens can lack the
-- new roles and Graph answers 401/403 for seconds to minutes: Gatehouse keeps trying for two
-- minutes before it shows Microsoft's error.
CREATE TABLE entra_consent_pending (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    entra_tid TEXT NOT NULL,
    consented_by TEXT NOT NULL,
    consented_at BIGINT NOT NULL,
    tries BIGINT NOT NULL DEFAULT 0,
    last_error TEXT
);

-- Entra health is stored by name now (EntraHealth); the one wording stored before becomes its name.
UPDATE tenants SET entra_health = 'consent_revoked' WHERE entra_health LIKE 'authorization lost%';
