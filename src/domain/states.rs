//! The states a record can be in, one enum each. Each is stored as its lowercase name in a
//! text column and read back through `TryFrom<String>` (`#[sqlx(try_from = "String")]` on a
//! row field): an unknown value in the database is an error, never a silent default.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A stored value that names no state of its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {kind}")]
pub struct UnknownState {
    pub kind: &'static str,
    pub value: String,
}

/// Declares a state enum with its stored names: `as_str`, `Display`, `TryFrom<String>`,
/// `FromStr` and serde all use the same table.
macro_rules! states {
    ($(#[$meta:meta])* $name:ident ($kind:literal) { $($(#[$vmeta:meta])* $variant:ident = $stored:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every state, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name stored in the database and sent over the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $stored),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, UnknownState> {
                match s {
                    $($stored => Ok($name::$variant),)+
                    _ => Err(UnknownState { kind: $kind, value: s.to_string() }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownState;
            fn try_from(s: String) -> Result<Self, UnknownState> {
                s.parse()
            }
        }

        impl From<$name> for &'static str {
            fn from(s: $name) -> &'static str {
                s.as_str()
            }
        }
    };
}

states! {
    /// What a user may do in their tenant's portal.
    Role ("role") {
        Admin = "admin",
        Technician = "technician",
    }
}

impl Role {
    /// Everyone who holds it, as a sentence names them: "Technicians", "Admins".
    pub fn plural(self) -> &'static str {
        match self {
            Role::Admin => "Admins",
            Role::Technician => "Technicians",
        }
    }
}

states! {
    /// Where a technician's account in a customer's tenant stands.
    JitState ("JIT account state") {
        /// Gatehouse asked Graph to make it and has not heard back.
        Making = "making",
        /// Enabled, with its roles, until its window ends.
        Open = "open",
        /// Its access is over; Microsoft has not confirmed every step of the end yet.
        Ending = "ending",
        /// Roles removed, sessions revoked, pass and password useless, disabled: confirmed.
        Ended = "ended",
    }
}

states! {
    /// How a customer's connection stands.
    CustomerHealth ("customer health") {
        /// Consented; Microsoft has not applied the consent yet.
        Waiting = "waiting",
        /// Graph answered the customers app as consented.
        Ok = "ok",
        /// Microsoft refused (consent revoked, the app removed, a policy): its words are kept.
        Failing = "failing",
        /// An admin disconnected it: nothing is opened there, and what was open is ending.
        /// Consenting again connects it anew.
        Disconnected = "disconnected",
        /// Microsoft refuses to end an account there, lastingly (consent revoked, a
        /// permission removed): nothing opens there until an end goes through again.
        EndsRefused = "ends_refused",
    }
}

states! {
    /// Where a user stands. Only `Active` users sign in.
    UserStatus ("user status") {
        /// Added by an admin; becomes active at the first approved sign-in.
        Invited = "invited",
        Active = "active",
        /// Stopped by an admin; may be re-enabled.
        Disabled = "disabled",
        /// Removed from Entra ID (or its domain): kept for the audit trail, never signs in again.
        Offboarded = "offboarded",
    }
}

states! {
    /// Where a tenant's users come from.
    UserSource ("user source") {
        /// The tenant's own directory, kept in Gatehouse.
        Local = "local",
        /// A connected Microsoft Entra ID tenant.
        AzureAd = "azuread",
    }
}

states! {
    /// Why a delta walk lists an account as removed: Graph's `@removed.reason`.
    RemovedReason ("removal reason") {
        /// Soft-deleted: restorable for 30 days (and how Graph marks any other removal).
        Changed = "changed",
        /// Hard-deleted.
        Deleted = "deleted",
    }
}

states! {
    /// Why the reconciler offboarded someone: stored as its code, worded once (`Reason`).
    OffboardReason ("offboarding reason") {
        /// Deleted in Entra, restorable there for 30 days.
        SoftDeleted = "soft_deleted",
        HardDeleted = "hard_deleted",
        Disabled = "disabled",
        /// Not listed by a walk of the whole directory.
        NotInDirectory = "not_in_directory",
        /// None of the account's addresses is in the tenant's connected domain any more: the
        /// same rule that lets a technician onboard.
        LeftDomain = "left_domain",
        /// No longer a member (directly or through a nested group) of the group whose members
        /// may sign in, nor of the admin group.
        LeftGroup = "left_group",
    }
}

