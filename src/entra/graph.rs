use super::EntraError;
use crate::domain::{EntraUserId, GroupId};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long a caller can wait for Graph when it is busy (`429`) or briefly failing
/// (`500`/`502`/`503`/`504`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// Someone is waiting (a phone approval): two tries, a wait of at most two seconds.
    Interactive,
    /// A background run: four tries, waits of up to thirty seconds.
    Background,
}

impl Patience {
    fn attempts(self) -> u32 {
        match self {
            Patience::Interactive => 2,
            Patience::Background => 4,
        }
    }

    fn longest_wait(self) -> Duration {
        match self {
            Patience::Interactive => Duration::from_secs(2),
            Patience::Background => Duration::from_secs(30),
        }
    }

    /// The wait before try `attempt + 1`: Graph's `Retry-After`, else a doubling backoff.
    fn wait(self, attempt: u32, retry_after: Option<u64>) -> Duration {
        retry_after
            .map(Duration::from_secs)
            .unwrap_or_else(|| Duration::from_secs(1 << attempt.min(4)).min(self.longest_wait()))
    }
}

/// Statuses Graph's guidance (and field experience with 500/502) says to try again.
fn transient(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// An app-only session with Microsoft Graph for one Entra tenant.
pub struct Graph {
    http: reqwest::Client,
    base: String,
    token: std::sync::Mutex<SecretString>,
    requests: AtomicU32,
    /// Where a new token comes from when Graph refuses this one before its time: the client
    /// and the Entra tenant. Renewed once per session.
    renew: Option<(super::EntraClient, crate::domain::EntraTenantId)>,
    renewed: std::sync::atomic::AtomicBool,
    patience: Patience,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    pub id: String,
    #[serde(default)]
    pub is_verified: bool,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub is_initial: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// A directory user with the properties Gatehouse reads.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUser {
    pub id: EntraUserId,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub proxy_addresses: Vec<String>,
    #[serde(default)]
    pub other_mails: Vec<String>,
    #[serde(default)]
    pub user_type: Option<String>,
}

/// What group lists ask Graph for.
const GROUP_FIELDS: &str = "id,displayName,securityEnabled,groupTypes,visibility";
/// How many groups a search shows.
pub const GROUP_MATCHES: usize = 10;

/// A security or Microsoft 365 group, with how many users it holds when that was counted.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryGroup {
    pub id: GroupId,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub security_enabled: Option<bool>,
    #[serde(default)]
    pub group_types: Vec<String>,
    /// `Public`, `Private` or `HiddenMembership`.
    /// https://learn.microsoft.com/en-us/graph/api/resources/group?view=graph-rest-1.0#properties
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(skip)]
    pub users: Option<u64>,
}

impl DirectoryGroup {
    /// A Microsoft 365 group (`groupTypes` holds `Unified`).
    pub fn is_microsoft_365(&self) -> bool {
        self.group_types.iter().any(|t| t == "Unified")
    }

    /// Security groups and Microsoft 365 groups hold people; a mail-only distribution list
    /// is neither and cannot scope anything.
    pub fn may_hold_people(&self) -> bool {
        self.is_microsoft_365() || self.security_enabled == Some(true)
    }

    /// A public Microsoft 365 group: anyone in the organization may join it, without an
    /// owner's approval. A Microsoft 365 group whose visibility Graph did not say counts as
    /// public, Microsoft's default for one made without it.
    pub fn anyone_can_join(&self) -> bool {
        self.is_microsoft_365()
            && self
                .visibility
                .as_deref()
                .is_none_or(|v| v.eq_ignore_ascii_case("Public"))
    }

    /// "Security", "Microsoft 365" or "public Microsoft 365", as Entra's portal names them.
    pub fn kind(&self) -> &'static str {
        match (self.is_microsoft_365(), self.anyone_can_join()) {
            (true, true) => "public Microsoft 365",
            (true, false) => "Microsoft 365",
            (false, _) => "Security",
        }
    }

    pub fn name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(self.id.as_str())
    }
}

/// A member in a list of members, by object id.
#[derive(Deserialize)]
struct Member {
    id: EntraUserId,
}

