//! The ids of Gatehouse's own records, one type each: a device id where a tenant id belongs,
//! or two ids swapped in a call, does not compile. Ids come from the database or are drawn
//! at random by Gatehouse; text from outside becomes one at the edge (`from_outside`), and
//! is then only ever looked up, never trusted to exist.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! ids {
    ($($(#[$meta:meta])* $name:ident),+ $(,)?) => {$(
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "ssr", derive(sqlx::Type), sqlx(transparent))]
        pub struct $name(String);

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
}
