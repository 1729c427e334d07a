//! The `customers` and `customer_role_grants` tables: every statement on them is here, and
//! every one is scoped by the MSP tenant, so one tenant's admin can never name another's
//! customer.

pub use super::view::GROUP_PREFIX;
use crate::domain::{
    AccessWindow, CustomerHealth, CustomerId, EntraRole, EntraTenantId, GroupId, Role, TenantId,
};
use crate::server::db::Db;
use crate::server::util::random_id;
use crate::tenants::store::GroupRef;
use sqlx::{Any, Executor};

/// A customer as stored.
#[derive(Debug, Clone)]
pub struct Customer {
    pub id: CustomerId,
    pub tenant_id: TenantId,
    pub entra_tid: EntraTenantId,
    pub name: String,
    /// The verified domains Graph last listed.
    pub domains: Vec<String>,
    /// Where accounts are made, once chosen.
    pub domain: Option<String>,
    pub window: AccessWindow,
    pub consented_by: String,
    pub consented_at: i64,
    pub connected_at: Option<i64>,
    pub health: CustomerHealth,
    pub health_detail: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: CustomerId,
    tenant_id: TenantId,
    entra_tid: EntraTenantId,
    name: String,
    domains: String,
    domain: Option<String>,
    window_secs: i64,
    consented_by: String,
    consented_at: i64,
    connected_at: Option<i64>,
    health: String,
    health_detail: Option<String>,
}

impl From<Row> for Customer {
    fn from(r: Row) -> Self {
        Customer {
            id: r.id,
            tenant_id: r.tenant_id,
            entra_tid: r.entra_tid,
            name: r.name,
            domains: serde_json::from_str(&r.domains).unwrap_or_default(),
            domain: r.domain,
            window: AccessWindow::from_secs(r.window_secs),
            consented_by: r.consented_by,
            consented_at: r.consented_at,
            connected_at: r.connected_at,
            // A value this version does not know is treated as failing: nothing is made
            // where Gatehouse cannot say how the connection stands.
            health: r.health.parse().unwrap_or(CustomerHealth::Failing),
            health_detail: r.health_detail,
        }
    }
}

const COLUMNS: &str =
    "id, tenant_id, entra_tid, name, domains, domain, window_secs, consented_by, \
     consented_at, connected_at, health, health_detail";

/// The tenant's customers, by name.
pub async fn list(db: &Db, tenant_id: &TenantId) -> Result<Vec<Customer>, sqlx::Error> {
    let rows = sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM customers WHERE tenant_id = $1 ORDER BY lower(name), id"
    ))
    .bind(tenant_id)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(Customer::from).collect())
}

