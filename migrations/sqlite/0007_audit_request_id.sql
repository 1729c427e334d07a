-- Each audit event names the request that made it (its x-request-id), so an operator can
-- go from the audit log to the request's log lines.
ALTER TABLE audit_events ADD COLUMN request_id TEXT;
