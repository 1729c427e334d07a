//! The emulator's in-memory world: directories (Entra tenants) with their users and change log,
//! registered apps, consents, pending authorization codes and change-notification subscriptions.

use crate::ids::{new_guid, random_id};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

fn yes() -> bool {
    true
}

fn member() -> String {
    "Member".into()
}

/// A directory user with the properties Gatehouse reads (Graph names, camelCase in JSON).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default = "new_guid")]
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
    #[serde(default)]
    pub proxy_addresses: Vec<String>,
    #[serde(default)]
    pub other_mails: Vec<String>,
    #[serde(default = "yes")]
    pub account_enabled: bool,
    #[serde(default = "member")]
    pub user_type: String,
    /// Emulator-only: this user may grant tenant-wide admin consent.
    #[serde(default)]
    pub is_admin: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_nickname: Option<String>,
    /// When the user's sign-in sessions last had to start again (revokeSignInSessions), as
    /// Graph writes it (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_sessions_valid_from: Option<String>,
    /// Emulator-only: the app (client id) that made this user through Graph, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by_app: Option<String>,
}

/// A domain of a directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    pub name: String,
    #[serde(default = "yes")]
    pub is_verified: bool,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub is_initial: bool,
}

/// Problems with a change asked of the model.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("no directory with tenant id {0}")]
    UnknownDirectory(String),
    #[error("no user {0} in this directory")]
    UnknownUser(String),
    #[error("a user with userPrincipalName or id {0} already exists")]
    Duplicate(String),
    #[error("no app with client id {0}")]
    UnknownApp(String),
    #[error("user {0} is not deleted")]
    NotDeleted(String),
    #[error(transparent)]
    Group(#[from] crate::membership::GroupError),
}

/// What happened to a user at one point of the change log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    SoftDeleted,
    Restored,
    HardDeleted,
}

/// One entry of the change log.
#[derive(Clone, Debug)]
pub struct Change {
    pub id: String,
    pub kind: ChangeKind,
}

/// A user as stored: soft-deleted users stay (Entra keeps them 30 days) but are hidden.
#[derive(Clone, Debug)]
pub struct StoredUser {
    pub user: User,
    pub deleted: bool,
}

/// Admin consent of one app in one directory.
#[derive(Clone, Debug)]
pub struct Consent {
    /// Object id of the app's service principal in this tenant (the `oid` of app-only tokens).
    pub service_principal_id: String,
    pub roles: Vec<String>,
    /// When the consent was granted (Unix seconds; 0 for a seed's, long applied).
    pub granted_at: i64,
}

/// One Entra tenant.
#[derive(Debug)]
pub struct Directory {
    pub tenant_id: String,
    pub display_name: String,
    pub domains: Vec<Domain>,
    users: BTreeMap<u64, StoredUser>,
    by_id: HashMap<String, u64>,
    by_upn: HashMap<String, u64>,
    next_order: u64,
    /// `log[n]` is the id of the user whose change has sequence number `n + 1`: delta reads only
    /// the tail after a token's position, so it costs O(changes), not O(directory).
    log: Vec<Change>,
    /// Delta tokens before this sequence number have expired.
    pub log_floor: u64,
    /// Random per run: delta tokens from an earlier run of the emulator are unknown.
    pub delta_epoch: String,
    /// Admin consents by client id.
    pub consents: HashMap<String, Consent>,
    /// (client id, user id) pairs that consented for themselves.
    pub user_consents: HashSet<(String, String)>,
    /// Groups and their members.
    pub groups: crate::membership::Groups,
    /// SHA-256 of the password of each user made with one through Graph, by user id.
    passwords: HashMap<String, String>,
    /// Directory roles held by users and apps' service principals.
    pub role_assignments: Vec<crate::roles::RoleAssignment>,
    /// The Temporary Access Pass policy, and each user's pass by user id.
    pub tap_policy: crate::secrets::TapPolicy,
    pub passes: HashMap<String, crate::secrets::Pass>,
}

