//! Deciding who to offboard from what Entra reported, with no I/O: exhaustively testable.

use crate::domain::{EntraUserId, OffboardReason, Role, UserId, UserStatus};
use crate::users::admins::AdminChange;
use std::collections::{HashMap, HashSet};

/// One entry of a `/users/delta` walk (or of a full enumeration), in the order received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub oid: EntraUserId,
    /// `@removed` with its reason (`changed`: soft delete; `deleted`: hard delete).
    pub removed: Option<RemovedReason>,
    /// Present only when the entry carries the property (delta sends what changed).
    pub account_enabled: Option<bool>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    /// SMTP proxy addresses and other mails, when the entry carries them.
    pub other_addresses: Option<Vec<String>>,
}

pub use crate::domain::RemovedReason;

/// What the walk covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Changes since the stored delta link: users not mentioned are unchanged.
    Changes,
    /// Every user of the directory (first run or a resync after `410 Gone`): a known user
    /// who is not listed no longer exists there.
    Everyone,
}

/// A Gatehouse user of an azuread tenant, as the reconciler needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownUser {
    pub user_id: UserId,
    pub oid: EntraUserId,
    pub status: UserStatus,
    pub email: String,
    pub role: Role,
}

/// The tenant's groups as this run read them from Graph: the object ids of the users each
/// holds, nested groups counted; `None` where the tenant uses no such group.
#[derive(Debug, Clone, Copy, Default)]
pub struct Groups<'a> {
    /// Only members (or admins) may stay.
    pub scope: Option<&'a HashSet<EntraUserId>>,
    /// Members are admins, everyone else a technician.
    pub admins: Option<&'a HashSet<EntraUserId>>,
}

/// A role an Entra user gets from the admin group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleChange {
    pub user_id: UserId,
    pub role: Role,
}

/// The tenant's deletion threshold: a run that would offboard more than `count` users
/// *and* more than `percent` % of the watched users is held for an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub count: u32,
    pub percent: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            count: 5,
            percent: 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offboarding {
    pub user_id: UserId,
    pub reason: OffboardReason,
}

/// The address a technician's record moves to when Entra no longer lists the one they
/// verified: the account's mail, else its sign-in name, else another of its addresses, the
/// first that is in the connected domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    pub user_id: UserId,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub offboard: Vec<Offboarding>,
    pub renames: Vec<Rename>,
    /// Roles from the admin group that differ from the records.
    pub roles: Vec<RoleChange>,
    /// Users looked at: the watched users of the tenant.
    pub checked: usize,
    /// True when the offboardings exceed the threshold: apply nothing, ask an admin.
    pub held: bool,
}

impl Plan {
    /// What the plan does to the tenant's admins, for the one last-admin rule
    /// (`users::admins`): Entra ended some users' access, the group changes take others out
    /// of the admins (they left the scoping group, or the admin group), and may make new ones.
    pub fn admin_change(&self) -> AdminChange {
        let (ended, left): (Vec<&Offboarding>, Vec<&Offboarding>) = self
            .offboard
            .iter()
            .partition(|o| o.reason.ended_in_entra());
        let demoted = self.roles.iter().filter(|c| c.role == Role::Technician);
        AdminChange {
            ended: ended.iter().map(|o| o.user_id.clone()).collect(),
            removed: left
                .iter()
                .map(|o| o.user_id.clone())
                .chain(demoted.map(|c| c.user_id.clone()))
                .collect(),
            promotes: self.roles.iter().any(|c| c.role == Role::Admin),
        }
    }
}

/// The latest state of one object after folding its entries: Microsoft warns that an
/// object may appear more than once in a delta walk, and the last appearance wins
/// (a soft delete followed by a restore leaves the user in place).
#[derive(Default)]
struct Folded {
    removed: Option<RemovedReason>,
    account_enabled: Option<bool>,
    upn: Option<String>,
    mail: Option<String>,
    others: Option<Vec<String>>,
}

impl Folded {
    /// True when Entra still lists `email` among the account's addresses: its sign-in name,
    /// its mail, and (when the walk carried them) its proxy addresses and other mails.
    fn still_has(&self, email: &str) -> bool {
        self.upn
            .iter()
            .chain(self.mail.iter())
            .chain(self.others.iter().flatten())
            .any(|a| a.eq_ignore_ascii_case(email))
    }

