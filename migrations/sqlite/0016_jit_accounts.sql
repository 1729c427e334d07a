-- The accounts Gatehouse made for technicians in customers' Entra tenants (issue 29): one per
-- technician and customer, opened for a window at a time. `entra_object_id` is what Gatehouse
-- acts on, and it acts on no account without a row here. No password or pass is stored.
CREATE TABLE jit_accounts (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    customer_id TEXT NOT NULL REFERENCES customers(id),
    -- No reference to users: a deleted user's accounts must still be ended, and their ends
    -- recorded, after the user's row is gone.
    user_id TEXT NOT NULL,
    -- The technician's name in Gatehouse, as the Customers page and the audit log show it.
    username TEXT NOT NULL,
    upn TEXT NOT NULL,
    -- NULL only while Gatehouse is making it and Microsoft has not answered.
    entra_object_id TEXT,
    -- `making`, `open`, `ending` or `ended`.
    state TEXT NOT NULL,
    -- The Entra role template ids of the open window, as a JSON array.
    roles TEXT NOT NULL DEFAULT '[]',
    opened_at BIGINT,
    ends_at BIGINT,
    -- Why the account is ending or ended, and when Gatehouse was asked to end it.
    end_reason TEXT,
    end_requested_at BIGINT,
    -- When Microsoft confirmed the last step of the end.
    ended_at BIGINT,
    end_attempts BIGINT NOT NULL DEFAULT 0,
    -- The next try at an end not yet confirmed; a replica claims a try by moving it.
    next_attempt_at BIGINT,
    last_error TEXT,
    UNIQUE (customer_id, user_id)
);
CREATE INDEX jit_accounts_by_user ON jit_accounts (user_id);
CREATE INDEX jit_accounts_due ON jit_accounts (state, next_attempt_at);
