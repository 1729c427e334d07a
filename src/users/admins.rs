//! Never the tenant's last admin. One pure rule (`leaves_no_admin`) and one guard that applies
//! it to the admins as they are under the tenant's lock (`Admins::lock`). Every change that
//! can take an admin away goes through both: a reconcile run, an approved held run, a
//! demotion at sign-in, and an admin's disable, demotion or delete. Two of them at once run
//! one after the other, so neither can count an admin the other is taking away.

use crate::domain::{TenantId, UserId};
use crate::users::store;

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// What a change does to a tenant's admins, as the rule needs to see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminChange {
    /// Users whose access Entra ended (deleted, disabled, out of the domain): they go
    /// whatever the rule says, so they count on neither side. Access Entra ended is never
    /// kept for the sake of an admin.
    pub ended: Vec<UserId>,
    /// Users the change takes out of the admins: demoted, out of the tenant's groups,
    /// disabled or deleted in Gatehouse.
    pub removed: Vec<UserId>,
    /// True when the change makes someone an admin.
    pub promotes: bool,
}

impl AdminChange {
    /// One user taken out of the admins (a demotion, a disable by an admin).
    pub fn removes(user_id: &UserId) -> Self {
        AdminChange {
            removed: vec![user_id.clone()],
            ..AdminChange::default()
        }
    }
}

/// The rule: a change may not take a tenant that has an active admin to one that has none.
/// `active` are the tenant's active admins now; `waiting` those on a held run's list, who are
/// on their way out unless an admin rejects it: like the users Entra ended, they are not the
/// admin who stays, unless this change is the one taking them (a waiting admin who is the
/// only one is still the only one). A tenant with no counted admin has nothing to lose.
pub fn leaves_no_admin(active: &[UserId], waiting: &[UserId], change: &AdminChange) -> bool {
    let mut counted = active
        .iter()
        .filter(|a| !change.ended.contains(a))
        .filter(|a| !waiting.contains(a) || change.removed.contains(a))
        .peekable();
    counted.peek().is_some() && !change.promotes && counted.all(|a| change.removed.contains(a))
}

/// The tenant's admins, read under its lock: the transaction that read them is the only one
/// changing the tenant's users until it ends.
#[derive(Debug, Clone)]
pub struct Admins {
    active: Vec<UserId>,
    waiting: Vec<UserId>,
}

impl Admins {
    /// Takes the tenant's row for the rest of `tx`, then reads its active admins and who is
    /// waiting on a held run's list. Take it before writing any user, so that no two such
    /// transactions wait for each other in opposite orders.
    pub async fn lock(tx: &mut Tx<'_>, tenant_id: &TenantId) -> anyhow::Result<Admins> {
        crate::tenants::store::lock(tx, tenant_id).await?;
        let active = store::active_admin_ids(tx, tenant_id).await?;
        let waiting = crate::reconciler::awaiting_decision(tx, tenant_id).await?;
        Ok(Admins { active, waiting })
    }

    /// True when `change` would leave the tenant without an admin (`leaves_no_admin`).
    pub fn lost_by(&self, change: &AdminChange) -> bool {
        leaves_no_admin(&self.active, &self.waiting, change)
    }

    /// True when `user_id` is an active admin of the tenant now.
    pub fn includes(&self, user_id: &UserId) -> bool {
        self.active.iter().any(|a| a == user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ns: &[u8]) -> Vec<UserId> {
        ns.iter()
            .map(|n| UserId::from_outside(format!("u{n}")))
            .collect()
    }

    #[test]
    fn the_last_admin_cannot_be_demoted_but_one_of_two_can() {
        let change = AdminChange::removes(&UserId::from_outside("u1"));
        assert!(leaves_no_admin(&ids(&[1]), &[], &change));
        assert!(!leaves_no_admin(&ids(&[1, 2]), &[], &change));
    }

    #[test]
    fn a_promotion_in_the_same_change_keeps_the_tenant_administered() {
        let change = AdminChange {
            promotes: true,
            ..AdminChange::removes(&UserId::from_outside("u1"))
        };
        assert!(!leaves_no_admin(&ids(&[1]), &[], &change));
    }

    #[test]
    fn access_entra_ended_counts_on_neither_side() {
        // The only other admin was deleted in Entra: the one left is now the last.
        let change = AdminChange {
            ended: ids(&[2]),
            ..AdminChange::removes(&UserId::from_outside("u1"))
        };
        assert!(leaves_no_admin(&ids(&[1, 2]), &[], &change));
        // Entra ended the only admin's access: nothing the rule could keep.
        let change = AdminChange {
            ended: ids(&[1]),
            ..AdminChange::default()
        };
        assert!(!leaves_no_admin(&ids(&[1]), &[], &change));
    }

    #[test]
    fn admins_on_a_held_list_are_not_the_one_who_stays() {
        assert!(leaves_no_admin(
            &ids(&[1, 2]),
            &ids(&[2]),
            &AdminChange::removes(&UserId::from_outside("u1"))
        ));
    }

    #[test]
    fn the_only_admin_stays_even_while_on_a_held_list() {
        // Demoting her at sign-in or by hand would leave nobody to decide the held run.
        assert!(leaves_no_admin(
            &ids(&[1]),
            &ids(&[1]),
            &AdminChange::removes(&UserId::from_outside("u1"))
        ));
        // Another admin who is not waiting stays, so she may go.
        assert!(!leaves_no_admin(
            &ids(&[1, 2]),
            &ids(&[1]),
            &AdminChange::removes(&UserId::from_outside("u1"))
        ));
    }

    #[test]
    fn a_tenant_without_admins_has_none_to_lose() {
        assert!(!leaves_no_admin(
            &[],
            &[],
            &AdminChange::removes(&UserId::from_outside("u1"))
        ));
    }

    /// Every change over three admins and a fourth user, checked against the tenant the
    /// change would leave behind: refused exactly when it had a counted admin and would have
    /// none.
    #[test]
    fn the_rule_holds_for_every_small_change() {
        let everyone = ids(&[1, 2, 3, 4]);
        let pick = |mask: u32| -> Vec<UserId> {
            everyone
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, id)| id.clone())
                .collect()
        };
        for (active, waiting) in (0..8).flat_map(|a| (0..8).map(move |w| (a, w))) {
            for (ended, removed) in (0..16).flat_map(|e| (0..16).map(move |r| (e, r))) {
                for promotes in [false, true] {
                    let (active, waiting) = (pick(active), pick(waiting));
                    let change = AdminChange {
                        ended: pick(ended),
                        removed: pick(removed),
                        promotes,
                    };
                    // Who may be counted on: not ended by Entra, and not merely waiting
                    // on a held list (one this change takes is counted: it is here now).
                    let before: Vec<&UserId> = active
                        .iter()
                        .filter(|a| !change.ended.contains(a))
                        .filter(|a| !waiting.contains(a) || change.removed.contains(a))
                        .collect();
                    let mut after: Vec<&str> = before
                        .iter()
                        .filter(|a| !change.removed.contains(a))
                        .map(|a| a.as_str())
                        .collect();
                    if promotes {
                        after.push("someone made admin");
                    }
                    assert_eq!(
                        leaves_no_admin(&active, &waiting, &change),
                        !before.is_empty() && after.is_empty(),
                        "{active:?} waiting {waiting:?}, {change:?}"
                    );
                }
            }
        }
    }
}
