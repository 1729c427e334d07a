//! Gatehouse's copy of the direct members of the Entra groups a tenant follows, and who they
//! hold through nesting. `/groups/delta` reports direct members only, so the reconciler keeps
//! them for the scoping and admin groups and every group nested in them, and works the
//! transitive sets out here. Pure: no I/O.

use crate::domain::{EntraUserId, GroupId};
use crate::entra::{GroupDelta, Member};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

/// The direct members of one group that matter: users and groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Direct {
    pub users: BTreeSet<EntraUserId>,
    pub groups: BTreeSet<GroupId>,
}

/// Direct memberships of the tracked groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mirror {
    /// The groups the delta round follows (its `$filter`).
    pub tracked: BTreeSet<GroupId>,
    pub members: BTreeMap<GroupId, Direct>,
}

impl Mirror {
    /// A new round over `tracked`: every group starts with no members; the round's pages
    /// bring them all.
    pub fn starting(tracked: BTreeSet<GroupId>) -> Self {
        Mirror {
            members: tracked
                .iter()
                .map(|g| (g.clone(), Direct::default()))
                .collect(),
            tracked,
        }
    }

    /// Applies one page of the round; returns the tracked groups it reports deleted. A group
    /// the round does not track changes nothing: an answer about other groups grants nothing.
    pub fn apply(&mut self, page: &[GroupDelta]) -> Vec<GroupId> {
        let mut deleted = Vec::new();
        for group in page {
            if !self.tracked.contains(&group.id) {
                continue;
            }
            if group.removed {
                self.members.remove(&group.id);
                deleted.push(group.id.clone());
                continue;
            }
            let direct = self.members.entry(group.id.clone()).or_default();
            for m in &group.members {
                match (&m.member, m.removed) {
                    (Member::User(u), false) => direct.users.insert(u.clone()),
                    (Member::User(u), true) => direct.users.remove(u),
                    (Member::Group(g), false) => direct.groups.insert(g.clone()),
                    (Member::Group(g), true) => direct.groups.remove(g),
                    (Member::Other, _) => continue,
                };
            }
        }
        deleted
    }

    /// `roots` and every group nested in them, as far as this copy knows.
    pub fn nested<'a>(&self, roots: impl IntoIterator<Item = &'a GroupId>) -> BTreeSet<GroupId> {
        let mut out: BTreeSet<GroupId> = roots.into_iter().cloned().collect();
        let mut queue: VecDeque<GroupId> = out.iter().cloned().collect();
        while let Some(g) = queue.pop_front() {
            for inner in self.members.get(&g).into_iter().flat_map(|d| &d.groups) {
                if out.insert(inner.clone()) {
                    queue.push_back(inner.clone());
                }
            }
        }
        out
    }

    /// Whether this copy can answer for `roots`: each of them and every group nested in them
    /// is tracked.
    pub fn covers<'a>(&self, roots: impl IntoIterator<Item = &'a GroupId>) -> bool {
        self.nested(roots).is_subset(&self.tracked)
    }

    /// The users `root` holds, directly or through nested groups.
    pub fn users_in(&self, root: &GroupId) -> HashSet<EntraUserId> {
        self.nested([root])
            .iter()
            .filter_map(|g| self.members.get(g))
            .flat_map(|d| d.users.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entra::MemberDelta;

    fn g(id: &str) -> GroupId {
        GroupId::from_microsoft(id)
    }

    fn user(id: &str, removed: bool) -> MemberDelta {
        MemberDelta {
            member: Member::User(EntraUserId::from_microsoft(id)),
            removed,
        }
    }

    fn subgroup(id: &str, removed: bool) -> MemberDelta {
        MemberDelta {
            member: Member::Group(g(id)),
            removed,
        }
    }

    fn group(id: &str, members: Vec<MemberDelta>) -> GroupDelta {
        GroupDelta {
            id: g(id),
            removed: false,
            members,
        }
    }

    fn tracked(ids: &[&str]) -> BTreeSet<GroupId> {
        ids.iter().map(|s| g(s)).collect()
    }

    /// Technicians: Alex and the nested Tier 2 (Patti, and Tier 3 with Isaiah).
    fn msp() -> Mirror {
        let mut m = Mirror::starting(tracked(&["tech", "tier2", "tier3"]));
        m.apply(&[
            group(
                "tech",
                vec![
                    user("alex", false),
                    subgroup("tier2", false),
                    MemberDelta {
                        member: Member::Other,
                        removed: false,
                    },
                ],
            ),
            group(
                "tier2",
                vec![user("patti", false), subgroup("tier3", false)],
            ),
            group("tier3", vec![user("isaiah", false)]),
        ]);
        m
    }

    fn sorted(users: HashSet<EntraUserId>) -> Vec<String> {
        let mut v: Vec<String> = users.into_iter().map(|u| u.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn users_count_through_every_level_of_nesting() {
        let m = msp();
        assert_eq!(sorted(m.users_in(&g("tech"))), ["alex", "isaiah", "patti"]);
        assert_eq!(sorted(m.users_in(&g("tier3"))), ["isaiah"]);
        assert!(m.covers([&g("tech")]));
    }

    #[test]
    fn leaving_a_nested_group_or_its_deletion_leaves_the_groups_above() {
        let mut m = msp();
        m.apply(&[group("tier2", vec![subgroup("tier3", true)])]);
        assert_eq!(sorted(m.users_in(&g("tech"))), ["alex", "patti"]);
        let deleted = m.apply(&[GroupDelta {
            id: g("tier2"),
            removed: true,
            members: vec![],
        }]);
        assert_eq!(deleted, [g("tier2")]);
        assert_eq!(sorted(m.users_in(&g("tech"))), ["alex"]);
    }

    #[test]
    fn a_newly_nested_group_is_not_covered_until_tracked() {
        let mut m = msp();
        m.apply(&[group("tech", vec![subgroup("tier9", false)])]);
        assert!(!m.covers([&g("tech")]), "tier9's members are unknown");
        assert!(m.nested([&g("tech")]).contains(&g("tier9")));
    }

    #[test]
    fn groups_outside_the_round_change_nothing_and_cycles_end() {
        let mut m = msp();
        m.apply(&[group("sales", vec![user("lidia", false)])]);
        assert!(!m.members.contains_key(&g("sales")));
        // Entra forbids cycles; a copy that somehow holds one still terminates.
        m.apply(&[group("tier3", vec![subgroup("tech", false)])]);
        assert_eq!(sorted(m.users_in(&g("tier2"))), ["alex", "isaiah", "patti"]);
    }
}
