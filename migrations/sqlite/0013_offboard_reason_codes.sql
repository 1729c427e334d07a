-- Offboarding reasons are stored as codes (domain::OffboardReason) and worded by Gatehouse in
-- one place; the name of the group a user left is kept beside its code. Reasons written
-- before this migration were English text: each becomes its code.
ALTER TABLE users ADD COLUMN offboard_group TEXT;
ALTER TABLE reconcile_held ADD COLUMN group_name TEXT;

UPDATE users
SET offboard_group = substr(offboard_reason, 13, length(offboard_reason) - 13),
    offboard_reason = 'left_group'
WHERE offboard_reason LIKE 'left group "%"';
UPDATE users SET offboard_reason = CASE offboard_reason
    WHEN 'deleted in Entra ID (restorable there for 30 days)' THEN 'soft_deleted'
    WHEN 'permanently deleted in Entra ID' THEN 'hard_deleted'
    WHEN 'account disabled in Entra ID' THEN 'disabled'
    WHEN 'no longer in the Entra ID directory' THEN 'not_in_directory'
    WHEN 'no address in the connected domain any more' THEN 'left_domain'
    WHEN 'left the group whose members may sign in' THEN 'left_group'
    ELSE offboard_reason END
WHERE offboard_reason IS NOT NULL;

UPDATE reconcile_held
SET group_name = substr(reason, 13, length(reason) - 13),
    reason = 'left_group'
WHERE reason LIKE 'left group "%"';
UPDATE reconcile_held SET reason = CASE reason
    WHEN 'deleted in Entra ID (restorable there for 30 days)' THEN 'soft_deleted'
    WHEN 'permanently deleted in Entra ID' THEN 'hard_deleted'
    WHEN 'account disabled in Entra ID' THEN 'disabled'
    WHEN 'no longer in the Entra ID directory' THEN 'not_in_directory'
    WHEN 'no address in the connected domain any more' THEN 'left_domain'
    WHEN 'left the group whose members may sign in' THEN 'left_group'
    ELSE reason END;