impl Directory {
    /// An empty directory.
    pub fn new(tenant_id: String, display_name: String, domains: Vec<Domain>) -> Self {
        Self {
            tenant_id,
            display_name,
            domains,
            users: BTreeMap::new(),
            by_id: HashMap::new(),
            by_upn: HashMap::new(),
            next_order: 1,
            log: Vec::new(),
            log_floor: 0,
            delta_epoch: random_id(6),
            consents: HashMap::new(),
            user_consents: HashSet::new(),
            groups: Default::default(),
            passwords: HashMap::new(),
            role_assignments: Vec::new(),
            tap_policy: Default::default(),
            passes: HashMap::new(),
        }
    }

    /// The role definition ids `principal_id` holds.
    pub fn roles_of(&self, principal_id: &str) -> Vec<String> {
        self.role_assignments
            .iter()
            .filter(|a| a.principal_id == principal_id)
            .map(|a| a.role_definition_id.clone())
            .collect()
    }

    /// Keeps the hash of a user's password.
    pub fn set_password(&mut self, user_id: &str, hash: &str) {
        self.passwords.insert(user_id.to_string(), hash.to_string());
    }

    /// Whether `hash` is the hash of the user's password.
    pub fn password_is(&self, user_id: &str, hash: &str) -> bool {
        self.passwords.get(user_id).is_some_and(|h| h == hash)
    }

