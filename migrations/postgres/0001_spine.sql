-- Gatehouse spine: tenants, users, phones, QR login challenges, sessions index, audit, outbox.
-- Times are Unix seconds (BIGINT) so one store layer reads both engines alike.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    user_source TEXT NOT NULL DEFAULT 'local',
    jit_prefix TEXT NOT NULL DEFAULT 'msp-',
    entra_tenant_id TEXT,
    entra_domain TEXT,
    entra_connected_at BIGINT,
    entra_connected_by TEXT,
    entra_health TEXT,
    offboard_interval_secs BIGINT NOT NULL DEFAULT 14400,
    deletion_threshold_count BIGINT NOT NULL DEFAULT 5,
    deletion_threshold_percent BIGINT NOT NULL DEFAULT 20,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    email TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    username TEXT NOT NULL,
    role TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    entra_oid TEXT,
    created_at BIGINT NOT NULL,
    onboarded_at BIGINT,
    last_login_at BIGINT,
    offboarded_at BIGINT,
    offboard_reason TEXT,
    UNIQUE (tenant_id, email),
    UNIQUE (tenant_id, username)
);

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    public_jwk TEXT NOT NULL,
    jwk_thumbprint TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE email_codes (
    device_id TEXT NOT NULL REFERENCES devices(id),
    email TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, email)
);

CREATE TABLE email_claims (
    device_id TEXT NOT NULL REFERENCES devices(id),
    email TEXT NOT NULL,
    verified_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, email)
);
CREATE INDEX email_claims_by_email ON email_claims (email);

-- A phone that signed a user in to a tenant; offboarding revokes these.
CREATE TABLE device_bindings (
    device_id TEXT NOT NULL REFERENCES devices(id),
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (device_id, tenant_id, user_id)
);

CREATE TABLE login_challenges (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    binding_hash TEXT NOT NULL,
    match_number BIGINT NOT NULL,
    numbers TEXT NOT NULL,
    requester_ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    device_id TEXT,
    user_id TEXT
);
CREATE INDEX login_challenges_by_binding ON login_challenges (tenant_id, binding_hash);

-- The index session -> user that lets Gatehouse end every session of a user at once.
CREATE TABLE user_sessions (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL
);
CREATE INDEX user_sessions_by_user ON user_sessions (user_id);

CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT REFERENCES tenants(id),
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX audit_events_by_tenant ON audit_events (tenant_id, id);

CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    to_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
