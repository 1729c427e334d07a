//! The ids of Gatehouse's own records, and of the Microsoft objects it acts on, one type each:
//! a device id where a tenant id belongs, an Entra tenant id where a Gatehouse tenant's
//! belongs, or two ids swapped in a call, does not compile. Gatehouse's ids come from the
//! database or are drawn at random by Gatehouse; text from outside becomes one at the edge
//! (`from_outside`), and is then only ever looked up, never trusted to exist. Microsoft's ids
//! come from Microsoft (a signed token, a Graph answer) or from what Gatehouse stored of them
//! (`from_microsoft`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// What every id type has: a string inside, shown and stored as it is.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "ssr", derive(sqlx::Type), sqlx(transparent))]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

macro_rules! ids {
    ($($(#[$meta:meta])* $name:ident),+ $(,)?) => {$(
        id_type!($(#[$meta])* $name);

        impl $name {
            /// An id read from the outside (a form field, a URL, a signed payload): it
            /// names a record only if a lookup finds one.
            pub fn from_outside(raw: impl Into<String>) -> Self {
                $name(raw.into())
            }

            /// A new id, drawn at random by Gatehouse for a new record.
            pub fn drawn(random: String) -> Self {
                $name(random)
            }
        }
    )+};
}

macro_rules! microsoft_ids {
    ($($(#[$meta:meta])* $name:ident),+ $(,)?) => {$(
        id_type!($(#[$meta])* $name);

        impl $name {
            /// An id as Microsoft writes it: from a signed token or a Graph answer, as
            /// Gatehouse stored it, or as a notification names it (to be checked).
            pub fn from_microsoft(raw: impl Into<String>) -> Self {
                $name(raw.into())
            }
        }
    )+};
}
ids! {
    /// A tenant (an MSP) of this Gatehouse.
    TenantId,
    /// A user record of a tenant.
    UserId,
    /// A phone (its registered key).
    DeviceId,
    /// A QR sign-in request.
    ChallengeId,
    /// A browser's sign-in, as Gatehouse indexes it (not the session cookie, which
    /// tower-sessions keeps).
    SessionId,
    /// A customer of an MSP tenant, whose Entra tenant technicians' accounts are made in.
    CustomerId,
    /// A technician's account at a customer, as Gatehouse records it.
    JitAccountId,
}

microsoft_ids! {
    /// An Entra tenant (a directory): the MSP's own, where its technicians are.
    EntraTenantId,
    /// A user of the MSP's Entra tenant (its object id): who a technician is in Entra, and
    /// who the reconciler offboards when Entra says so.
    EntraUserId,
    /// An Entra group (its object id).
    GroupId,
    /// A Graph change-notification subscription.
    SubscriptionId,
}

impl DeviceId {
    /// The first eight characters, as the Phones list and the audit log show a phone.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(8)]
    }
}

impl EntraTenantId {
    /// Whether `other` names this tenant: Microsoft writes tenant ids in either case.
    pub fn is(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}