    /// Signs a user (by id or sign-in name) in with `secret`: their password, given through
    /// Graph, or their Temporary Access Pass while it is usable (one usable once is then used
    /// up). The user, or why not in the words Microsoft's sign-in page uses.
    pub fn sign_in(&mut self, id_or_upn: &str, secret: &str) -> Result<User, &'static str> {
        const WRONG: &str = "Your account or password is incorrect.";
        let user = self.live(id_or_upn).cloned().ok_or(WRONG)?;
        let hash = crate::secrets::password_hash(secret);
        let pass_works = self.passes.get(&user.id).is_some_and(|p| {
            p.hash == hash && p.usability(&self.tap_policy, chrono::Utc::now()) == "EnabledByPolicy"
        });
        if !self.password_is(&user.id, &hash) && !pass_works {
            return Err(WRONG);
        }
        if !user.account_enabled {
            return Err("Your account has been locked. Contact your support person to unlock it, then try again.");
        }
        if pass_works {
            if let Some(pass) = self.passes.get_mut(&user.id) {
                pass.used |= pass.is_usable_once;
            }
        }
        Ok(user)
    }

    /// True when `name` is one of this directory's verified domains (case-insensitive).
    pub fn has_verified_domain(&self, name: &str) -> bool {
        self.domains
            .iter()
            .any(|d| d.is_verified && d.name.eq_ignore_ascii_case(name))
    }

    /// The current change sequence number: a delta token taken now starts here.
    pub fn seq(&self) -> u64 {
        self.log.len() as u64
    }

    /// Changes with sequence numbers in `(from, to]`.
    pub fn changes(&self, from: u64, to: u64) -> &[Change] {
        let to = (to as usize).min(self.log.len());
        let from = (from as usize).min(to);
        &self.log[from..to]
    }

    fn touch(&mut self, id: &str, kind: ChangeKind) {
        self.log.push(Change {
            id: id.to_string(),
            kind,
        });
    }

    /// Adds a user; the id and the UPN must be new.
    pub fn add_user(&mut self, user: User) -> Result<&User, ModelError> {
        let upn = user.user_principal_name.to_lowercase();
        if self.by_id.contains_key(&user.id) {
            return Err(ModelError::Duplicate(user.id));
        }
        if self.by_upn.contains_key(&upn) {
            return Err(ModelError::Duplicate(user.user_principal_name));
        }
        let order = self.next_order;
        self.next_order += 1;
        self.by_id.insert(user.id.clone(), order);
        self.by_upn.insert(upn, order);
        self.touch(&user.id, ChangeKind::Created);
        let stored = self.users.entry(order).or_insert(StoredUser {
            user,
            deleted: false,
        });
        Ok(&stored.user)
    }

    fn order_of(&self, id_or_upn: &str) -> Option<u64> {
        self.by_id
            .get(id_or_upn)
            .or_else(|| self.by_upn.get(&id_or_upn.to_lowercase()))
            .copied()
    }

    /// A user by id or userPrincipalName, deleted or not.
    pub fn find(&self, id_or_upn: &str) -> Option<&StoredUser> {
        self.order_of(id_or_upn).and_then(|o| self.users.get(&o))
    }

    /// A live (not soft-deleted) user by id or userPrincipalName.
    pub fn live(&self, id_or_upn: &str) -> Option<&User> {
        self.find(id_or_upn).filter(|s| !s.deleted).map(|s| &s.user)
    }

    /// Live users after position `after`, in a stable order, with their positions.
    pub fn live_after(&self, after: u64) -> impl Iterator<Item = (u64, &User)> {
        self.users
            .range(after + 1..)
            .filter(|(_, s)| !s.deleted)
            .map(|(o, s)| (*o, &s.user))
    }

    /// Every stored user, soft-deleted ones included, in a stable order.
    pub fn all(&self) -> impl Iterator<Item = &StoredUser> {
        self.users.values()
    }

    /// Number of live users.
    pub fn live_count(&self) -> usize {
        self.users.values().filter(|s| !s.deleted).count()
    }

    /// Changes a user and records the change; the id never changes, the UPN stays unique.
    pub fn update_user(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut User),
    ) -> Result<User, ModelError> {
        let unknown = || ModelError::UnknownUser(id.to_string());
        let order = self.order_of(id).ok_or_else(unknown)?;
        let mut user = self.users.get(&order).ok_or_else(unknown)?.user.clone();
        let old_upn = user.user_principal_name.to_lowercase();
        let user_id = user.id.clone();
        change(&mut user);
        user.id = user_id.clone();
        let new_upn = user.user_principal_name.to_lowercase();
        if new_upn != old_upn {
            if self.by_upn.contains_key(&new_upn) {
                return Err(ModelError::Duplicate(user.user_principal_name));
            }
            self.by_upn.remove(&old_upn);
            self.by_upn.insert(new_upn, order);
        }
        if let Some(stored) = self.users.get_mut(&order) {
            stored.user = user.clone();
        }
        self.touch(&user_id, ChangeKind::Updated);
        Ok(user)
    }

    /// Moves a user to the recycle bin (delta reports `@removed: changed`).
    pub fn soft_delete(&mut self, id: &str) -> Result<(), ModelError> {
        let order = self
            .order_of(id)
            .ok_or_else(|| ModelError::UnknownUser(id.to_string()))?;
        let stored = self
            .users
            .get_mut(&order)
            .filter(|s| !s.deleted)
            .ok_or_else(|| ModelError::UnknownUser(id.to_string()))?;
        stored.deleted = true;
        let uid = stored.user.id.clone();
        self.touch(&uid, ChangeKind::SoftDeleted);
        self.groups.member_changed(&uid);
        Ok(())
    }

    /// Brings a soft-deleted user back.
    pub fn restore(&mut self, id: &str) -> Result<(), ModelError> {
        let order = self
            .order_of(id)
            .ok_or_else(|| ModelError::UnknownUser(id.to_string()))?;
        let stored = self
            .users
            .get_mut(&order)
            .ok_or_else(|| ModelError::UnknownUser(id.to_string()))?;
        if !stored.deleted {
            return Err(ModelError::NotDeleted(id.to_string()));
        }
        stored.deleted = false;
        let uid = stored.user.id.clone();
        self.touch(&uid, ChangeKind::Restored);
        self.groups.member_changed(&uid);
        Ok(())
    }

    /// Adds groups, then their members: each names a user (id or sign-in name) or a group
    /// (id or display name) of this directory.
    pub fn add_groups(&mut self, groups: Vec<crate::membership::Group>) -> Result<(), ModelError> {
        let mut members = Vec::new();
        for g in groups {
            members.push((g.id.clone(), g.members.clone()));
            self.groups.add(g)?;
        }
        for (group, names) in members {
            for name in names {
                let id = self.member_id(&name)?;
                self.groups.add_member(&group, &id)?;
            }
        }
        Ok(())
    }

    /// The object id of a user (by id or sign-in name) or group (by id or display name).
    pub fn member_id(&self, name: &str) -> Result<String, ModelError> {
        if let Some(u) = self.find(name) {
            return Ok(u.user.id.clone());
        }
        if self.groups.is_group(name) {
            return Ok(name.to_string());
        }
        self.groups
            .list_after(0)
            .find(|(_, g)| g.display_name.eq_ignore_ascii_case(name))
            .map(|(_, g)| g.id.clone())
            .ok_or_else(|| ModelError::UnknownUser(name.to_string()))
    }

    /// Removes a user for good (delta reports `@removed: deleted`).
    pub fn hard_delete(&mut self, id: &str) -> Result<(), ModelError> {
        let order = self
            .order_of(id)
            .ok_or_else(|| ModelError::UnknownUser(id.to_string()))?;
        let stored = self
            .users
            .remove(&order)
            .ok_or_else(|| ModelError::UnknownUser(id.to_string()))?;
        self.by_id.remove(&stored.user.id);
        self.by_upn
            .remove(&stored.user.user_principal_name.to_lowercase());
        self.groups.forget_member(&stored.user.id);
        self.touch(&stored.user.id, ChangeKind::HardDeleted);
        Ok(())
    }

    /// Resets the directory's sync state, as Microsoft does during tenant maintenance: every
    /// delta token issued so far is answered with `410 Gone` and a `Location`.
    pub fn expire_delta_tokens(&mut self) {
        self.log_floor = self.seq();
        self.groups.log_floor = self.groups.seq();
        // A token taken exactly at the floor would still pass the floor check; a new epoch
        // makes every earlier token unknown.
        self.delta_epoch = random_id(6);
    }

    /// The default domain, for synthetic users.
    pub fn default_domain(&self) -> String {
        self.domains
            .iter()
            .find(|d| d.is_default)
            .or_else(|| self.domains.first())
            .map(|d| d.name.clone())
            .unwrap_or_else(|| "example.onmicrosoft.com".into())
    }
}

