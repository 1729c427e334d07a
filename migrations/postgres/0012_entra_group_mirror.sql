-- The reconciler's copy of the direct members of the Entra groups a tenant follows (its
-- scoping and admin groups, and every group nested in them), kept current through
-- /groups/delta so that a run without changes costs one request for the groups, whatever
-- their size. Members count transitively; Gatehouse resolves the nesting from these rows.
CREATE TABLE entra_group_members (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    -- 1: the member is a group (nested), 0: a user.
    member_is_group BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, group_id, member_id)
);

-- Where the groups' delta stands: the deltaLink, and the groups it tracks (its $filter, ids
-- joined by commas). A run that needs other groups starts a new round.
CREATE TABLE entra_group_sync (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    delta_link TEXT NOT NULL,
    tracked TEXT NOT NULL
);
