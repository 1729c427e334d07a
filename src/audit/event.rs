//! What the audit log records, as types: who acted (`Actor`) and what they did (`Action`).
//! Each is stored as the text the Audit log page has always shown; a misspelt action or a
//! swapped actor no longer compiles.

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
    fn actors_are_stored_as_the_log_has_always_named_them() {
        assert_eq!(Actor::Device("T7BdXNKy").stored(), "device T7BdXNKy");
        assert_eq!(Actor::Reconciler.stored(), "reconciler");
        assert_eq!(Actor::User("msp-alex").stored(), "msp-alex");
    }
}