/// Graph's answer for an object that does not exist.
fn is_not_found(e: &EntraError) -> bool {
    matches!(e, EntraError::Graph { status: 404, .. })
        || matches!(e, EntraError::Graph { code, .. } if code == "Request_ResourceNotFound")
}

/// One entry of a `/users/delta` page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaEntry {
    pub id: EntraUserId,
    /// `@removed.reason`: soft delete (`changed`, also for a reason Gatehouse does not know)
    /// or hard delete (`deleted`).
    pub removed: Option<crate::domain::RemovedReason>,
    pub account_enabled: Option<bool>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    /// SMTP proxy addresses (without their `SMTP:`/`smtp:` prefix) and other mails, when the
    /// entry carries them.
    pub other_addresses: Option<Vec<String>>,
}

/// The address of an SMTP proxy address (`SMTP:` primary, `smtp:` alias); other kinds
/// (`X500:`, `SIP:` …) are not mail addresses.
fn smtp_address(proxy: &str) -> Option<&str> {
    proxy
        .split_once(':')
        .filter(|(kind, _)| kind.eq_ignore_ascii_case("smtp"))
        .map(|(_, addr)| addr)
}

impl DirectoryUser {
    /// Every address Entra lists for the account: sign-in name, mail, SMTP proxy addresses
    /// and other mails.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.user_principal_name
            .as_deref()
            .into_iter()
            .chain(self.mail.as_deref())
            .chain(self.proxy_addresses.iter().filter_map(|p| smtp_address(p)))
            .chain(self.other_mails.iter().map(String::as_str))
    }
}

/// The SMTP proxy addresses and other mails of a delta entry, if it carries either.
fn other_addresses(item: &Value) -> Option<Vec<String>> {
    let strings = |key: &str| {
        item.get(key).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
    };
    let proxies = strings("proxyAddresses");
    let others = strings("otherMails");
    if proxies.is_none() && others.is_none() {
        return None;
    }
    let mut all: Vec<String> = proxies
        .unwrap_or_default()
        .iter()
        .filter_map(|p| smtp_address(p))
        .map(str::to_string)
        .collect();
    all.extend(others.unwrap_or_default());
    Some(all)
}

/// A subscription as Graph answered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphSubscription {
    pub id: crate::domain::SubscriptionId,
    /// Seconds since the Unix epoch.
    pub expires_at: i64,
}

