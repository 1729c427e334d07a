-- An address belongs to one live account of a tenant, not to every record it ever named: a
-- rehire (a new Entra account behind an old address) gets a record of its own while the old
-- one stays offboarded.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_tenant_id_email_key;
CREATE UNIQUE INDEX users_live_email ON users (tenant_id, email) WHERE status <> 'offboarded';
CREATE INDEX users_by_email ON users (tenant_id, email);
CREATE INDEX users_by_oid ON users (tenant_id, entra_oid);
