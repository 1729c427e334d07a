//! Wasm-safe domain types: input becomes one of these at the boundary, inner code takes only these.

mod counted;
mod email;
mod entra_role;
mod ids;
mod jit;
#[cfg(test)]
mod properties;
mod slug;
mod states;

pub use counted::users_counted;
pub use email::{Email, EmailError};
pub use entra_role::{AccessWindow, EntraRole};
pub use ids::{
    ChallengeId, CustomerId, DeviceId, EntraTenantId, EntraUserId, GroupId, JitAccountId,
    SessionId, SubscriptionId, TenantId, UserId,
};
pub use jit::{JitUsername, PrefixError, UsernameError, UsernamePrefix};
pub use slug::{SlugError, TenantSlug};
pub use states::{
    ChallengePurpose, ChallengeStatus, CustomerHealth, EntraHealth, JitState, OffboardReason,
    PushOutcome, Reason, RemovedReason, Role, RunOutcome, UnknownState, UserSource, UserStatus,
};