/// A registered (multi-tenant) application.
#[derive(Clone)]
pub struct App {
    pub client_id: String,
    pub display_name: String,
    pub secret: String,
    pub redirect_uris: Vec<String>,
    /// Application permissions on Graph (`roles` of app-only tokens after admin consent).
    pub application_permissions: Vec<String>,
    /// Delegated permissions on Graph, as the seed lists them. The consent screen shows the
    /// scopes a sign-in asks for (Microsoft's dynamic consent), so nothing reads these yet.
    #[expect(
        dead_code,
        reason = "kept from the seed format; no page shows them yet"
    )]
    pub delegated_permissions: Vec<String>,
    /// When the client secret stops working (Unix seconds), if ever.
    pub secret_expires_at: Option<i64>,
    /// Certificates uploaded to the registration, for client assertions.
    pub certificates: Vec<AppCertificate>,
}

/// A certificate of an app registration: what Microsoft keeps of it.
#[derive(Clone, Debug)]
pub struct AppCertificate {
    /// Base64url SHA-256 of the DER (`x5t#S256`).
    pub thumbprint_s256: String,
    /// Base64url SHA-1 of the DER (`x5t`), the older name Microsoft still accepts.
    pub thumbprint_sha1: String,
    /// The RSA public key, PKCS#1 DER.
    pub public_key: Vec<u8>,
    pub not_after: i64,
}

impl AppCertificate {
    /// Reads a PEM certificate.
    pub fn from_pem(pem_text: &str) -> Result<Self, String> {
        use base64::Engine as _;
        use sha2::Digest as _;
        use x509_cert::der::Decode as _;
        let block = pem::parse_many(pem_text)
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|b| b.tag() == "CERTIFICATE")
            .ok_or("no PEM CERTIFICATE block")?;
        let der = block.contents();
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| e.to_string())?;
        Ok(Self {
            thumbprint_s256: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(der)),
            thumbprint_sha1: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha1::Sha1::digest(der)),
            public_key: cert
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes()
                .to_vec(),
            not_after: cert
                .tbs_certificate
                .validity
                .not_after
                .to_unix_duration()
                .as_secs() as i64,
        })
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("client_id", &self.client_id)
            .field("display_name", &self.display_name)
            .field("secret", &"[redacted]")
            .field("redirect_uris", &self.redirect_uris)
            .finish()
    }
}

