//! What a change notification must be before Gatehouse acts on it: of a subscription it
//! created, carrying that subscription's clientState, about the Entra tenant the
//! subscription watches. The checks are pure; `routes` looks the subscriptions up.
//! https://learn.microsoft.com/en-us/graph/change-notifications-delivery-webhooks

use super::store::{digest, Subscription};
use crate::domain::EntraUserId;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

/// The most items of one delivery Gatehouse reads. Microsoft documents no maximum for a
/// delivery ("a collection of change notifications", change-notifications-delivery-webhooks),
/// so none is refused for its size: its first items are read and the rest skipped unread.
/// One genuine item books its tenant's run, and the run reads every change from Graph
/// itself, so nothing is lost; a body of made-up items costs bounded work.
pub const MOST_ITEMS_READ: usize = 1000;

/// One item of a notification collection (`{"value": [...]}`), change or lifecycle event.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    #[serde(default)]
    pub subscription_id: String,
    #[serde(default)]
    pub client_state: Option<String>,
    #[serde(default)]
    pub tenant_id: String,
    /// `updated` or `deleted` for users; absent in lifecycle events.
    #[serde(default)]
    pub change_type: Option<String>,
    /// `reauthorizationRequired` (the only one Microsoft sends for users).
    #[serde(default)]
    pub lifecycle_event: Option<String>,
    /// What changed: for users, the account's object id (absent in lifecycle events).
    #[serde(default)]
    pub resource_data: Option<ResourceData>,
}

impl Item {
    /// The object id of the account the change is about, if the item names one.
    pub fn account(&self) -> Option<EntraUserId> {
        let id = self.resource_data.as_ref()?.id.as_deref()?;
        Some(EntraUserId::from_microsoft(id))
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ResourceData {
    #[serde(default)]
    pub id: Option<String>,
}

/// What Microsoft posts: one or more notifications of one subscription.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Collection {
    #[schema(value_type = Vec<Item>)]
    pub value: Items,
}

/// A delivery's items: the first `MOST_ITEMS_READ`, and how many more it held, skipped
/// without being kept.
#[derive(Debug, Default)]
pub struct Items {
    pub read: Vec<Item>,
    pub skipped: usize,
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FirstItems;
        impl<'de> Visitor<'de> for FirstItems {
            type Value = Items;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of notifications")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
                let mut items = Items::default();
                while items.read.len() < MOST_ITEMS_READ {
                    match seq.next_element::<Item>()? {
                        Some(item) => items.read.push(item),
                        None => return Ok(items),
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    items.skipped += 1;
                }
                Ok(items)
            }
        }
        d.deserialize_seq(FirstItems)
    }
}

/// Why an item was not acted on; counted by reason, never more than logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No subscription of Gatehouse has this id (or its tenant is no longer connected).
    UnknownSubscription,
    /// The clientState is not the subscription's.
    WrongClientState,
    /// The item names another Entra tenant than the one the subscription watches.
    OtherTenant,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownSubscription => "unknown_subscription",
            Refusal::WrongClientState => "wrong_client_state",
            Refusal::OtherTenant => "other_tenant",
        }
    }
}

/// Whether `item` comes from `subscription` (the one its id names, if Gatehouse has it).
/// The clientState is compared as digests, so the time taken does not tell a guesser how
/// much of it was right.
pub fn check(item: &Item, subscription: Option<&Subscription>) -> Result<(), Refusal> {
    let sub = subscription.ok_or(Refusal::UnknownSubscription)?;
    let given = digest(item.client_state.as_deref().unwrap_or_default());
    if given.as_bytes() != sub.client_state_sha256.as_bytes() {
        return Err(Refusal::WrongClientState);
    }
    if !sub
        .entra_tenant_id
        .as_ref()
        .is_some_and(|t| t.is(&item.tenant_id))
    {
        return Err(Refusal::OtherTenant);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub() -> Subscription {
        Subscription {
            subscription_id: crate::domain::SubscriptionId::from_microsoft("s1"),
            tenant_id: crate::domain::TenantId::from_outside("acme"),
            entra_tenant_id: Some(crate::domain::EntraTenantId::from_microsoft("contoso-tid")),
            made_in: Some(crate::domain::EntraTenantId::from_microsoft("contoso-tid")),
            client_state_sha256: digest("the-secret"),
            expires_at: 0,
            last_notification_at: None,
            checked_at: 0,
        }
    }

    fn item(client_state: Option<&str>, tenant: &str) -> Item {
        Item {
            subscription_id: "s1".into(),
            client_state: client_state.map(str::to_string),
            tenant_id: tenant.into(),
            change_type: Some("updated".into()),
            lifecycle_event: None,
            resource_data: None,
        }
    }

    #[test]
    fn the_subscriptions_own_notification_passes() {
        assert_eq!(
            check(&item(Some("the-secret"), "contoso-tid"), Some(&sub())),
            Ok(())
        );
        assert_eq!(
            check(&item(Some("the-secret"), "CONTOSO-TID"), Some(&sub())),
            Ok(()),
            "tenant ids are GUIDs, compared without case"
        );
    }

    #[test]
    fn a_guess_a_missing_state_another_tenant_or_an_unknown_id_is_refused() {
        let s = sub();
        assert_eq!(
            check(&item(Some("the-secreT"), "contoso-tid"), Some(&s)),
            Err(Refusal::WrongClientState)
        );
        assert_eq!(
            check(&item(None, "contoso-tid"), Some(&s)),
            Err(Refusal::WrongClientState)
        );
        assert_eq!(
            check(&item(Some("the-secret"), "fabrikam-tid"), Some(&s)),
            Err(Refusal::OtherTenant)
        );
        assert_eq!(
            check(&item(Some("the-secret"), "contoso-tid"), None),
            Err(Refusal::UnknownSubscription)
        );
    }
}
