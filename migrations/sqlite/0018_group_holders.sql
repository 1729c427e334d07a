-- Entra groups of the MSP as holders in a customer's role mapping (issue 29): a grant with
-- `holder_kind = 'group'` names the group's object id in `holder`, and its display name as
-- Graph gave it when the line was added, for the page and the audit log.
ALTER TABLE customer_role_grants ADD COLUMN holder_name TEXT;

-- Which of the groups named in its tenant's mappings a user was last found in (nesting
-- counted), and when Microsoft said so. Written whenever Gatehouse asks Microsoft (a request
-- for access, a reconciliation run, a group added to a mapping); read when a role or a mapping
-- changes, to decide which open accounts must end. A row is only ever a reason to keep an
-- account open that Microsoft confirmed at its last check.
CREATE TABLE jit_group_holdings (
    user_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    checked_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, group_id)
);
