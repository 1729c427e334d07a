-- Entra ID as a user source: the authorize/consent round trips, the proven connection,
-- the reconciler's delta link, runs and held offboardings.

ALTER TABLE tenants ADD COLUMN entra_org_name TEXT;
ALTER TABLE tenants ADD COLUMN entra_delta_link TEXT;
ALTER TABLE tenants ADD COLUMN next_reconcile_at BIGINT;

-- One in-flight browser round trip to Microsoft (sign-in or admin consent), found by state.
CREATE TABLE oauth_flows (
    state TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL,
    nonce TEXT,
    pkce_verifier TEXT,
    entra_tid TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- An Entra tenant the admin signed in to, consented for and proved with Graph, waiting for Save.
CREATE TABLE entra_authorizations (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    entra_tid TEXT NOT NULL,
    org_name TEXT NOT NULL,
    domains TEXT NOT NULL,
    authorized_by TEXT NOT NULL,
    authorized_at BIGINT NOT NULL
);

CREATE TABLE reconcile_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    trigger TEXT NOT NULL,
    dry_run BIGINT NOT NULL DEFAULT 0,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    graph_requests BIGINT NOT NULL DEFAULT 0,
    users_checked BIGINT NOT NULL DEFAULT 0,
    offboarded BIGINT NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL,
    error TEXT,
    -- The delta link a held run stops at; it is stored on the tenant once an admin decides.
    pending_delta_link TEXT,
    decided_by TEXT,
    decided_at BIGINT
);
CREATE INDEX reconcile_runs_by_tenant ON reconcile_runs (tenant_id, id);

CREATE TABLE reconcile_held (
    run_id BIGINT NOT NULL REFERENCES reconcile_runs(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    reason TEXT NOT NULL,
    PRIMARY KEY (run_id, user_id)
);