impl OffboardReason {
    /// True when Entra ended the account's access itself (deleted, disabled, out of the
    /// domain), not a group of Gatehouse's choosing: such access is never kept for the sake
    /// of an admin.
    pub fn ended_in_entra(self) -> bool {
        self != OffboardReason::LeftGroup
    }
}

/// Why someone was offboarded, as stored (the reason's code, and the group's name when it was
/// a group) and as every page, the CLI, the audit log and the timeline word it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: OffboardReason,
    /// The scoping group's name when the run decided, for `LeftGroup`.
    pub group: Option<String>,
}

impl Reason {
    pub fn new(code: OffboardReason, group: Option<&str>) -> Self {
        let group = (code == OffboardReason::LeftGroup)
            .then(|| group.map(str::to_string))
            .flatten();
        Reason { code, group }
    }

    /// Reads a stored reason back; `None` for a code no version of Gatehouse wrote.
    pub fn stored(code: &str, group: Option<String>) -> Option<Self> {
        Some(Reason::new(code.parse().ok()?, group.as_deref()))
    }

    /// A stored reason as admins read it; text that is no code (written by hand into the
    /// database, or by a release this one does not know) is shown as it stands.
    pub fn worded(code: &str, group: Option<&str>) -> String {
        Reason::stored(code, group.map(str::to_string))
            .map_or_else(|| code.to_string(), |r| r.to_string())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.code, &self.group) {
            (OffboardReason::LeftGroup, Some(name)) => return write!(f, "left group \"{name}\""),
            (OffboardReason::SoftDeleted, _) => {
                "deleted in Entra ID (restorable there for 30 days)"
            }
            (OffboardReason::HardDeleted, _) => "permanently deleted in Entra ID",
            (OffboardReason::Disabled, _) => "account disabled in Entra ID",
            (OffboardReason::NotInDirectory, _) => "no longer in the Entra ID directory",
            (OffboardReason::LeftDomain, _) => "no address in the connected domain any more",
            (OffboardReason::LeftGroup, None) => "left the group whose members may sign in",
        })
    }
}

states! {
    /// The events a browser's event stream carries (and the instances tell each other): a
    /// challenge's outcome, a sign-in that ended, a tenant whose settings changed.
    PushOutcome ("push outcome") {
        Approved = "approved",
        Denied = "denied",
        Cancelled = "cancelled",
        /// The challenge's time ran out before a phone answered.
        Expired = "expired",
        /// The user's access ended: offboarded, disabled, or this session revoked.
        SignedOut = "signed_out",
    }
}

states! {
    /// A login challenge (the QR code a browser shows) from drawn to used.
    ChallengeStatus ("challenge status") {
        /// Shown, waiting for a phone.
        Pending = "pending",
        /// Approved on a phone; the browser may exchange it for a session once.
        Approved = "approved",
        /// Exchanged for a session.
        Consumed = "consumed",
        /// Refused on the phone, or by Gatehouse for the phone's owner.
        Denied = "denied",
        /// Ended by a revocation before the browser used it.
        Cancelled = "cancelled",
    }
}

states! {
    /// What a phone challenge asks the technician to approve.
    ChallengePurpose ("challenge purpose") {
        /// Signing a browser in (the login page's QR code).
        SignIn = "sign_in",
        /// Opening the technician's account at a customer (the home page's request).
        Access = "access",
    }
}

states! {
    /// A recorded reconciliation run.
    RunOutcome ("run outcome") {
        Running = "running",
        Ok = "ok",
        /// Graph or the database failed; nobody was offboarded.
        Failed = "failed",
        /// Would have offboarded more than the deletion threshold; waits for an admin.
        Held = "held",
        /// A held run an admin approved.
        Approved = "approved",
        /// A held run an admin rejected.
        Rejected = "rejected",
        /// Group changes would have left the tenant without an admin: nothing was applied,
        /// and the next run tries again.
        KeptLastAdmin = "kept_last_admin",
        DryRun = "dry_run",
    }
}

states! {
    /// How a tenant's connection to its Entra tenant stands, from the last call to Microsoft.
    EntraHealth ("Entra health") {
        Ok = "ok",
        /// Microsoft refused Gatehouse's own credentials (`invalid_client`: a wrong or expired
        /// secret or certificate). Every tenant is affected; the operator must fix it.
        AppCredentials = "app_credentials",
        /// The Entra tenant no longer exists (AADSTS90002).
        TenantGone = "tenant_gone",
        /// The admin consent was revoked, or Gatehouse's app removed from the tenant.
        ConsentRevoked = "consent_revoked",
        /// Graph refused Gatehouse's token even after a new one.
        TokenRefused = "token_refused",
        /// The tenant scopes or grants roles by group, and its consent does not cover
        /// reading group members (`GroupMember.Read.All`): it was given before Gatehouse
        /// asked for it.
        GroupsNotConsented = "groups_not_consented",
        /// A group the tenant scopes by or takes admins from no longer exists in Entra.
        GroupGone = "group_gone",
    }
}

