-- Entra groups that scope the user source and grant the admin role (issue 16). An id is the
-- group's Entra object id; its name is the display name when it was chosen, for the pages and
-- the reasons ("left group …"). Both null: anyone in the domain, roles set by hand.
ALTER TABLE tenants ADD COLUMN entra_scope_group_id TEXT;
ALTER TABLE tenants ADD COLUMN entra_scope_group_name TEXT;
ALTER TABLE tenants ADD COLUMN entra_admin_group_id TEXT;
ALTER TABLE tenants ADD COLUMN entra_admin_group_name TEXT;