/// The tenant's customer `id`; another tenant's is not found.
pub async fn find(
    db: &Db,
    tenant_id: &TenantId,
    id: &CustomerId,
) -> Result<Option<Customer>, sqlx::Error> {
    let row = sqlx::query_as::<_, Row>(&format!(
        "SELECT {COLUMNS} FROM customers WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(Customer::from))
}

/// Customer `id`, whichever tenant it belongs to: for the end worker, which acts for every
/// tenant (what the account belongs to was checked when it was made).
pub async fn get(db: &Db, id: &CustomerId) -> Result<Option<Customer>, sqlx::Error> {
    let row = sqlx::query_as::<_, Row>(&format!("SELECT {COLUMNS} FROM customers WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(Customer::from))
}

/// Records an admin consent of Entra tenant `tid` for the tenant: a new customer (named after
/// the tenant id until Graph says more), or the existing one consented again. Either waits
/// for Microsoft to apply the consent. Its id.
pub async fn consented(
    db: &Db,
    tenant_id: &TenantId,
    tid: &EntraTenantId,
    by: &str,
    at: i64,
) -> Result<CustomerId, sqlx::Error> {
    let id = CustomerId::drawn(random_id(16));
    sqlx::query(
        "INSERT INTO customers (id, tenant_id, entra_tid, name, consented_by, consented_at, health, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (tenant_id, entra_tid) DO UPDATE SET consented_by = excluded.consented_by, \
         consented_at = excluded.consented_at, health = excluded.health, health_detail = NULL",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(tid)
    .bind(tid.as_str())
    .bind(by)
    .bind(at)
    .bind(CustomerHealth::Waiting.as_str())
    .bind(at)
    .execute(&db.pool)
    .await?;
    let (id,): (CustomerId,) =
        sqlx::query_as("SELECT id FROM customers WHERE tenant_id = $1 AND entra_tid = $2")
            .bind(tenant_id)
            .bind(tid)
            .fetch_one(&db.pool)
            .await?;
    Ok(id)
}

/// Graph answered the customers app in the customer's tenant: the verified domains it listed.
/// A customer connected for the first time is named after its default domain, and its
/// domain is chosen for it when it has only one that accounts can be made in.
pub async fn proven<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &CustomerId,
    default_name: &str,
    domains: &[String],
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE customers SET domains = $1, health = $2, health_detail = NULL, \
         name = CASE WHEN connected_at IS NULL THEN $3 ELSE name END, \
         connected_at = COALESCE(connected_at, $4) WHERE id = $5",
    )
    .bind(serde_json::to_string(domains).unwrap_or_else(|_| "[]".into()))
    .bind(CustomerHealth::Ok.as_str())
    .bind(default_name)
    .bind(at)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(())
}

/// Microsoft refused the customers app in the customer's tenant, in these words.
pub async fn failing<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &CustomerId,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE customers SET health = $1, health_detail = $2 WHERE id = $3")
        .bind(CustomerHealth::Failing.as_str())
        .bind(detail)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Microsoft refuses lastingly to end an account at the customer, in these words: nothing
/// opens there until an end goes through (a customer not connected now stays as it is).
pub async fn ends_refused<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &CustomerId,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE customers SET health = $1, health_detail = $2 WHERE id = $3 AND health = $4",
    )
    .bind(CustomerHealth::EndsRefused.as_str())
    .bind(detail)
    .bind(id)
    .bind(CustomerHealth::Ok.as_str())
    .execute(ex)
    .await?;
    Ok(())
}

/// An end went through at a customer whose ends Microsoft refused: connected again.
pub async fn ends_go_through<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &CustomerId,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE customers SET health = $1, health_detail = NULL WHERE id = $2 AND health = $3",
    )
    .bind(CustomerHealth::Ok.as_str())
    .bind(id)
    .bind(CustomerHealth::EndsRefused.as_str())
    .execute(ex)
    .await?;
    Ok(())
}

/// An admin disconnected the customer: nothing more is opened there.
pub async fn disconnect<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &CustomerId,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE customers SET health = $1, health_detail = $2 WHERE id = $3")
        .bind(CustomerHealth::Disconnected.as_str())
        .bind(detail)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Microsoft has not applied the consent yet: what the last try heard.
pub async fn still_waiting(db: &Db, id: &CustomerId, detail: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE customers SET health_detail = $1 WHERE id = $2 AND health = $3")
        .bind(detail)
        .bind(id)
        .bind(CustomerHealth::Waiting.as_str())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The customer's name, domain and window, as an admin saved them.
pub async fn save_settings<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &CustomerId,
    name: &str,
    domain: &str,
    window: AccessWindow,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE customers SET name = $1, domain = $2, window_secs = $3 WHERE id = $4")
        .bind(name)
        .bind(domain)
        .bind(window.secs())
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Who a line of the mapping lets request its role: the holders of a Gatehouse role, or the
/// members of an Entra group of the MSP's own tenant (nested groups counted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Role(Role),
    Group(GroupRef),
}

impl Holder {
    /// As the page and the audit log name them: "Technicians", "Members of \"MSP Admins\"".
    pub fn words(&self) -> String {
        match self {
            Holder::Role(role) => role.plural().to_string(),
            Holder::Group(g) => format!("Members of \"{}\"", g.name),
        }
    }

    /// As the page's form sends it back: `technician`, `admin`, or `group:` and the id.
    pub fn form_value(&self) -> String {
        match self {
            Holder::Role(role) => role.as_str().to_string(),
            Holder::Group(g) => format!("{GROUP_PREFIX}{}", g.id),
        }
    }