impl EntraHealth {
    /// What the User source and Reconciliation pages say, and who must act.
    pub fn describe(self) -> &'static str {
        match self {
            EntraHealth::Ok => "ok",
            EntraHealth::AppCredentials => "Microsoft refused Gatehouse's own credentials (invalid_client: the client secret or certificate is wrong or expired). This affects every tenant: the operator must renew ENTRA_CLIENT_SECRET or ENTRA_CLIENT_CERTIFICATE_FILE. Re-authorizing does not help.",
            EntraHealth::TenantGone => "Microsoft no longer knows this Entra tenant (it was deleted or its id is wrong). Connect the right tenant under Authorize.",
            EntraHealth::ConsentRevoked => "The admin consent for Gatehouse was revoked in this Entra tenant (or its app was removed): an admin of that tenant must authorize again.",
            EntraHealth::TokenRefused => "Graph refused Gatehouse's access token even after a new one; Microsoft may be having trouble. Gatehouse tries again at the next run.",
            EntraHealth::GroupsNotConsented => "Gatehouse may not read this tenant's group members: the consent was given before Gatehouse asked for GroupMember.Read.All. An admin of the Entra tenant must authorize again (User source → Authorize again); until then nobody is offboarded and newcomers are refused.",
            EntraHealth::GroupGone => "A group this tenant scopes by or takes admins from no longer exists in Entra ID. Choose another group (or none) under User source; until then reconciliation stops and nobody is offboarded.",
        }
    }
}

impl UserStatus {
    /// Statuses from which a first approved sign-in may go on (an invited user becomes active).
    pub fn may_sign_in(self) -> bool {
        matches!(self, UserStatus::Active | UserStatus::Invited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_what_it_stores() {
        for r in Role::ALL {
            assert_eq!(Role::try_from(r.as_str().to_string()), Ok(*r));
        }
        for s in UserStatus::ALL {
            assert_eq!(s.as_str().parse::<UserStatus>(), Ok(*s));
        }
        for s in UserSource::ALL {
            assert_eq!(s.as_str().parse::<UserSource>(), Ok(*s));
        }
        for s in ChallengeStatus::ALL {
            assert_eq!(s.as_str().parse::<ChallengeStatus>(), Ok(*s));
        }
        for p in ChallengePurpose::ALL {
            assert_eq!(p.as_str().parse::<ChallengePurpose>(), Ok(*p));
        }
        for s in RunOutcome::ALL {
            assert_eq!(s.as_str().parse::<RunOutcome>(), Ok(*s));
        }
        for s in EntraHealth::ALL {
            assert_eq!(s.as_str().parse::<EntraHealth>(), Ok(*s));
        }
        for r in OffboardReason::ALL {
            let reason = Reason::new(*r, Some("MSP Technicians"));
            assert_eq!(
                Reason::stored(r.as_str(), reason.group.clone()),
                Some(reason)
            );
        }
    }

    #[test]
    fn a_reason_names_the_group_only_when_a_group_was_the_reason() {
        let left = Reason::new(OffboardReason::LeftGroup, Some("MSP Technicians"));
        assert_eq!(left.to_string(), "left group \"MSP Technicians\"");
        let disabled = Reason::new(OffboardReason::Disabled, Some("MSP Technicians"));
        assert_eq!(disabled.group, None);
        assert_eq!(disabled.to_string(), "account disabled in Entra ID");
        assert_eq!(Reason::stored("deleted in Entra ID", None), None);
    }

    #[test]
    fn an_unknown_stored_value_is_an_error_not_a_default() {
        let err = UserStatus::try_from("Active".to_string()).unwrap_err();
        assert_eq!(err.to_string(), "`Active` is not a user status");
        assert!("AzureAD".parse::<UserSource>().is_err());
    }

    #[test]
    fn the_wire_form_is_the_stored_name() {
        assert_eq!(
            serde_json::to_string(&UserSource::AzureAd).unwrap(),
            "\"azuread\""
        );
        assert_eq!(
            serde_json::from_str::<Role>("\"technician\"").unwrap(),
            Role::Technician
        );
        assert!(serde_json::from_str::<Role>("\"root\"").is_err());
    }
}
