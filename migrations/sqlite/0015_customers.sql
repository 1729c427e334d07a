-- The MSP's customers (issue 29): each connected to the customer's own Entra tenant by an
-- admin consent to Gatehouse's customers app, proven as the user source is. JIT accounts are
-- made in `domain`, open for `window_secs` at a time.
CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    entra_tid TEXT NOT NULL,
    name TEXT NOT NULL,
    -- The verified domains Graph last listed, as a JSON array.
    domains TEXT NOT NULL DEFAULT '[]',
    -- Where accounts are made; NULL until the admin chooses one.
    domain TEXT,
    window_secs BIGINT NOT NULL DEFAULT 14400,
    consented_by TEXT NOT NULL,
    consented_at BIGINT NOT NULL,
    -- NULL while Microsoft has not applied the consent.
    connected_at BIGINT,
    -- `ok`, `waiting` (for Microsoft to apply the consent) or `failing`, with Microsoft's words.
    health TEXT NOT NULL,
    health_detail TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, entra_tid)
);

-- Which Entra built-in role the holders of a Gatehouse role (`admin`, `technician`) may
-- request at a customer. (MSP Entra groups as holders come later: `holder_kind` names which.)
CREATE TABLE customer_role_grants (
    customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    holder_kind TEXT NOT NULL,
    holder TEXT NOT NULL,
    role_definition_id TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (customer_id, holder_kind, holder, role_definition_id)
);
