//! Gatehouse's copy of the direct members of the Entra groups a tenant follows, and who they
//! hold through nesting. `/groups/delta` reports direct members only, so the reconciler keeps
//! them for the scoping and admin groups and every group nested in them, and works the
//! transitive sets out here. Pure: no I/O.

use crate::entra::{GroupDelta, MemberKind};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

/// Direct memberships of the tracked groups: group id → member id → the member is a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mirror {
    /// The groups the delta round follows (its `$filter`).
    pub tracked: BTreeSet<String>,
    pub members: BTreeMap<String, BTreeMap<String, bool>>,
}

impl Mirror {
    /// A new round over `tracked`: every group starts with no members; the round's pages
    /// bring them all.
    pub fn starting(tracked: BTreeSet<String>) -> Self {
        Mirror {
            members: tracked
                .iter()
                .map(|g| (g.clone(), BTreeMap::new()))
                .collect(),
            tracked,
        }
    }

    /// Applies one page of the round; returns the tracked groups it reports deleted. A group
    /// the round does not track changes nothing: an answer about other groups grants nothing.
    pub fn apply(&mut self, page: &[GroupDelta]) -> Vec<String> {
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
            let members = self.members.entry(group.id.clone()).or_default();
            for m in &group.members {
                let is_group = match m.kind {
                    MemberKind::User => false,
                    MemberKind::Group => true,
                    MemberKind::Other => continue,
                };
                if m.removed {
                    members.remove(&m.id);
                } else {
                    members.insert(m.id.clone(), is_group);
                }
            }
        }
        deleted
    }

    /// `roots` and every group nested in them, as far as this copy knows.
    pub fn nested(&self, roots: &[&str]) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = roots.iter().map(|r| r.to_string()).collect();
        let mut queue: VecDeque<String> = out.iter().cloned().collect();
        while let Some(g) = queue.pop_front() {
            for (m, &is_group) in self.members.get(&g).into_iter().flatten() {
                if is_group && out.insert(m.clone()) {
                    queue.push_back(m.clone());
                }
            }
        }
        out
    }

    /// Whether this copy can answer for `roots`: each of them and every group nested in them
    /// is tracked.
    pub fn covers(&self, roots: &[&str]) -> bool {
        self.nested(roots).is_subset(&self.tracked)
    }

    /// The users `root` holds, directly or through nested groups.
    pub fn users_in(&self, root: &str) -> HashSet<String> {
        let mut users = HashSet::new();
        for g in self.nested(&[root]) {
            for (m, &is_group) in self.members.get(&g).into_iter().flatten() {
                if !is_group {
                    users.insert(m.clone());
                }
            }
        }
        users
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entra::MemberDelta;

    fn member(id: &str, kind: MemberKind, removed: bool) -> MemberDelta {
        MemberDelta {
            id: id.into(),
            kind,
            removed,
        }
    }

    fn group(id: &str, members: Vec<MemberDelta>) -> GroupDelta {
        GroupDelta {
            id: id.into(),
            removed: false,
            members,
        }
    }

    fn tracked(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    /// Technicians: Alex and the nested Tier 2 (Patti, and Tier 3 with Isaiah).
    fn msp() -> Mirror {
        let mut m = Mirror::starting(tracked(&["tech", "tier2", "tier3"]));
        m.apply(&[
            group(
                "tech",
                vec![
                    member("alex", MemberKind::User, false),
                    member("tier2", MemberKind::Group, false),
                    member("printer", MemberKind::Other, false),
                ],
            ),
            group(
                "tier2",
                vec![
                    member("patti", MemberKind::User, false),
                    member("tier3", MemberKind::Group, false),
                ],
            ),
            group("tier3", vec![member("isaiah", MemberKind::User, false)]),
        ]);
        m
    }

    fn sorted(users: HashSet<String>) -> Vec<String> {
        let mut v: Vec<String> = users.into_iter().collect();
        v.sort();
        v
    }

    #[test]
    fn users_count_through_every_level_of_nesting() {
        let m = msp();
        assert_eq!(sorted(m.users_in("tech")), ["alex", "isaiah", "patti"]);
        assert_eq!(sorted(m.users_in("tier3")), ["isaiah"]);
        assert!(m.covers(&["tech"]));
    }

    #[test]
    fn leaving_a_nested_group_or_its_deletion_leaves_the_groups_above() {
        let mut m = msp();
        m.apply(&[group(
            "tier2",
            vec![member("tier3", MemberKind::Group, true)],
        )]);
        assert_eq!(sorted(m.users_in("tech")), ["alex", "patti"]);
        let deleted = m.apply(&[GroupDelta {
            id: "tier2".into(),
            removed: true,
            members: vec![],
        }]);
        assert_eq!(deleted, ["tier2"]);
        assert_eq!(sorted(m.users_in("tech")), ["alex"]);
    }

    #[test]
    fn a_newly_nested_group_is_not_covered_until_tracked() {
        let mut m = msp();
        m.apply(&[group(
            "tech",
            vec![member("tier9", MemberKind::Group, false)],
        )]);
        assert!(!m.covers(&["tech"]), "tier9's members are unknown");
        assert!(m.nested(&["tech"]).contains("tier9"));
    }

    #[test]
    fn groups_outside_the_round_change_nothing_and_cycles_end() {
        let mut m = msp();
        m.apply(&[group(
            "sales",
            vec![member("lidia", MemberKind::User, false)],
        )]);
        assert!(!m.members.contains_key("sales"));
        // Entra forbids cycles; a copy that somehow holds one still terminates.
        m.apply(&[group(
            "tier3",
            vec![member("tech", MemberKind::Group, false)],
        )]);
        assert_eq!(sorted(m.users_in("tier2")), ["alex", "isaiah", "patti"]);
    }
}
