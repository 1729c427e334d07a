//! What the audit log records, as types: who acted (`Actor`), and what happened (`Event`),
//! carrying what it is about; each event is one `Action`. Each is stored as the text the
//! Audit log page has always shown, worded here once: a misspelt action, a swapped actor or
//! a subject in the details' place no longer compiles.

use crate::domain::{
    AccessWindow, ChallengeId, DeviceId, EntraRole, EntraTenantId, EntraUserId, UserSource,
};

/// Who did what an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// A person, by the name the log shows: an admin in the portal, a technician signing in,
    /// the Entra admin who consented.
    User(&'a str),
    /// A phone acting for itself, by its id (or the short form of it that the Phones list
    /// shows, as the caller chooses).
    Device(&'a str),
    /// The reconciler, on its own: a scheduled or notified run.
    Reconciler,
    /// An operator's command or Gatehouse itself, by what it is: `cli`, `demo seed`,
    /// `gatehouse reconcile (CLI)`.
    Command(&'static str),
}

impl Actor<'_> {
    /// The actor column's text.
    pub fn stored(self) -> String {
        match self {
            Actor::User(name) => name.to_string(),
            Actor::Device(id) => format!("device {id}"),
            Actor::Reconciler => "reconciler".to_string(),
            Actor::Command(what) => what.to_string(),
        }
    }
}

/// Declares the actions with their stored names.
macro_rules! actions {
    ($($(#[$meta:meta])* $variant:ident = $stored:literal),+ $(,)?) => {
        /// What an audit event records.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Action {
            $($(#[$meta])* $variant),+
        }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: &'static [Action] = &[$(Action::$variant),+];

            /// The action column's text, as the Audit log page shows it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $stored),+
                }
            }
        }
    };
}

actions! {
    TenantCreated = "tenant.created",
    UserInvited = "user.invited",
    UserEnabled = "user.enabled",
    UserDisabled = "user.disabled",
    UserDeleted = "user.deleted",
    UserRoleChanged = "user.role_changed",
    /// A first sign-in through Entra made or brought back the record.
    UserOnboarded = "user.onboarded",
    /// The reconciler moved a record to the account's new address.
    UserRenamed = "user.renamed",
    UserOffboarded = "user.offboarded",
    SessionRevoked = "session.revoked",
    LoginApproved = "login.approved",
    LoginDenied = "login.denied",
    LoginCompleted = "login.completed",
    LoginSignedOut = "login.signed_out",
    DeviceRegistered = "device.registered",
    DeviceRevoked = "device.revoked",
    DeviceForgotten = "device.forgotten",
    EmailVerified = "email.verified",
    /// Too many wrong codes for an address: its confirmations are locked for the hour.
    EmailLocked = "email.locked",
    UserSourceAuthorized = "user_source.authorized",
    UserSourceConsentFailed = "user_source.consent_failed",
    UserSourceSaved = "user_source.saved",
    UserSourceGroupsSaved = "user_source.groups_saved",
    ReconcileScheduleSaved = "reconcile.schedule_saved",
    /// An admin or the CLI asked for a run now.
    ReconcileRequested = "reconcile.requested",
    /// An admin or the CLI asked for a dry run.
    ReconcilePreviewed = "reconcile.previewed",
    ReconcileHeld = "reconcile.held",
    ReconcileApproved = "reconcile.approved",
    ReconcileRejected = "reconcile.rejected",
    /// A run's group changes would have left the tenant without an admin.
    ReconcileAdminKept = "reconcile.admin_kept",
    /// A customer's Entra tenant consented to the customers app and Graph proved it.
    CustomerConnected = "customer.connected",
    CustomerConsentFailed = "customer.consent_failed",
    /// A customer's domain or access window changed.
    CustomerSaved = "customer.saved",
    /// Holders of a Gatehouse role may now request an Entra role at a customer.
    CustomerRoleGranted = "customer.role_granted",
    CustomerRoleWithdrawn = "customer.role_withdrawn",
    /// An admin disconnected a customer; its open accounts are ending.
    CustomerDisconnected = "customer.disconnected",
    /// A technician's account at a customer opened for a window.
    JitOpened = "jit.opened",
    /// The technician's phone approved a request for access at a customer.
    JitApproved = "jit.approved",
    /// A request for access at a customer was refused.
    JitRefused = "jit.refused",
    /// Microsoft confirmed the end of an account at a customer.
    JitEnded = "jit.ended",
    /// An end Microsoft did not confirm: retried until it does.
    JitEndRetrying = "jit.end_retrying",
}

/// How a user's every access ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Disabled,
    Deleted,
    /// Removed or disabled in Entra ID, or out of its group.
    Offboarded,
}