    fn columns(&self) -> (&'static str, &str, Option<&str>) {
        match self {
            Holder::Role(role) => (HOLDER_ROLE, role.as_str(), None),
            Holder::Group(g) => (HOLDER_GROUP, g.id.as_str(), Some(g.name.as_str())),
        }
    }
}

/// One line of a customer's role mapping: `holders` may request `role`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub holders: Holder,
    pub role: EntraRole,
}

const HOLDER_ROLE: &str = "role";
const HOLDER_GROUP: &str = "group";

/// The customer's role mapping: roles first, then groups by name, each with its roles in the
/// page's order.
pub async fn grants<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &CustomerId,
) -> Result<Vec<Grant>, sqlx::Error> {
    let rows: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT holder_kind, holder, holder_name, role_definition_id FROM customer_role_grants \
         WHERE customer_id = $1",
    )
    .bind(id)
    .fetch_all(ex)
    .await?;
    // A line this version cannot read (a role Gatehouse no longer offers, a kind of holder it
    // does not know) grants nothing.
    let mut grants: Vec<Grant> = rows
        .into_iter()
        .filter_map(|(kind, holder, name, role)| {
            let holders = match kind.as_str() {
                HOLDER_ROLE => Holder::Role(holder.parse().ok()?),
                HOLDER_GROUP => Holder::Group(GroupRef {
                    name: name.unwrap_or_else(|| holder.clone()),
                    id: GroupId::from_microsoft(holder),
                }),
                _ => return None,
            };
            Some(Grant {
                holders,
                role: EntraRole::parse(&role).ok()?,
            })
        })
        .collect();
    grants.sort_by_key(|g| {
        let holder = match &g.holders {
            Holder::Role(role) => (0, role.as_str().to_string()),
            Holder::Group(group) => (1, group.name.to_lowercase()),
        };
        (holder, EntraRole::offered().position(|r| r == g.role))
    });
    Ok(grants)
}

/// Every MSP group named in any of the tenant's customers' mappings.
pub async fn mapped_groups<'e>(
    ex: impl Executor<'e, Database = Any>,
    tenant_id: &TenantId,
) -> Result<Vec<GroupRef>, sqlx::Error> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT DISTINCT g.holder, g.holder_name FROM customer_role_grants g \
         JOIN customers c ON c.id = g.customer_id WHERE c.tenant_id = $1 AND g.holder_kind = $2 \
         ORDER BY g.holder",
    )
    .bind(tenant_id)
    .bind(HOLDER_GROUP)
    .fetch_all(ex)
    .await?;
    let mut groups: Vec<GroupRef> = Vec::new();
    for (id, name) in rows {
        let id = GroupId::from_microsoft(id);
        if !groups.iter().any(|g| g.id == id) {
            groups.push(GroupRef {
                name: name.unwrap_or_else(|| id.to_string()),
                id,
            });
        }
    }
    Ok(groups)
}

/// Adds a line to the mapping; false when it was there already.
pub async fn grant<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &CustomerId,
    grant: &Grant,
    by: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let (kind, holder, name) = grant.holders.columns();
    let done = sqlx::query(
        "INSERT INTO customer_role_grants (customer_id, holder_kind, holder, holder_name, role_definition_id, granted_by, granted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(kind)
    .bind(holder)
    .bind(name)
    .bind(grant.role.id())
    .bind(by)
    .bind(at)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes a line out of the mapping; false when it was not there. A group's line is found by
/// the group's id, whatever its name.
pub async fn withdraw<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &CustomerId,
    grant: &Grant,
) -> Result<bool, sqlx::Error> {
    let (kind, holder, _) = grant.holders.columns();
    let done = sqlx::query(
        "DELETE FROM customer_role_grants WHERE customer_id = $1 AND holder_kind = $2 \
         AND holder = $3 AND role_definition_id = $4",
    )
    .bind(id)
    .bind(kind)
    .bind(holder)
    .bind(grant.role.id())
    .execute(ex)
    .await?;
    Ok(done.rows_affected() == 1)
}
