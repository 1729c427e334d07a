use super::event::{Actor, Event};
use super::view::AuditEntry;
use crate::domain::TenantId;
use crate::server::db::Db;
use crate::server::util::{format_time, now};

/// Appends an audit event; pass a transaction so the event commits with the change it records.
/// The event names the request that made it, when a request did, so the operator can find
/// its log lines.
pub async fn record<'e, E>(
    exec: E,
    tenant_id: Option<&TenantId>,
    actor: Actor<'_>,
    event: Event<'_>,
) -> anyhow::Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, at, actor, action, subject, details, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant_id.map(TenantId::to_string))
    .bind(now())
    .bind(actor.stored())
    .bind(event.action().as_str())
    .bind(event.subject())
    .bind(event.details())
    .bind(crate::server::request_log::current_id())
    .execute(exec)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    subject: String,
    details: String,
    request_id: Option<String>,
}

/// The newest events of a tenant, newest first.
pub async fn list(db: &Db, tenant_id: &TenantId, limit: i64) -> anyhow::Result<Vec<AuditEntry>> {
    let rows = sqlx::query_as::<_, Row>(
        "SELECT id, at, actor, action, subject, details, request_id FROM audit_events \
         WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(tenant_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: format_time(r.at),
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            details: r.details,
            request: r.request_id,
        })
        .collect())
}