/// One thing that happened, with what it is about: `action` is the action column, `subject`
/// and `details` the columns of the same names.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    TenantCreated {
        slug: &'a str,
        name: &'a str,
        admin_email: &'a str,
    },
    UserInvited {
        username: &'a str,
        name: &'a str,
        email: &'a str,
    },
    /// An admin enabled the account again; `told` is what the admin was told.
    UserEnabled {
        username: &'a str,
        told: &'a str,
    },
    /// The user's role changed: by an admin (`why` is what they were told), or by Entra's
    /// admin group at a run or a sign-in.
    RoleChanged {
        username: &'a str,
        why: &'a str,
    },
    /// Every access of the user ended (`ended`: what, as `Ended::summary` counts it).
    AccessEnded {
        ending: Ending,
        username: &'a str,
        reason: &'a str,
        ended: &'a str,
    },
    /// An invited user signed in for the first time.
    InvitationAccepted {
        username: &'a str,
        email: &'a str,
    },
    /// A first sign-in through Entra made or brought back the record; `note` says how the
    /// admin group placed them (may be empty).
    OnboardedFromEntra {
        username: &'a str,
        email: &'a str,
        object_id: &'a EntraUserId,
        note: &'a str,
    },
    /// The reconciler moved a record to the account's new address.
    UserRenamed {
        username: &'a str,
        email: &'a str,
    },
    SessionRevokedByAdmin {
        username: &'a str,
    },
    PhoneRegistered {
        phone: &'a DeviceId,
        thumbprint: &'a str,
    },
    /// An admin revoked one of the user's phones.
    PhoneRevoked {
        username: &'a str,
        phone: &'a DeviceId,
        ended: &'a str,
    },
    /// The phone was forgotten in the app, ending what it approved in this tenant.
    PhoneForgotten {
        phone: &'a DeviceId,
        reason: &'a str,
        ended: &'a str,
    },
    LoginApproved {
        username: &'a str,
        phone: &'a DeviceId,
        browser_ip: &'a str,
    },
    LoginDenied {
        challenge: &'a ChallengeId,
        detail: &'a str,
    },
    LoginCompleted {
        username: &'a str,
        ip: &'a str,
    },
    SignedOutInTheBrowser {
        username: &'a str,
    },
    EmailVerified {
        email: &'a str,
    },
    EmailLocked {
        email: &'a str,
        wrong_codes: i64,
    },
    EntraAuthorized {
        org_name: &'a str,
        entra_tenant: &'a EntraTenantId,
    },
    EntraConsentFailed {
        entra_tenant: &'a EntraTenantId,
        error: &'a str,
    },
    CustomerConnected {
        name: &'a str,
        entra_tenant: &'a EntraTenantId,
    },
    CustomerConsentFailed {
        entra_tenant: &'a EntraTenantId,
        error: &'a str,
    },
    CustomerSaved {
        name: &'a str,
        domain: &'a str,
        window: AccessWindow,
    },
    CustomerRoleGranted {
        name: &'a str,
        holders: &'a str,
        role: EntraRole,
    },
    CustomerRoleWithdrawn {
        name: &'a str,
        holders: &'a str,
        role: EntraRole,
    },
    CustomerDisconnected {
        name: &'a str,
        ending: u64,
    },
    JitOpened {
        upn: &'a str,
        customer: &'a str,
        roles: &'a str,
        window: AccessWindow,
    },
    JitRefused {
        customer: &'a str,
        why: &'a str,
    },
    JitApproved {
        customer: &'a str,
        roles: &'a str,
        phone: &'a DeviceId,
    },
    JitEnded {
        upn: &'a str,
        customer: &'a str,
        reason: &'a str,
        took_secs: i64,
    },
    JitEndRetrying {
        upn: &'a str,
        customer: &'a str,
        error: &'a str,
    },
    /// The tenant keeps its own directory, with this JIT prefix.
    LocalDirectoryChosen {
        prefix: &'a str,
    },
    /// The tenant's users come from this Entra tenant and domain.
    EntraConnected {
        org_name: &'a str,
        entra_tenant: &'a EntraTenantId,
        domain: &'a str,
        prefix: &'a str,
    },
    GroupsSaved {
        slug: &'a str,
        summary: &'a str,
    },
    ScheduleSaved {
        slug: &'a str,
        summary: &'a str,
    },
    /// Someone asked for a run now, or a dry run, and what it found.
    RunRequested {
        dry_run: bool,
        outcome: &'a str,
        checked: usize,
        offboarded: usize,
    },
    /// A run held its offboardings for an admin (`what`: how many, and why).
    RunHeld {
        run: i64,
        what: &'a str,
    },
    /// A run's group changes would have left the tenant without an admin.
    AdminKept {
        run: i64,
        why: &'a str,
    },
    HeldRunApproved {
        run: i64,
        held: usize,
        offboarded: usize,
        back: &'a [String],
        kept: &'a str,
    },
    HeldRunRejected {
        run: i64,
        held: i64,
    },
}

