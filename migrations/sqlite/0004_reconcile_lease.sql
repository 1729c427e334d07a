-- One instance reconciles a tenant at a time, on both engines and across processes (several
-- `gatehouse serve` replicas, or `gatehouse reconcile` beside `gatehouse serve`): a run, or an
-- admin's decision on a held run, first takes the tenant's lease. A holder renews it while it
-- works and deletes it when done; the lease of a holder that crashed simply runs out, and the
-- next run takes it over.
CREATE TABLE reconcile_leases (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    -- A random id per lease: release and renewal touch only the holder's own lease.
    holder TEXT NOT NULL,
    -- Seconds since the Unix epoch.
    expires_at BIGINT NOT NULL
);

-- reconcile_runs.pending_delta_link is no longer written: deciding a held run leaves the
-- tenant's delta link where it was, so the next run reads the same changes again.
