//! Tenants by slug, kept in memory for a few seconds: every request resolves its tenant from
//! the Host header, and tenants change only when an admin saves the user source.
//!
//! A save publishes `Event::TenantChanged` on the bus: this replica forgets the tenant before
//! the save answers, the others when they hear of it; the short lifetime bounds staleness
//! should such an event be lost.

use super::store::{self, Tenant};
use crate::domain::TenantId;
use crate::server::bus::{Event, Subscriber};
use crate::server::db::Db;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// How long a resolved tenant is reused without asking the database.
const TTL: Duration = Duration::from_secs(5);
/// More distinct tenants than this and the cache starts over rather than grow.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct TenantCache {
    by_slug: RwLock<HashMap<String, (Tenant, Instant)>>,
}

impl TenantCache {
    /// The tenant at `slug`, from memory when it was read less than `TTL` ago. Unknown slugs
    /// are not remembered: a tenant created by the CLI is served on its first request.
    pub async fn find_by_slug(&self, db: &Db, slug: &str) -> anyhow::Result<Option<Tenant>> {
        if let Some((tenant, read_at)) = self.read().get(slug) {
            if read_at.elapsed() < TTL {
                return Ok(Some(tenant.clone()));
            }
        }
        let found = store::find_by_slug(db, slug).await?;
        let mut map = self.write();
        match &found {
            Some(tenant) => {
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
                map.insert(slug.to_string(), (tenant.clone(), Instant::now()));
            }
            None => {
                map.remove(slug);
            }
        }
        Ok(found)
    }

    /// Drops the tenant with this id, so the next request reads it afresh.
    fn forget(&self, tenant_id: &TenantId) {
        self.write().retain(|_, (t, _)| t.id != *tenant_id);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, (Tenant, Instant)>> {
        self.by_slug.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, (Tenant, Instant)>> {
        self.by_slug.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Subscriber for TenantCache {
    fn heard(&self, event: &Event) {
        if let Event::TenantChanged { tenant_id } = event {
            self.forget(tenant_id);
        }
    }

    fn may_have_missed(&self) {
        self.write().clear();
    }
}