impl Event<'_> {
    pub fn action(&self) -> Action {
        match self {
            Event::TenantCreated { .. } => Action::TenantCreated,
            Event::UserInvited { .. } => Action::UserInvited,
            Event::UserEnabled { .. } => Action::UserEnabled,
            Event::RoleChanged { .. } => Action::UserRoleChanged,
            Event::AccessEnded { ending, .. } => match ending {
                Ending::Disabled => Action::UserDisabled,
                Ending::Deleted => Action::UserDeleted,
                Ending::Offboarded => Action::UserOffboarded,
            },
            Event::InvitationAccepted { .. } | Event::OnboardedFromEntra { .. } => {
                Action::UserOnboarded
            }
            Event::UserRenamed { .. } => Action::UserRenamed,
            Event::SessionRevokedByAdmin { .. } => Action::SessionRevoked,
            Event::PhoneRegistered { .. } => Action::DeviceRegistered,
            Event::PhoneRevoked { .. } => Action::DeviceRevoked,
            Event::PhoneForgotten { .. } => Action::DeviceForgotten,
            Event::LoginApproved { .. } => Action::LoginApproved,
            Event::LoginDenied { .. } => Action::LoginDenied,
            Event::LoginCompleted { .. } => Action::LoginCompleted,
            Event::SignedOutInTheBrowser { .. } => Action::LoginSignedOut,
            Event::EmailVerified { .. } => Action::EmailVerified,
            Event::EmailLocked { .. } => Action::EmailLocked,
            Event::EntraAuthorized { .. } => Action::UserSourceAuthorized,
            Event::EntraConsentFailed { .. } => Action::UserSourceConsentFailed,
            Event::CustomerConnected { .. } => Action::CustomerConnected,
            Event::CustomerConsentFailed { .. } => Action::CustomerConsentFailed,
            Event::CustomerSaved { .. } => Action::CustomerSaved,
            Event::CustomerRoleGranted { .. } => Action::CustomerRoleGranted,
            Event::CustomerRoleWithdrawn { .. } => Action::CustomerRoleWithdrawn,
            Event::CustomerDisconnected { .. } => Action::CustomerDisconnected,
            Event::JitOpened { .. } => Action::JitOpened,
            Event::JitRefused { .. } => Action::JitRefused,
            Event::JitApproved { .. } => Action::JitApproved,
            Event::JitEnded { .. } => Action::JitEnded,
            Event::JitEndRetrying { .. } => Action::JitEndRetrying,
            Event::LocalDirectoryChosen { .. } | Event::EntraConnected { .. } => {
                Action::UserSourceSaved
            }
            Event::GroupsSaved { .. } => Action::UserSourceGroupsSaved,
            Event::ScheduleSaved { .. } => Action::ReconcileScheduleSaved,
            Event::RunRequested { dry_run: true, .. } => Action::ReconcilePreviewed,
            Event::RunRequested { dry_run: false, .. } => Action::ReconcileRequested,
            Event::RunHeld { .. } => Action::ReconcileHeld,
            Event::AdminKept { .. } => Action::ReconcileAdminKept,
            Event::HeldRunApproved { .. } => Action::ReconcileApproved,
            Event::HeldRunRejected { .. } => Action::ReconcileRejected,
        }
    }

    /// The subject column: the user, phone, address, run or setting the event is about.
    pub fn subject(&self) -> String {
        match *self {
            Event::TenantCreated { slug, .. }
            | Event::GroupsSaved { slug, .. }
            | Event::ScheduleSaved { slug, .. } => slug.to_string(),
            Event::UserInvited { username, .. }
            | Event::UserEnabled { username, .. }
            | Event::RoleChanged { username, .. }
            | Event::AccessEnded { username, .. }
            | Event::InvitationAccepted { username, .. }
            | Event::OnboardedFromEntra { username, .. }
            | Event::UserRenamed { username, .. }
            | Event::SessionRevokedByAdmin { username }
            | Event::PhoneRevoked { username, .. }
            | Event::LoginApproved { username, .. }
            | Event::LoginCompleted { username, .. }
            | Event::SignedOutInTheBrowser { username } => username.to_string(),
            Event::PhoneRegistered { phone, .. } => phone.to_string(),
            Event::PhoneForgotten { phone, .. } => format!("phone {}", phone.short()),
            Event::LoginDenied { challenge, .. } => challenge.to_string(),
            Event::EmailVerified { email } | Event::EmailLocked { email, .. } => email.to_string(),
            Event::EntraAuthorized { org_name, .. } => org_name.to_string(),
            Event::EntraConsentFailed { entra_tenant, .. }
            | Event::CustomerConsentFailed { entra_tenant, .. } => entra_tenant.to_string(),
            Event::CustomerConnected { name, .. }
            | Event::CustomerSaved { name, .. }
            | Event::CustomerRoleGranted { name, .. }
            | Event::CustomerRoleWithdrawn { name, .. }
            | Event::CustomerDisconnected { name, .. } => name.to_string(),
            Event::JitOpened { upn, .. }
            | Event::JitEnded { upn, .. }
            | Event::JitEndRetrying { upn, .. } => upn.to_string(),
            Event::JitRefused { customer, .. } | Event::JitApproved { customer, .. } => {
                customer.to_string()
            }
            Event::LocalDirectoryChosen { .. } => UserSource::Local.as_str().to_string(),
            Event::EntraConnected { .. } => UserSource::AzureAd.as_str().to_string(),
            Event::RunRequested { .. } => "Entra ID".to_string(),
            Event::RunHeld { run, .. }
            | Event::AdminKept { run, .. }
            | Event::HeldRunApproved { run, .. }
            | Event::HeldRunRejected { run, .. } => format!("run {run}"),
        }
    }

    /// The details column, as the Audit log page shows it.
    pub fn details(&self) -> String {
        match *self {
            Event::TenantCreated {
                name, admin_email, ..
            } => format!("name \"{name}\", admin {admin_email}"),
            Event::UserInvited { name, email, .. } => format!("{name} <{email}>"),
            Event::UserEnabled { told, .. } => told.to_string(),
            Event::RoleChanged { why, .. } => why.to_string(),
            Event::AccessEnded { reason, ended, .. } => format!("{reason}; {ended}"),
            Event::InvitationAccepted { email, .. } => format!("first sign-in of {email}"),
            Event::OnboardedFromEntra {
                email,
                object_id,
                note,
                ..
            } => format!("{email} confirmed in Entra ID (object {object_id}){note}"),
            Event::UserRenamed { email, .. } => format!("now {email} in Entra ID"),
            Event::SessionRevokedByAdmin { .. } => "by an admin".to_string(),
            Event::PhoneRegistered { thumbprint, .. } => format!("key thumbprint {thumbprint}"),
            Event::PhoneRevoked { phone, ended, .. } => {
                format!("phone {}; {ended}", phone.short())
            }
            Event::PhoneForgotten { reason, ended, .. } => format!("{reason}; {ended}"),
            Event::LoginApproved {
                phone, browser_ip, ..
            } => format!(
                "on phone {}, for a browser at {browser_ip}",
                phone.short()
            ),
            Event::LoginDenied { detail, .. } => detail.to_string(),
            Event::LoginCompleted { ip, .. } => format!("from {ip}"),
            Event::SignedOutInTheBrowser { .. } => "signed out in the browser".to_string(),
            Event::EmailVerified { .. } => "the mailed code was entered on the phone".to_string(),
            Event::EmailLocked { wrong_codes, .. } => format!(
                "{wrong_codes} wrong codes within an hour; confirmations locked for the rest of it"
            ),
            Event::EntraAuthorized { entra_tenant, .. } => format!("Entra tenant {entra_tenant}"),
            Event::EntraConsentFailed { error, .. }
            | Event::CustomerConsentFailed { error, .. } => error.to_string(),
            Event::CustomerConnected { entra_tenant, .. } => format!("Entra tenant {entra_tenant}"),
            Event::CustomerSaved { domain, window, .. } => {
                format!("accounts made in {domain}, open for {window} at a time")
            }
            Event::CustomerRoleGranted { holders, role, .. } => {
                format!("{holders} may request {role}")
            }
            Event::CustomerRoleWithdrawn { holders, role, .. } => {
                format!("{holders} may no longer request {role}")
            }
            Event::CustomerDisconnected { ending, .. } => {
                format!("{ending} open account(s) there ending")
            }
            Event::JitOpened {
                customer,
                roles,
                window,
                ..
            } => format!("at {customer} as {roles}, for {window}"),
            Event::JitRefused { why, .. } => why.to_string(),
            Event::JitApproved { roles, phone, .. } => {
                format!("{roles}, on phone {}", phone.short())
            }
            Event::JitEnded {
                customer,
                reason,
                took_secs,
                ..
            } => format!("at {customer}: {reason}; Microsoft confirmed the end {took_secs} s after"),
            Event::JitEndRetrying {
                customer, error, ..
            } => format!("still open at {customer}, retrying: {error}"),
            Event::LocalDirectoryChosen { prefix } => format!("prefix \"{prefix}\""),
            Event::EntraConnected {
                org_name,
                entra_tenant,
                domain,
                prefix,
            } => format!("{org_name} ({entra_tenant}), domain {domain}, prefix \"{prefix}\""),
            Event::GroupsSaved { summary, .. } | Event::ScheduleSaved { summary, .. } => {
                summary.to_string()
            }
            Event::RunRequested {
                dry_run,
                outcome,
                checked,
                offboarded,
            } => {
                let (what, verb) = if dry_run {
                    ("a dry run, nothing changed", "would be offboarded")
                } else {
                    ("a run now", crate::domain::UserStatus::Offboarded.as_str())
                };
                format!("{what}: {outcome}, {checked} user(s) checked, {offboarded} {verb}")
            }
            Event::RunHeld { what, .. } => what.to_string(),
            Event::AdminKept { why, .. } => why.to_string(),
            Event::HeldRunApproved {
                held,
                offboarded,
                back,
                kept,
                ..
            } => format!(
                "{held} held users checked in Entra ID again: {offboarded} offboarded, {} left because Entra ID no longer shows them deleted or disabled{}{kept}",
                back.len(),
                if back.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", back.join(", "))
                },
            ),
            Event::HeldRunRejected { held, .. } => format!(
                "{held} held offboardings dismissed; the next run reads the whole directory again"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_its_own_name_of_the_logs_form() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert!(names.iter().all(|n| {
            n.split_once('.').is_some_and(|(area, what)| {
                !area.is_empty()
                    && !what.is_empty()
                    && n.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
            })
        }));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len(), "two actions share a name");
    }

    #[test]
    fn events_are_worded_as_the_log_has_always_shown_them() {
        let phone = DeviceId::from_outside("T7BdXNKyQ2");
        let approved = Event::LoginApproved {
            username: "msp-alex",
            phone: &phone,
            browser_ip: "203.0.113.9",
        };
        assert_eq!(approved.action(), Action::LoginApproved);
        assert_eq!(approved.subject(), "msp-alex");
        assert_eq!(
            approved.details(),
            "on phone T7BdXNKy, for a browser at 203.0.113.9"
        );
        let ended = Event::AccessEnded {
            ending: Ending::Offboarded,
            username: "msp-isaiah",
            reason: "deleted in Entra ID",
            ended: "1 session(s) ended, 1 phone(s) revoked",
        };
        assert_eq!(ended.action(), Action::UserOffboarded);
        assert_eq!(
            ended.details(),
            "deleted in Entra ID; 1 session(s) ended, 1 phone(s) revoked"
        );
        let preview = Event::RunRequested {
            dry_run: true,
            outcome: "ok",
            checked: 3,
            offboarded: 1,
        };
        assert_eq!(preview.action(), Action::ReconcilePreviewed);
        assert_eq!(
            preview.details(),
            "a dry run, nothing changed: ok, 3 user(s) checked, 1 would be offboarded"
        );
        let back = ["msp-lidia".to_string()];
        let approved = Event::HeldRunApproved {
            run: 7,
            held: 3,
            offboarded: 2,
            back: &back,
            kept: "",
        };
        assert_eq!(approved.subject(), "run 7");
        assert_eq!(approved.details(), "3 held users checked in Entra ID again: 2 offboarded, 1 left because Entra ID no longer shows them deleted or disabled (msp-lidia)");
    }

    #[test]
    fn actors_are_stored_as_the_log_has_always_named_them() {
        assert_eq!(Actor::Device("T7BdXNKy").stored(), "device T7BdXNKy");
        assert_eq!(Actor::Reconciler.stored(), "reconciler");
        assert_eq!(Actor::User("msp-alex").stored(), "msp-alex");
    }
}