fn read_subscription(answer: &Value) -> Result<GraphSubscription, EntraError> {
    let id = answer["id"]
        .as_str()
        .ok_or_else(|| EntraError::Malformed("a subscription without an id".into()))?;
    let expires_at = answer["expirationDateTime"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .ok_or_else(|| {
            EntraError::Malformed("a subscription without a readable expirationDateTime".into())
        })?
        .timestamp();
    Ok(GraphSubscription {
        id: crate::domain::SubscriptionId::from_microsoft(id),
        expires_at,
    })
}

/// Graph's timestamps: RFC 3339 in UTC.
fn graph_time(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A page of a delta walk: entries and exactly one of the two links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaPage {
    pub entries: Vec<DeltaEntry>,
    pub next_link: Option<String>,
    pub delta_link: Option<String>,
}

const USER_FIELDS: &str = "id,userPrincipalName,mail,accountEnabled,displayName,givenName,surname,proxyAddresses,otherMails,userType";

impl Graph {
    pub(super) fn new(
        http: reqwest::Client,
        base: String,
        token: SecretString,
        renew: Option<(super::EntraClient, crate::domain::EntraTenantId)>,
    ) -> Self {
        Self {
            http,
            base,
            token: std::sync::Mutex::new(token),
            requests: AtomicU32::new(0),
            renew,
            renewed: std::sync::atomic::AtomicBool::new(false),
            patience: Patience::Background,
        }
    }

    /// The same session for a caller someone is waiting on.
    pub fn interactive(mut self) -> Self {
        self.patience = Patience::Interactive;
        self
    }

    fn token(&self) -> SecretString {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// After a `401`: a new token, once per session, when this one came from the cache
    /// (Microsoft may end a token early). True when there is one to try.
    async fn renew_token(&self) -> Result<bool, EntraError> {
        let Some((client, tid)) = &self.renew else {
            return Ok(false);
        };
        if self.renewed.swap(true, Ordering::SeqCst) {
            return Ok(false);
        }
        client.forget_token(tid).await;
        let fresh = client.app_token(tid).await?;
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(true)
    }

    /// Drops the cached app token of this session's tenant: the next session gets a new one,
    /// carrying what the tenant has consented to by then (a token keeps the permissions it
    /// was issued with, so a consent given meanwhile shows only in a new token).
    pub async fn forget_token(&self) {
        if let Some((client, tid)) = &self.renew {
            client.forget_token(tid).await;
        }
    }

    /// `GRAPH_BASE_URL`, where every request of this session goes.
    pub(super) fn base_url(&self) -> &str {
        &self.base
    }

    /// Requests sent so far, retries included.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }

    pub async fn organization(&self) -> Result<Organization, EntraError> {
        let page = self
            .get(&format!("{}/v1.0/organization", self.base))
            .await?;
        let mut orgs: Vec<Organization> = values(page)?;
        orgs.pop()
            .ok_or_else(|| EntraError::Malformed("/organization listed no organization".into()))
    }

    /// The tenant's domains (Graph lists them in one page).
    pub async fn domains(&self) -> Result<Vec<Domain>, EntraError> {
        values(self.get(&format!("{}/v1.0/domains", self.base)).await?)
    }

    /// Subscribes to changes of the tenant's users (`updated,deleted`: Microsoft reports
    /// creation, soft deletion and restore as `updated`). Graph first proves both URLs with a
    /// `validationToken` handshake.
    /// https://learn.microsoft.com/en-us/graph/api/subscription-post-subscriptions
    pub async fn subscribe_to_users(
        &self,
        notification_url: &str,
        lifecycle_url: &str,
        client_state: &SecretString,
        expires_at: i64,
    ) -> Result<GraphSubscription, EntraError> {
        let body = serde_json::json!({
            "changeType": "updated,deleted",
            "resource": "users",
            "notificationUrl": notification_url,
            "lifecycleNotificationUrl": lifecycle_url,
            "clientState": client_state.expose_secret(),
            "expirationDateTime": graph_time(expires_at),
        });
        let answer = self
            .send(
                reqwest::Method::POST,
                &format!("{}/v1.0/subscriptions", self.base),
                Some(body),
            )
            .await?;
        read_subscription(&answer)
    }

    /// Moves the subscription's expiry (Microsoft's renewal).
    pub async fn renew_subscription(
        &self,
        id: &crate::domain::SubscriptionId,
        expires_at: i64,
    ) -> Result<GraphSubscription, EntraError> {
        let body = serde_json::json!({ "expirationDateTime": graph_time(expires_at) });
        let answer = self
            .send(
                reqwest::Method::PATCH,
                &format!(
                    "{}/v1.0/subscriptions/{}",
                    self.base,
                    urlencode(id.as_str())
                ),
                Some(body),
            )
            .await?;
        read_subscription(&answer)
    }

    /// Whether Graph still has the subscription. For users Microsoft sends no lifecycle event
    /// when it removes one, so this is how Gatehouse finds out.
    /// https://learn.microsoft.com/en-us/graph/api/subscription-get
    pub async fn subscription_exists(
        &self,
        id: &crate::domain::SubscriptionId,
    ) -> Result<bool, EntraError> {
        let url = format!(
            "{}/v1.0/subscriptions/{}",
            self.base,
            urlencode(id.as_str())
        );
        match self.get(&url).await {
            Ok(_) => Ok(true),
            Err(EntraError::Graph { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Ends the subscription; one Graph no longer has is ended already.
    pub async fn unsubscribe(&self, id: &crate::domain::SubscriptionId) -> Result<(), EntraError> {
        let url = format!(
            "{}/v1.0/subscriptions/{}",
            self.base,
            urlencode(id.as_str())
        );
        match self.send(reqwest::Method::DELETE, &url, None).await {
            Ok(_) => Ok(()),
            Err(EntraError::Graph { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A user by object id; `None` when Graph says it does not exist.
    pub async fn user(&self, oid: &EntraUserId) -> Result<Option<DirectoryUser>, EntraError> {
        let url = format!(
            "{}/v1.0/users/{}?$select={USER_FIELDS}",
            self.base,
            urlencode(oid.as_str())
        );
        match self.get(&url).await {
            Ok(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| EntraError::Malformed(e.to_string())),
            Err(EntraError::Graph { code, .. }) if code == "Request_ResourceNotFound" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Users whose sign-in name, mail, SMTP proxy address or other mail is `email`: one
    /// `$batch` of simple filters, since Graph accepts `or` across these properties only as
    /// an advanced query.
    pub async fn users_by_email(&self, email: &str) -> Result<Vec<DirectoryUser>, EntraError> {
        let filters = email_filters(email);
        let requests: Vec<Value> = filters
            .iter()
            .enumerate()
            .map(|(i, f)| {
                serde_json::json!({
                    "id": (i + 1).to_string(),
                    "method": "GET",
                    "url": format!("/users?$select={USER_FIELDS}&$filter={}", urlencode(f)),
                })
            })
            .collect();
        let responses = self.batch(requests).await?;
        let mut users: Vec<DirectoryUser> = Vec::new();
        for r in &responses {
            let status = r["status"].as_u64().unwrap_or(0) as u16;
            if status != 200 {
                return Err(EntraError::Graph {
                    status,
                    code: r["body"]["error"]["code"]
                        .as_str()
                        .unwrap_or("unknown")
                        .to_string(),
                    message: r["body"]["error"]["message"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                });
            }
            let mut page = r["body"].clone();
            loop {
                let next = page
                    .get("@odata.nextLink")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                for u in values::<DirectoryUser>(page)? {
                    if !users.iter().any(|known| known.id == u.id) {
                        users.push(u);
                    }
                }
                match next {
                    Some(n) => page = self.get(&n).await?,
                    None => break,
                }
            }
        }
        Ok(users)
    }

    /// Sends a JSON batch and returns one response per request. Graph meters each item on
    /// its own: a `200` batch may hold items answered `429` (or `503`/`504`) with their own
    /// `Retry-After`; those items are sent again, after the longest of their waits, a
    /// bounded number of times. https://learn.microsoft.com/en-us/graph/throttling
    async fn batch(&self, requests: Vec<Value>) -> Result<Vec<Value>, EntraError> {
        let mut pending = requests;
        let mut done: Vec<Value> = Vec::with_capacity(pending.len());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer = self
                .send(
                    reqwest::Method::POST,
                    &format!("{}/v1.0/$batch", self.base),
                    Some(serde_json::json!({ "requests": pending })),
                )
                .await?;
            let Some(Value::Array(responses)) = answer.get("responses") else {
                return Err(EntraError::Malformed(
                    "a $batch answer without `responses`".into(),
                ));
            };
            let mut again = Vec::new();
            let mut failed = Vec::new();
            let mut wait = Duration::ZERO;
            for r in responses {
                let status = r["status"].as_u64().unwrap_or(0) as u16;
                if transient(status) {
                    let id = r["id"].as_str().unwrap_or_default();
                    if let Some(req) = pending.iter().find(|q| q["id"] == id) {
                        again.push(req.clone());
                        failed.push(r.clone());
                        // Header names in a batch item are not case-normalised.
                        let after = r["headers"].as_object().and_then(|h| {
                            h.iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                                .and_then(|(_, v)| v.as_str()?.trim().parse::<u64>().ok())
                        });
                        wait = wait.max(self.patience.wait(attempt, after));
                        continue;
                    }
                }
                done.push(r.clone());
            }
            if again.is_empty() {
                return Ok(done);
            }
            if attempt >= self.patience.attempts() || wait > self.patience.longest_wait() {
                // Out of patience: the caller sees these items' own answers.
                done.extend(failed);
                return Ok(done);
            }
            metrics::counter!("gatehouse_graph_batch_item_retries_total")
                .increment(again.len() as u64);
            tokio::time::sleep(wait).await;
            pending = again;
        }
    }

    /// Security and Microsoft 365 groups whose display name starts with `text` (at most
    /// `GROUP_MATCHES`), each with how many users it holds through nested groups: what an
    /// admin picks from. Needs `GroupMember.Read.All`.
    /// https://learn.microsoft.com/en-us/graph/api/group-list
    pub async fn find_groups(&self, text: &str) -> Result<Vec<DirectoryGroup>, EntraError> {
        let filter = format!("startswith(displayName,'{}')", text.replace('\'', "''"));
        let url = format!(
            "{}/v1.0/groups?$select={GROUP_FIELDS}&$top={GROUP_MATCHES}&$filter={}",
            self.base,
            urlencode(&filter)
        );
        let mut groups: Vec<DirectoryGroup> = values(self.get(&url).await?)?;
        groups.retain(DirectoryGroup::may_hold_people);
        for g in &mut groups {
            g.users = Some(self.count_users(&g.id).await?);
        }
        Ok(groups)
    }

    /// One group by object id; `None` when Graph says it does not exist (deleted).
    pub async fn group(&self, id: &GroupId) -> Result<Option<DirectoryGroup>, EntraError> {
        let url = format!(
            "{}/v1.0/groups/{}?$select={GROUP_FIELDS}",
            self.base,
            urlencode(id.as_str())
        );
        match self.get(&url).await {
            Ok(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| EntraError::Malformed(e.to_string())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// How many users the group holds, nested groups included (an advanced query).
    /// https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers
    pub async fn count_users(&self, group: &GroupId) -> Result<u64, EntraError> {
        let url = format!(
            "{}/v1.0/groups/{}/transitiveMembers/microsoft.graph.user/$count",
            self.base,
            urlencode(group.as_str())
        );
        let res = self
            .answer(reqwest::Method::GET, &url, None, Call::Eventual)
            .await?;
        let text = res
            .text()
            .await
            .map_err(|e| EntraError::Malformed(e.to_string()))?;
        text.trim().parse().map_err(|_| {
            EntraError::Malformed(format!("a member count that is not a number: {text:.40}"))
        })
    }

    /// Which of `groups` (at most 20) the user is in, directly or through nested groups.
    /// https://learn.microsoft.com/en-us/graph/api/directoryobject-checkmembergroups
    pub async fn member_of(
        &self,
        user: &EntraUserId,
        groups: &[&GroupId],
    ) -> Result<Vec<GroupId>, EntraError> {
        let url = format!(
            "{}/v1.0/directoryObjects/{}/checkMemberGroups",
            self.base,
            urlencode(user.as_str())
        );
        let answer = self
            .send(
                reqwest::Method::POST,
                &url,
                Some(serde_json::json!({ "groupIds": groups })),
            )
            .await?;
        let found: Vec<GroupId> = values(answer)?;
        // Only what was asked: an answer naming other groups grants nothing.
        Ok(found.into_iter().filter(|g| groups.contains(&g)).collect())
    }

    /// Every user the group holds through nested groups (object ids), page by page at
    /// Graph's largest page size. `None` when the group no longer exists.
    pub async fn user_ids_in(
        &self,
        group: &GroupId,
    ) -> Result<Option<std::collections::HashSet<EntraUserId>>, EntraError> {
        let mut url = format!(
            "{}/v1.0/groups/{}/transitiveMembers/microsoft.graph.user?$select=id&$top=999",
            self.base,
            urlencode(group.as_str())
        );
        let mut ids = std::collections::HashSet::new();
        loop {
            let page = match self.get(&url).await {
                Ok(page) => page,
                Err(e) if is_not_found(&e) && ids.is_empty() => return Ok(None),
                Err(e) => return Err(e),
            };
            let next = page
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .map(str::to_string);
            for member in values::<Member>(page)? {
                ids.insert(member.id);
            }
            match next {
                Some(n) => url = n,
                None => return Ok(Some(ids)),
            }
        }
    }

    /// The URL that starts a delta walk over users with the properties the reconciler reads.
    pub fn delta_start(&self) -> String {
        format!(
            "{}/v1.0/users/delta?$select=id,accountEnabled,userPrincipalName,mail,proxyAddresses,otherMails",
            self.base
        )
    }

    /// One page of a delta walk (`url` is the start, a nextLink or a stored deltaLink).
    pub async fn delta_page(&self, url: &str) -> Result<DeltaPage, EntraError> {
        let page = read_delta_page(&self.get(url).await?)?;
        // Checked when received, so a foreign deltaLink is never stored for the next run.
        for link in page.next_link.iter().chain(page.delta_link.iter()) {
            self.check_origin(link)?;
        }
        Ok(page)
    }

    /// Whether a link Gatehouse kept (a deltaLink) points at this `GRAPH_BASE_URL`. One kept
    /// while Gatehouse used another Graph address (the operator changed it since) is not
    /// followed: the walk starts again here.
    pub fn made_here(&self, link: &str) -> bool {
        same_origin(&self.base, link)
    }

    /// Refuses a URL outside `GRAPH_BASE_URL`'s origin.
    pub(super) fn check_origin(&self, url: &str) -> Result<(), EntraError> {
        if same_origin(&self.base, url) {
            return Ok(());
        }
        Err(EntraError::Malformed(format!(
            "Graph sent a link outside GRAPH_BASE_URL ({}); it was not followed",
            reqwest::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| "not a URL".into())
        )))
    }

    /// GET with the bearer token.
    pub(super) async fn get(&self, url: &str) -> Result<Value, EntraError> {
        self.send(reqwest::Method::GET, url, None).await
    }

    /// A call with the bearer token; 429 and 5xx answers Graph calls transient are retried
    /// after `Retry-After`, as often and as long as the session's patience allows. Errors
    /// carry Graph's `error.code`.
    pub(super) async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, EntraError> {
        self.send_as(method, url, body, Call::Plain).await
    }

    /// A call sent once, whatever Graph answers: for a request that is not safe to repeat
    /// (making a user: a 5xx may come after Graph made it).
    pub(super) async fn send_once(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, EntraError> {
        self.send_as(method, url, body, Call::Once).await
    }

    async fn send_as(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
        call: Call,
    ) -> Result<Value, EntraError> {
        let res = self.answer(method, url, body, call).await?;
        if res.status().as_u16() == 204 {
            return Ok(Value::Null);
        }
        res.json()
            .await
            .map_err(|e| EntraError::Malformed(e.to_string()))
    }

    /// The successful answer to a call (see `send`).
    async fn answer(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
        call: Call,
    ) -> Result<reqwest::Response, EntraError> {
        self.check_origin(url)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let sent = std::time::Instant::now();
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(self.token().expose_secret())
                .header("client-request-id", crate::server::util::random_id(12));
            if call == Call::Eventual {
                request = request.header("ConsistencyLevel", "eventual");
            }
            if let Some(b) = &body {
                request = request.json(b);
            }
            let res = request
                .send()
                .await
                .map_err(|e| EntraError::Network(e.to_string()))?;
            let status = res.status().as_u16();
            metrics::histogram!("gatehouse_graph_request_seconds", "status" => status.to_string())
                .record(sent.elapsed().as_secs_f64());
            if transient(status) {
                let after = res
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let wait = self.patience.wait(attempt, after);
                if call == Call::Once
                    || attempt >= self.patience.attempts()
                    || wait > self.patience.longest_wait()
                {
                    return Err(if status == 429 {
                        EntraError::Throttled(attempt)
                    } else {
                        graph_error(status, res).await
                    });
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            if status == 401 && self.renew_token().await? {
                continue;
            }
            if status == 403 {
                // A token keeps the permissions it was issued with: the next try (after a new
                // consent, say) must get a new one to carry what was granted since.
                self.forget_token().await;
            }
            if !(200..300).contains(&status) {
                return Err(graph_error(status, res).await);
            }
            return Ok(res);
        }
    }
}

/// How a call is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    /// Retried on 429 and 5xx, as the session's patience allows.
    Plain,
    /// An advanced query (`ConsistencyLevel: eventual`, which counting needs), retried so too.
    Eventual,
    /// Sent once: repeating it could do twice what Graph did once.
    Once,
}

async fn graph_error(status: u16, res: reqwest::Response) -> EntraError {
    let body: Value = res.json().await.unwrap_or(Value::Null);
    EntraError::Graph {
        status,
        code: body["error"]["code"]
            .as_str()
            .unwrap_or("unknown")
            .to_string(),
        message: body["error"]["message"].as_str().unwrap_or("").to_string(),
    }
}

/// The five `$filter`s that find a user by `email`: sign-in name, mail, primary or secondary
/// SMTP proxy address, other mails. OData string literals double their single quotes.
pub(crate) fn email_filters(email: &str) -> [String; 5] {
    let e = email.replace('\'', "''");
    [
        format!("userPrincipalName eq '{e}'"),
        format!("mail eq '{e}'"),
        format!("proxyAddresses/any(p:p eq 'SMTP:{e}')"),
        format!("proxyAddresses/any(p:p eq 'smtp:{e}')"),
        format!("otherMails/any(m:m eq '{e}')"),
    ]
}

/// Reads one page of a users delta walk: its entries and its nextLink or deltaLink. Anything
/// else is malformed: a page without `value`, an entry without `id`, no link at all.
pub(crate) fn read_delta_page(page: &Value) -> Result<DeltaPage, EntraError> {
    let link = |name: &str| page.get(name).and_then(Value::as_str).map(str::to_string);
    let (next_link, delta_link) = (link("@odata.nextLink"), link("@odata.deltaLink"));
    let Some(Value::Array(items)) = page.get("value") else {
        return Err(EntraError::Malformed("a delta page without `value`".into()));
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| EntraError::Malformed("a delta entry without `id`".into()))?;
        entries.push(DeltaEntry {
            id: EntraUserId::from_microsoft(id),
            removed: item.get("@removed").map(|r| {
                r.get("reason")
                    .and_then(Value::as_str)
                    .and_then(|reason| reason.parse().ok())
                    .unwrap_or(crate::domain::RemovedReason::Changed)
            }),
            account_enabled: item.get("accountEnabled").and_then(Value::as_bool),
            user_principal_name: item
                .get("userPrincipalName")
                .and_then(Value::as_str)
                .map(str::to_string),
            mail: item.get("mail").and_then(Value::as_str).map(str::to_string),
            other_addresses: other_addresses(item),
        });
    }
    if next_link.is_none() && delta_link.is_none() {
        return Err(EntraError::Malformed(
            "a delta page with neither nextLink nor deltaLink".into(),
        ));
    }
    Ok(DeltaPage {
        entries,
        next_link,
        delta_link,
    })
}

/// True when `url` has the scheme, host and port of `base` (`GRAPH_BASE_URL`): Graph's
/// nextLink and deltaLink are followed as given, and the bearer token must never go anywhere
/// else.
pub(crate) fn same_origin(base: &str, url: &str) -> bool {
    let origin = |u: &str| reqwest::Url::parse(u).ok().map(|u| u.origin());
    matches!((origin(url), origin(base)), (Some(to), Some(base)) if to == base && to.is_tuple())
}

fn values<T: serde::de::DeserializeOwned>(page: Value) -> Result<Vec<T>, EntraError> {
    match page.get("value") {
        Some(v @ Value::Array(_)) => {
            serde_json::from_value(v.clone()).map_err(|e| EntraError::Malformed(e.to_string()))
        }
        _ => Err(EntraError::Malformed("a page without `value`".into())),
    }
}

pub(super) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Any JSON value, nested a few levels.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::hash_map(
                    prop_oneof![
                        Just("value".to_string()),
                        Just("id".to_string()),
                        Just("@removed".to_string()),
                        Just("@odata.nextLink".to_string()),
                        Just("@odata.deltaLink".to_string()),
                        Just("proxyAddresses".to_string()),
                        "[a-z]{1,8}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    const BASE: &str = "https://graph.microsoft.com";

    proptest! {
        /// Whatever Graph (or something pretending to be it) sends, reading a delta page
        /// gives a page or a Malformed error, never a panic, and an accepted page has a link.
        #[test]
        fn a_delta_page_is_read_or_refused_never_a_panic(page in json()) {
            match read_delta_page(&page) {
                Ok(p) => prop_assert!(p.next_link.is_some() || p.delta_link.is_some()),
                Err(e) => prop_assert!(matches!(e, EntraError::Malformed(_))),
            }
        }

        /// A well-formed page keeps every entry, in order, with its removal reason.
        #[test]
        fn a_well_formed_page_keeps_every_entry(
            ids in prop::collection::vec("[0-9a-f-]{8,36}", 0..30),
            removed in prop::collection::vec(prop::option::of(prop::sample::select(crate::domain::RemovedReason::ALL)), 30),
        ) {
            let items: Vec<Value> = ids
                .iter()
                .zip(&removed)
                .map(|(id, r)| match r {
                    Some(reason) => serde_json::json!({"id": id, "@removed": {"reason": reason.as_str()}}),
                    None => serde_json::json!({"id": id, "accountEnabled": true}),
                })
                .collect();
            let page = serde_json::json!({"value": items, "@odata.deltaLink": format!("{BASE}/v1.0/users/delta?$deltatoken=x")});
            let read = read_delta_page(&page).unwrap();
            prop_assert_eq!(read.entries.len(), ids.len());
            for ((entry, id), r) in read.entries.iter().zip(&ids).zip(&removed) {
                prop_assert_eq!(entry.id.as_str(), id);
                prop_assert_eq!(entry.removed, *r);
            }
        }

        /// Links on Graph's origin are followed, whatever their path and query.
        #[test]
        fn links_on_graphs_origin_are_followed(path in "[a-zA-Z0-9/._~-]{0,40}", query in "[a-zA-Z0-9=&$%-]{0,40}") {
            let link = format!("{BASE}/{path}?{query}");
            prop_assert!(same_origin(BASE, &link), "{}", link);
        }

        /// Links that only look like Graph's (a longer host, Graph's name as the user part,
        /// another scheme or port, a host that ends like it) never get the token.
        #[test]
        fn links_that_only_look_like_graph_are_refused(
            host in "[a-z0-9-]{1,12}(\\.[a-z]{2,6}){1,2}",
            path in "[a-z/]{0,20}",
            port in 1u16..,
            trick in 0..6usize,
        ) {
            let link = match trick {
                0 => format!("https://graph.microsoft.com.{host}/{path}"),
                1 => format!("https://graph.microsoft.com@{host}/{path}"),
                2 => format!("https://{host}/graph.microsoft.com/{path}"),
                3 => format!("http://graph.microsoft.com/{path}"),
                4 => format!("https://{host}.graph.microsoft.com/{path}"),
                _ => format!("https://graph.microsoft.com:{port}/{path}"),
            };
            prop_assume!(!(trick == 5 && port == 443));
            prop_assert!(!same_origin(BASE, &link), "{}", link);
        }

        /// The filters that look a user up by email, for every address Gatehouse accepts
        /// (apostrophes included), parse as OData and find the user who has that address,
        /// in each of the properties they name.
        #[test]
        fn every_email_lookup_filter_finds_its_user(
            local in "[A-Za-z0-9][A-Za-z0-9.'+_-]{0,20}[A-Za-z0-9]",
            domain in "[a-z]{1,10}\\.[a-z]{2,5}",
        ) {
            prop_assume!(!local.contains(".."));
            let email = crate::domain::Email::parse(&format!("{local}@{domain}")).unwrap();
            let shouted = format!("{local}@{domain}").to_uppercase();
            let holders = [
                serde_json::json!({"userPrincipalName": shouted, "displayName": "x"}),
                serde_json::json!({"userPrincipalName": "x@y.z", "displayName": "x", "mail": shouted}),
                serde_json::json!({"userPrincipalName": "x@y.z", "displayName": "x", "proxyAddresses": [format!("SMTP:{shouted}")]}),
                serde_json::json!({"userPrincipalName": "x@y.z", "displayName": "x", "proxyAddresses": [format!("smtp:{shouted}")]}),
                serde_json::json!({"userPrincipalName": "x@y.z", "displayName": "x", "otherMails": [shouted]}),
            ];
            let nobody: gatehouse_emulator::User =
                serde_json::from_value(serde_json::json!({"userPrincipalName": "x@y.z", "displayName": "x"})).unwrap();
            for (filter, holder) in email_filters(email.as_str()).iter().zip(holders) {
                let parsed = gatehouse_emulator::filter::parse(filter);
                prop_assert!(parsed.is_ok(), "{} does not parse: {:?}", filter, parsed.err());
                let parsed = parsed.unwrap();
                let holder: gatehouse_emulator::User = serde_json::from_value(holder).unwrap();
                prop_assert!(parsed.matches(&holder), "{} finds its user", filter);
                prop_assert!(!parsed.matches(&nobody), "{} finds nobody else", filter);
            }
        }
    }
}
