-- How long access took to end, per offboarded user (issue 15, "Time to revoke"). All times
-- are seconds since the Unix epoch.
-- When a change notification about this user last arrived that no run has covered yet;
-- a run clears it. Null when none waits.
ALTER TABLE users ADD COLUMN change_seen_at BIGINT;
-- When the change that offboarded the user was first seen: the notification's arrival, or
-- the start of the run that found it.
ALTER TABLE users ADD COLUMN offboard_seen_at BIGINT;
-- When every session and phone binding of the offboarded user had ended and open pages had
-- been told (offboarded_at is when the run decided).
ALTER TABLE users ADD COLUMN access_ended_at BIGINT;