    /// The addresses the walk reported, best first: mail, sign-in name, then the others.
    fn addresses(&self) -> impl Iterator<Item = &String> {
        self.mail
            .iter()
            .chain(self.upn.iter())
            .chain(self.others.iter().flatten())
    }

    /// The first reported address in `domain`.
    fn in_domain(&self, domain: &str) -> Option<&String> {
        self.addresses().find(|a| {
            a.rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain))
        })
    }

    /// True when the walk reported every address the account has: its sign-in name and its
    /// list of other addresses. Only then can it say that none is in the domain; a change
    /// walk that carries one changed property says nothing of the others.
    fn knows_every_address(&self) -> bool {
        self.upn.is_some() && self.others.is_some()
    }
}

/// Decides what a run does. Pure: the same inputs always give the same plan.
pub fn plan(
    entries: &[DirectoryEntry],
    coverage: Coverage,
    users: &[KnownUser],
    domain: &str,
    policy: Policy,
    groups: Groups<'_>,
) -> Plan {
    let mut folded: HashMap<&EntraUserId, Folded> = HashMap::with_capacity(entries.len());
    for e in entries {
        let f = folded.entry(&e.oid).or_default();
        match e.removed {
            Some(reason) => f.removed = Some(reason),
            None => {
                f.removed = None;
                if e.account_enabled.is_some() {
                    f.account_enabled = e.account_enabled;
                }
                if e.user_principal_name.is_some() {
                    f.upn = e.user_principal_name.clone();
                }
                if e.mail.is_some() {
                    f.mail = e.mail.clone();
                }
                if e.other_addresses.is_some() {
                    f.others = e.other_addresses.clone();
                }
            }
        }
    }

    // Anyone who can still sign in or be re-enabled is watched.
    let watched: Vec<&KnownUser> = users
        .iter()
        .filter(|u| u.status != UserStatus::Offboarded)
        .collect();
    let mut offboard = Vec::new();
    let mut renames = Vec::new();
    for user in &watched {
        let reason = match folded.get(&user.oid) {
            Some(Folded {
                removed: Some(RemovedReason::Changed),
                ..
            }) => Some(OffboardReason::SoftDeleted),
            Some(Folded {
                removed: Some(RemovedReason::Deleted),
                ..
            }) => Some(OffboardReason::HardDeleted),
            Some(Folded {
                account_enabled: Some(false),
                ..
            }) => Some(OffboardReason::Disabled),
            Some(f) if f.knows_every_address() && f.in_domain(domain).is_none() => {
                Some(OffboardReason::LeftDomain)
            }
            Some(_) => None,
            None if coverage == Coverage::Everyone => Some(OffboardReason::NotInDirectory),
            None => None,
        };
        let in_group = |g: Option<&HashSet<EntraUserId>>| g.is_some_and(|g| g.contains(&user.oid));
        let reason = reason.or_else(|| {
            (groups.scope.is_some() && !in_group(groups.scope) && !in_group(groups.admins))
                .then_some(OffboardReason::LeftGroup)
        });
        match reason {
            Some(reason) => offboard.push(Offboarding {
                user_id: user.user_id.clone(),
                reason,
            }),
            None => {
                // The address the technician verified stays theirs while Entra lists it for
                // their account: a walk that reports the same addresses changes nothing. A
                // real change moves the record to the account's address in the domain; an
                // address outside it is never taken (sign-in would refuse it).
                if let Some(f) = folded.get(&user.oid) {
                    if (f.upn.is_some() || f.mail.is_some()) && !f.still_has(&user.email) {
                        if let Some(email) = f.in_domain(domain) {
                            renames.push(Rename {
                                user_id: user.user_id.clone(),
                                email: email.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    let roles = role_changes(&watched, &offboard, groups);
    let n = offboard.len() as u64;
    let held =
        n > u64::from(policy.count) && n * 100 > u64::from(policy.percent) * watched.len() as u64;
    Plan {
        offboard,
        renames,
        roles,
        checked: watched.len(),
        held,
    }
}

/// With an admin group, every active Entra user staying on is an admin exactly when the group
/// holds them.
fn role_changes(
    watched: &[&KnownUser],
    offboard: &[Offboarding],
    groups: Groups<'_>,
) -> Vec<RoleChange> {
    let Some(admins) = groups.admins else {
        return Vec::new();
    };
    watched
        .iter()
        .filter(|u| u.status == UserStatus::Active)
        .filter(|u| !offboard.iter().any(|o| o.user_id == u.user_id))
        .filter_map(|u| {
            let role = if admins.contains(&u.oid) {
                Role::Admin
            } else {
                Role::Technician
            };
            (role != u.role).then(|| RoleChange {
                user_id: u.user_id.clone(),
                role,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tenant that uses no groups.
    fn plan(
        entries: &[DirectoryEntry],
        coverage: Coverage,
        users: &[KnownUser],
        domain: &str,
        policy: Policy,
    ) -> Plan {
        super::plan(entries, coverage, users, domain, policy, Groups::default())
    }

    /// A change walk over `users` of contoso.com with the default threshold and `groups`.
    fn grouped(entries: &[DirectoryEntry], users: &[KnownUser], groups: Groups<'_>) -> Plan {
        super::plan(
            entries,
            Coverage::Changes,
            users,
            "contoso.com",
            Policy::default(),
            groups,
        )
    }

    fn oid(n: usize) -> EntraUserId {
        EntraUserId::from_microsoft(format!("oid-{n}"))
    }

    fn set(ns: &[usize]) -> HashSet<EntraUserId> {
        ns.iter().map(|&n| oid(n)).collect()
    }

    fn admin(n: usize) -> KnownUser {
        KnownUser {
            role: Role::Admin,
            ..user(n)
        }
    }

    #[test]
    fn a_user_outside_the_scoping_group_leaves_it_and_an_admin_group_member_stays() {
        let users = [user(1), user(2), user(3)];
        let scope = set(&[1]);
        let admins = set(&[3]);
        let groups = Groups {
            scope: Some(&scope),
            admins: Some(&admins),
        };
        let p = grouped(&[], &users, groups);
        assert_eq!(
            reasons(&p),
            vec![("u2".to_string(), OffboardReason::LeftGroup)]
        );
        assert_eq!(
            p.roles,
            vec![RoleChange {
                user_id: UserId::from_outside("u3"),
                role: Role::Admin
            }]
        );
    }

    #[test]
    fn a_deletion_wins_over_leaving_the_group() {
        let users = [user(1)];
        let scope = set(&[]);
        let groups = Groups {
            scope: Some(&scope),
            ..Groups::default()
        };
        let p = grouped(&[disabled(1)], &users, groups);
        assert_eq!(
            reasons(&p),
            vec![("u1".to_string(), OffboardReason::Disabled)]
        );
    }

    #[test]
    fn without_an_admin_group_roles_stay_as_set_by_hand() {
        let users = [admin(1), user(2)];
        let p = grouped(&[], &users, Groups::default());
        assert!(p.roles.is_empty());
        assert_eq!(p.admin_change(), AdminChange::default());
    }

    /// The plan's changes, judged by the one rule over the tenant's active admins.
    fn leaves_no_admin(p: &Plan, active: &[&str]) -> bool {
        let active: Vec<UserId> = active.iter().map(|a| UserId::from_outside(*a)).collect();
        crate::users::admins::leaves_no_admin(&active, &[], &p.admin_change())
    }

    #[test]
    fn demoting_the_last_admin_is_refused_unless_another_admin_stays() {
        let users = [admin(1), user(2)];
        let nobody = set(&[]);
        let demote = Groups {
            admins: Some(&nobody),
            ..Groups::default()
        };
        let p = grouped(&[], &users, demote);
        assert!(
            leaves_no_admin(&p, &["u1"]),
            "the only admin would be demoted"
        );
        // Leaving the scoping group is a group change too.
        let scope = set(&[2]);
        let leave = Groups {
            scope: Some(&scope),
            ..Groups::default()
        };
        let p = grouped(&[], &users, leave);
        assert!(leaves_no_admin(&p, &["u1"]), "the only admin would leave");
        // A local admin keeps the tenant administered; a promotion replaces the demoted one.
        let p = grouped(&[], &users, demote);
        assert!(!leaves_no_admin(&p, &["u1", "a local admin"]));
        let two = set(&[2]);
        let swap = Groups {
            admins: Some(&two),
            ..Groups::default()
        };
        assert!(!leaves_no_admin(&grouped(&[], &users, swap), &["u1"]));
        // Entra deleting the last admin is not a group change: the offboarding goes on.
        let p = grouped(&[disabled(1)], &users, demote);
        assert!(!leaves_no_admin(&p, &["u1"]));
        assert_eq!(
            reasons(&p),
            vec![("u1".to_string(), OffboardReason::Disabled)]
        );
    }

    fn user(n: usize) -> KnownUser {
        KnownUser {
            user_id: UserId::from_outside(format!("u{n}")),
            oid: oid(n),
            status: UserStatus::Active,
            email: format!("user{n}@contoso.com"),
            role: Role::Technician,
        }
    }

    fn entry(n: usize) -> DirectoryEntry {
        DirectoryEntry {
            oid: oid(n),
            removed: None,
            account_enabled: Some(true),
            user_principal_name: None,
            mail: None,
            other_addresses: None,
        }
    }

    fn removed(n: usize, reason: RemovedReason) -> DirectoryEntry {
        DirectoryEntry {
            removed: Some(reason),
            account_enabled: None,
            ..entry(n)
        }
    }

    fn disabled(n: usize) -> DirectoryEntry {
        DirectoryEntry {
            account_enabled: Some(false),
            ..entry(n)
        }
    }

    fn reasons(p: &Plan) -> Vec<(String, OffboardReason)> {
        p.offboard
            .iter()
            .map(|o| (o.user_id.to_string(), o.reason))
            .collect()
    }

    #[test]
    fn no_changes_offboard_nobody() {
        let users: Vec<_> = (0..10).map(user).collect();
        let p = plan(
            &[],
            Coverage::Changes,
            &users,
            "contoso.com",
            Policy::default(),
        );
        assert!(p.offboard.is_empty() && p.renames.is_empty() && !p.held);
        assert_eq!(p.checked, 10);
    }

    #[test]
    fn soft_delete_hard_delete_and_disable_each_offboard() {
        let users: Vec<_> = (0..30).map(user).collect();
        let p = plan(
            &[
                removed(1, RemovedReason::Changed),
                removed(2, RemovedReason::Deleted),
                disabled(3),
            ],
            Coverage::Changes,
            &users,
            "contoso.com",
            Policy::default(),
        );
        assert_eq!(
            reasons(&p),
            vec![
                ("u1".into(), OffboardReason::SoftDeleted),
                ("u2".into(), OffboardReason::HardDeleted),
                ("u3".into(), OffboardReason::Disabled)
            ]
        );
        assert!(!p.held);
    }

    #[test]
    fn a_restore_after_a_soft_delete_in_the_same_walk_keeps_the_user() {
        let users = vec![user(1)];
        let p = plan(
            &[removed(1, RemovedReason::Changed), entry(1)],
            Coverage::Changes,
            &users,
            "contoso.com",
            Policy::default(),
        );
        assert!(p.offboard.is_empty());
    }

    #[test]
    fn the_last_appearance_of_a_duplicate_wins() {
        let users = vec![user(1)];
        let p = plan(
            &[entry(1), disabled(1)],
            Coverage::Changes,
            &users,
            "contoso.com",
            Policy::default(),
        );
        assert_eq!(reasons(&p), vec![("u1".into(), OffboardReason::Disabled)]);
        let p = plan(
            &[disabled(1), entry(1)],
            Coverage::Changes,
            &users,
            "contoso.com",
            Policy::default(),
        );
        assert!(p.offboard.is_empty(), "re-enabled later in the walk");
    }

    #[test]
    fn an_entry_without_account_enabled_does_not_reenable_or_disable() {
        let users = vec![user(1)];
        let rename = DirectoryEntry {
            account_enabled: None,
            mail: Some("new@contoso.com".into()),
            ..entry(1)
        };
        let p = plan(
            &[disabled(1), rename.clone()],
            Coverage::Changes,
            &users,
            "contoso.com",
            Policy::default(),
        );
        assert_eq!(reasons(&p), vec![("u1".into(), OffboardReason::Disabled)]);
        let p = plan(
            &[rename],
            Coverage::Changes,
            &users,
            "contoso.com",
            Policy::default(),
        );
        assert!(p.offboard.is_empty());
        assert_eq!(
            p.renames,
            vec![Rename {
                user_id: UserId::from_outside("u1"),
                email: "new@contoso.com".into()
            }]
        );
    }

    #[test]
    fn a_resync_that_lists_the_same_addresses_renames_nobody() {
        // user1 onboarded through an alias kept in otherMails; a full resync reports the
        // account with its UPN and mail, and the alias still there.
        let users = vec![user(1)];
        let listed = DirectoryEntry {
            user_principal_name: Some("first.last@contoso.com".into()),
            mail: Some("first.last@contoso.com".into()),
            other_addresses: Some(vec!["USER1@contoso.com".into()]),
            ..entry(1)
        };
        let p = plan(
            std::slice::from_ref(&listed),
            Coverage::Everyone,
            &users,
            "contoso.com",
            Policy::default(),
        );
        assert!(p.renames.is_empty() && p.offboard.is_empty(), "{p:?}");
        // The alias removed in Entra: now the record follows the account's mail.
        let moved = DirectoryEntry {
            other_addresses: Some(vec![]),
            ..listed
        };
        let p = plan(
            &[moved],
            Coverage::Changes,
            &users,
            "contoso.com",
            Policy::default(),
        );
        assert_eq!(p.renames.len(), 1);
        assert_eq!(p.renames[0].email, "first.last@contoso.com");
    }

    #[test]
    fn an_account_whose_addresses_all_leave_the_domain_is_offboarded() {
        // Moved to a sister company: every address now at fabrikam.com.
        let users = vec![user(1), user(2)];
        let moved = DirectoryEntry {
            user_principal_name: Some("user1@fabrikam.com".into()),
            mail: Some("user1@fabrikam.com".into()),
            other_addresses: Some(vec!["u1@fabrikam.com".into()]),
            ..entry(1)
        };
        // A second account keeps one alias in the domain: it stays, and its record follows
        // the alias rather than an address sign-in would refuse.
        let kept = DirectoryEntry {
            oid: oid(2),
            user_principal_name: Some("user2@fabrikam.com".into()),
            mail: Some("user2@fabrikam.com".into()),
            other_addresses: Some(vec!["alias2@Contoso.com".into()]),
            ..entry(2)
        };
        for coverage in [Coverage::Changes, Coverage::Everyone] {
            let p = plan(
                &[moved.clone(), kept.clone()],
                coverage,
                &users,
                "contoso.com",
                Policy::default(),
            );
            assert_eq!(reasons(&p), vec![("u1".into(), OffboardReason::LeftDomain)]);
            assert_eq!(
                p.renames,
                vec![Rename {
                    user_id: UserId::from_outside("u2"),
                    email: "alias2@Contoso.com".into()
                }]
            );
        }
    }

    #[test]
    fn a_partial_entry_outside_the_domain_changes_nothing() {
        // A change walk that carries only the new mail says nothing of the sign-in name
        // and the aliases: nobody is offboarded, and the record keeps its address.
        let users = vec![user(1)];
        let partial = DirectoryEntry {
            mail: Some("user1@fabrikam.com".into()),
            ..entry(1)
        };
        let p = plan(
            &[partial],
            Coverage::Changes,
            &users,
            "contoso.com",
            Policy::default(),
        );
        assert!(p.offboard.is_empty() && p.renames.is_empty(), "{p:?}");
    }

    #[test]
    fn strangers_in_the_directory_are_ignored() {
        let users = vec![user(1)];
        let p = plan(
            &[removed(99, RemovedReason::Deleted), disabled(98)],
            Coverage::Changes,
            &users,
            "contoso.com",
            Policy::default(),
        );
        assert!(p.offboard.is_empty());
    }

    #[test]
    fn a_full_enumeration_offboards_users_it_does_not_list() {
        let users = vec![user(1), user(2)];
        let p = plan(
            &[entry(1)],
            Coverage::Everyone,
            &users,
            "contoso.com",
            Policy::default(),
        );
        assert_eq!(
            reasons(&p),
            vec![("u2".into(), OffboardReason::NotInDirectory)]
        );
        let p = plan(
            &[entry(1)],
            Coverage::Changes,
            &users,
            "contoso.com",
            Policy::default(),
        );
        assert!(
            p.offboard.is_empty(),
            "a change walk says nothing of users it does not list"
        );
    }

    #[test]
    fn offboarded_users_are_not_offboarded_again() {
        let mut gone = user(1);
        gone.status = UserStatus::Offboarded;
        let p = plan(
            &[removed(1, RemovedReason::Deleted)],
            Coverage::Changes,
            &[gone],
            "contoso.com",
            Policy::default(),
        );
        assert!(p.offboard.is_empty());
        assert_eq!(p.checked, 0);
    }

    #[test]
    fn disabled_and_invited_users_are_still_watched() {
        let mut d = user(1);
        d.status = UserStatus::Disabled;
        let mut i = user(2);
        i.status = UserStatus::Invited;
        let p = plan(
            &[
                removed(1, RemovedReason::Deleted),
                removed(2, RemovedReason::Changed),
            ],
            Coverage::Changes,
            &[d, i],
            "contoso.com",
            Policy::default(),
        );
        assert_eq!(p.offboard.len(), 2);
    }

    #[test]
    fn the_threshold_needs_both_more_than_the_count_and_more_than_the_share() {
        let policy = Policy::default();
        // 6 of 100: more than 5 but only 6 % — applied.
        let users: Vec<_> = (0..100).map(user).collect();
        let six: Vec<_> = (0..6).map(|n| removed(n, RemovedReason::Deleted)).collect();
        assert!(!plan(&six, Coverage::Changes, &users, "contoso.com", policy).held);
        // 5 of 10: 50 % but not more than 5 — applied.
        let users: Vec<_> = (0..10).map(user).collect();
        let five: Vec<_> = (0..5).map(|n| removed(n, RemovedReason::Deleted)).collect();
        assert!(!plan(&five, Coverage::Changes, &users, "contoso.com", policy).held);
        // 6 of 10: both — held.
        assert!(plan(&six, Coverage::Changes, &users, "contoso.com", policy).held);
        // 21 of 100 — held; 20 of 100 — exactly 20 %, not more — applied.
        let users: Vec<_> = (0..100).map(user).collect();
        let n21: Vec<_> = (0..21)
            .map(|n| removed(n, RemovedReason::Deleted))
            .collect();
        assert!(plan(&n21, Coverage::Changes, &users, "contoso.com", policy).held);
        let n20: Vec<_> = (0..20)
            .map(|n| removed(n, RemovedReason::Deleted))
            .collect();
        assert!(!plan(&n20, Coverage::Changes, &users, "contoso.com", policy).held);
    }

    #[test]
    fn a_held_plan_still_lists_who_would_go() {
        let users: Vec<_> = (0..10).map(user).collect();
        let all: Vec<_> = (0..10).map(disabled).collect();
        let p = plan(
            &all,
            Coverage::Changes,
            &users,
            "contoso.com",
            Policy::default(),
        );
        assert!(p.held);
        assert_eq!(p.offboard.len(), 10);
    }

    /// Exhaustive over small worlds: every combination of up to three entries per user for
    /// three users. Whatever the order, a user is offboarded exactly when their last
    /// decisive entry says removed or disabled.
    #[test]
    fn exhaustive_small_worlds_agree_with_the_rule() {
        let kinds = [0u8, 1, 2, 3, 4]; // none, enabled, disabled, soft-deleted, hard-deleted
        let make = |n: usize, k: u8| match k {
            1 => Some(entry(n)),
            2 => Some(disabled(n)),
            3 => Some(removed(n, RemovedReason::Changed)),
            4 => Some(removed(n, RemovedReason::Deleted)),
            _ => None,
        };
        let users: Vec<_> = (0..3).map(user).collect();
        for a in kinds {
            for b in kinds {
                for c in kinds {
                    for d in kinds {
                        let seq = [(0, a), (1, b), (0, c), (2, d)];
                        let entries: Vec<_> = seq.iter().filter_map(|&(n, k)| make(n, k)).collect();
                        let p = plan(
                            &entries,
                            Coverage::Changes,
                            &users,
                            "contoso.com",
                            Policy {
                                count: 100,
                                percent: 100,
                            },
                        );
                        for n in 0..3 {
                            let last = seq.iter().rfind(|(m, k)| *m == n && *k != 0).map(|x| x.1);
                            let expected = matches!(last, Some(2..=4));
                            let got = p
                                .offboard
                                .iter()
                                .any(|o| o.user_id.as_str() == format!("u{n}"));
                            assert_eq!(got, expected, "user {n} in {seq:?}");
                        }
                    }
                }
            }
        }
    }
}