/// A pending authorization code.
#[derive(Clone, Debug)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub tenant_id: String,
    pub user_id: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: String,
    pub expires_at: i64,
    pub redeemed: bool,
}

/// A subscription to changes of a tenant's users (Graph's change notifications).
#[derive(Clone, Debug)]
pub struct Subscription {
    pub id: String,
    pub tenant_id: String,
    pub application_id: String,
    pub change_types: Vec<String>,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub client_state: Option<String>,
    pub expiration: DateTime<Utc>,
    /// Change-log position up to which notifications were sent.
    pub position: u64,
}

/// Everything the emulator knows.
#[derive(Debug, Default)]
pub struct World {
    pub directories: HashMap<String, Directory>,
    pub apps: HashMap<String, App>,
    pub codes: HashMap<String, AuthCode>,
    pub subscriptions: HashMap<String, Subscription>,
}

impl World {
    /// The directory with this tenant id.
    pub fn directory(&self, tenant_id: &str) -> Result<&Directory, ModelError> {
        self.directories
            .get(&tenant_id.to_ascii_lowercase())
            .ok_or_else(|| ModelError::UnknownDirectory(tenant_id.to_string()))
    }

    /// The directory with this tenant id, for a change.
    pub fn directory_mut(&mut self, tenant_id: &str) -> Result<&mut Directory, ModelError> {
        self.directories
            .get_mut(&tenant_id.to_ascii_lowercase())
            .ok_or_else(|| ModelError::UnknownDirectory(tenant_id.to_string()))
    }

    /// The directory a `{tenant}` path segment names: a tenant id or a verified domain.
    pub fn directory_by_name(&self, name: &str) -> Option<&Directory> {
        if let Some(d) = self.directories.get(&name.to_ascii_lowercase()) {
            return Some(d);
        }
        self.directories
            .values()
            .find(|d| d.has_verified_domain(name))
    }

    /// Directories in a stable order, for pages.
    pub fn sorted_directories(&self) -> Vec<&Directory> {
        let mut v: Vec<&Directory> = self.directories.values().collect();
        v.sort_by(|a, b| a.display_name.cmp(&b.display_name));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(upn: &str) -> User {
        serde_json::from_value(serde_json::json!({
            "userPrincipalName": upn, "displayName": upn
        }))
        .unwrap()
    }

    #[test]
    fn upns_are_unique_regardless_of_case() {
        let mut d = Directory::new(new_guid(), "T".into(), vec![]);
        d.add_user(user("a@t.com")).unwrap();
        assert!(matches!(
            d.add_user(user("A@T.com")),
            Err(ModelError::Duplicate(_))
        ));
    }

    #[test]
    fn a_rename_onto_a_taken_upn_changes_nothing() {
        let mut d = Directory::new(new_guid(), "T".into(), vec![]);
        d.add_user(user("a@t.com")).unwrap();
        let id = d.add_user(user("Bee@t.com")).unwrap().id.clone();
        let err = d.update_user(&id, |u| {
            u.user_principal_name = "A@t.com".into();
            u.display_name = "changed".into();
        });
        assert!(matches!(err, Err(ModelError::Duplicate(_))));
        let b = d.live(&id).unwrap();
        assert_eq!(
            (b.user_principal_name.as_str(), b.display_name.as_str()),
            ("Bee@t.com", "Bee@t.com")
        );
        assert_eq!(d.seq(), 2, "a refused change is not logged");
        d.update_user(&id, |u| u.user_principal_name = "c@t.com".into())
            .unwrap();
        assert!(d.live("C@T.com").is_some());
        assert!(d.live("bee@t.com").is_none());
    }

    #[test]
    fn every_change_gets_a_sequence_number() {
        let mut d = Directory::new(new_guid(), "T".into(), vec![]);
        let id = d.add_user(user("a@t.com")).unwrap().id.clone();
        d.soft_delete(&id).unwrap();
        d.restore(&id).unwrap();
        d.hard_delete(&id).unwrap();
        assert_eq!(d.seq(), 4);
        assert_eq!(d.changes(1, 4).len(), 3);
        assert!(d.find(&id).is_none());
    }
}
