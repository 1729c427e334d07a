-- An address belongs to one live account of a tenant, not to every record it ever named: a
-- rehire (a new Entra account behind an old address) gets a record of its own while the old
-- one stays offboarded. SQLite cannot drop a table constraint, and sqlx runs this inside a
-- transaction, where foreign keys cannot be switched off. So `users` is rebuilt beside the
-- old table, the four tables that reference it are rebuilt to point at the new one, and only
-- then is the old table dropped (nothing references it any more) and the new one renamed
-- (SQLite rewrites the references to the new name).

CREATE TABLE users_rebuilt (
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
    UNIQUE (tenant_id, username)
);
INSERT INTO users_rebuilt (id, tenant_id, email, first_name, last_name, username, role, source, status,
    entra_oid, created_at, onboarded_at, last_login_at, offboarded_at, offboard_reason)
SELECT id, tenant_id, email, first_name, last_name, username, role, source, status,
    entra_oid, created_at, onboarded_at, last_login_at, offboarded_at, offboard_reason FROM users;

CREATE TABLE device_bindings_rebuilt (
    device_id TEXT NOT NULL REFERENCES devices(id),
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    user_id TEXT NOT NULL REFERENCES users_rebuilt(id),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (device_id, tenant_id, user_id)
);
INSERT INTO device_bindings_rebuilt (device_id, tenant_id, user_id, created_at, revoked_at)
SELECT device_id, tenant_id, user_id, created_at, revoked_at FROM device_bindings;
DROP TABLE device_bindings;
ALTER TABLE device_bindings_rebuilt RENAME TO device_bindings;
CREATE INDEX device_bindings_by_tenant ON device_bindings (tenant_id, device_id);

CREATE TABLE user_sessions_rebuilt (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    user_id TEXT NOT NULL REFERENCES users_rebuilt(id),
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    device_id TEXT
);
INSERT INTO user_sessions_rebuilt (id, tenant_id, user_id, created_at, last_seen_at, ip, user_agent, device_id)
SELECT id, tenant_id, user_id, created_at, last_seen_at, ip, user_agent, device_id FROM user_sessions;
DROP TABLE user_sessions;
ALTER TABLE user_sessions_rebuilt RENAME TO user_sessions;
CREATE INDEX user_sessions_by_user ON user_sessions (user_id);

CREATE TABLE oauth_flows_rebuilt (
    state TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    user_id TEXT NOT NULL REFERENCES users_rebuilt(id),
    kind TEXT NOT NULL,
    nonce TEXT,
    pkce_verifier TEXT,
    entra_tid TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO oauth_flows_rebuilt (state, tenant_id, user_id, kind, nonce, pkce_verifier, entra_tid, created_at, expires_at)
SELECT state, tenant_id, user_id, kind, nonce, pkce_verifier, entra_tid, created_at, expires_at FROM oauth_flows;
DROP TABLE oauth_flows;
ALTER TABLE oauth_flows_rebuilt RENAME TO oauth_flows;

CREATE TABLE reconcile_held_rebuilt (
    run_id BIGINT NOT NULL REFERENCES reconcile_runs(id),
    user_id TEXT NOT NULL REFERENCES users_rebuilt(id),
    reason TEXT NOT NULL,
    PRIMARY KEY (run_id, user_id)
);
INSERT INTO reconcile_held_rebuilt (run_id, user_id, reason)
SELECT run_id, user_id, reason FROM reconcile_held;
DROP TABLE reconcile_held;
ALTER TABLE reconcile_held_rebuilt RENAME TO reconcile_held;

DROP TABLE users;
ALTER TABLE users_rebuilt RENAME TO users;
CREATE UNIQUE INDEX users_live_email ON users (tenant_id, email) WHERE status <> 'offboarded';
CREATE INDEX users_by_email ON users (tenant_id, email);
CREATE INDEX users_by_oid ON users (tenant_id, entra_oid);
