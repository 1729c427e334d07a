//! A directory's groups and who belongs to them, directly and through nested groups, as Entra
//! ID keeps them: security groups may hold users and other groups; Microsoft 365 groups
//! (`groupTypes: ["Unified"]`) hold users only. Membership counts transitively: a member of
//! a group that is a member of a group belongs to both.
//! https://learn.microsoft.com/en-us/graph/api/resources/groups-overview

use crate::ids::new_guid;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};

/// Why a change to groups was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GroupError {
    #[error("a group with id {0} already exists")]
    Duplicate(String),
    #[error("no group {0} in this directory")]
    Unknown(String),
    /// Against Entra's rules (nesting in a Microsoft 365 group, a group inside itself), or
    /// not a member to remove.
    #[error("{0}")]
    NotAllowed(String),
}

fn yes() -> bool {
    true
}

/// A group with the properties Gatehouse reads (Graph names, camelCase in JSON). `members`
/// holds the object ids of its direct members, users or groups, in the order they joined.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    #[serde(default = "new_guid")]
    pub id: String,
    pub display_name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "yes")]
    pub security_enabled: bool,
    #[serde(default)]
    pub mail_enabled: bool,
    #[serde(default)]
    pub group_types: Vec<String>,
    /// `Public`, `Private` or `HiddenMembership`; unset at creation, a security group is
    /// `Private` and a Microsoft 365 group `Public` (anyone in the organization may join it).
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub members: Vec<String>,
    /// Creation order in its directory (set when added): `/groups/delta` pages by it.
    #[serde(skip)]
    pub created: u64,
}

impl Group {
    /// A Microsoft 365 group: it cannot hold other groups.
    pub fn is_unified(&self) -> bool {
        self.group_types.iter().any(|t| t == "Unified")
    }

    /// The group's visibility as Graph returns it, Microsoft's default when none was given.
    /// https://learn.microsoft.com/en-us/graph/api/resources/group?view=graph-rest-1.0#properties
    pub fn visibility(&self) -> &str {
        match &self.visibility {
            Some(v) => v,
            None if self.is_unified() => "Public",
            None => "Private",
        }
    }
}

/// What changed at one point of the groups' change log: the group itself (created, deleted)
/// when `member` is `None`, else one of its direct memberships (added, removed, or the member
/// deleted or restored). `/groups/delta` reads the current state of what the log names.
#[derive(Clone, Debug)]
pub struct GroupChange {
    pub group: String,
    pub member: Option<Member>,
}

/// A member as the log remembers it: it may be gone by the time a delta reads it.
#[derive(Clone, Debug)]
pub struct Member {
    pub id: String,
    pub is_group: bool,
}

/// Every group of one directory, in the order they were created, with their change log.
#[derive(Debug, Default)]
pub struct Groups {
    groups: Vec<Group>,
    index: HashMap<String, usize>,
    created: u64,
    /// `log[n]` is the change with group sequence number `n + 1`.
    log: Vec<GroupChange>,
    /// Group delta tokens before this sequence number have expired.
    pub log_floor: u64,
}

impl Groups {
    /// Adds a group, without members (`add_member` adds them, checked); its id must be new.
    pub fn add(&mut self, mut group: Group) -> Result<&Group, GroupError> {
        if self.index.contains_key(&group.id) {
            return Err(GroupError::Duplicate(group.id));
        }
        group.members.clear();
        self.created += 1;
        group.created = self.created;
        self.touch(&group.id, None);
        self.index.insert(group.id.clone(), self.groups.len());
        self.groups.push(group);
        Ok(&self.groups[self.groups.len() - 1])
    }

    /// The current group sequence number: a delta token taken now starts here.
    pub fn seq(&self) -> u64 {
        self.log.len() as u64
    }

    /// Changes with group sequence numbers in `(from, to]`.
    pub fn changes(&self, from: u64, to: u64) -> &[GroupChange] {
        let to = (to as usize).min(self.log.len());
        let from = (from as usize).min(to);
        &self.log[from..to]
    }

    fn touch(&mut self, group: &str, member: Option<Member>) {
        self.log.push(GroupChange {
            group: group.to_string(),
            member,
        });
    }

    /// Logs a change to every direct membership of `member` (a user deleted or restored:
    /// Entra drops a deleted user's memberships and gives them back on restore).
    pub fn member_changed(&mut self, member: &str) {
        let holding: Vec<String> = self
            .groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == member))
            .map(|g| g.id.clone())
            .collect();
        for g in holding {
            self.touch(
                &g,
                Some(Member {
                    id: member.to_string(),
                    is_group: false,
                }),
            );
        }
    }

    pub fn get(&self, id: &str) -> Option<&Group> {
        self.index.get(id).map(|&i| &self.groups[i])
    }

    /// Groups in creation order, from position `after` on, with their positions.
    pub fn list_after(&self, after: usize) -> impl Iterator<Item = (usize, &Group)> {
        self.groups.iter().enumerate().skip(after)
    }

    pub fn is_group(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// Makes `member` (a user's or a group's id) a direct member of `group`. A Microsoft 365
    /// group holds no groups, and a group cannot contain itself, however deep.
    pub fn add_member(&mut self, group: &str, member: &str) -> Result<(), GroupError> {
        let &i = self
            .index
            .get(group)
            .ok_or_else(|| GroupError::Unknown(group.to_string()))?;
        if self.is_group(member) {
            if self.groups[i].is_unified() {
                return Err(GroupError::NotAllowed(
                    "a Microsoft 365 group cannot have groups as members".into(),
                ));
            }
            if member == group || self.transitive_members(member).contains(&group) {
                return Err(GroupError::NotAllowed(format!(
                    "group {member} already contains group {group}"
                )));
            }
        }
        let is_group = self.is_group(member);
        let members = &mut self.groups[i].members;
        if !members.iter().any(|m| m == member) {
            members.push(member.to_string());
            self.touch(
                group,
                Some(Member {
                    id: member.to_string(),
                    is_group,
                }),
            );
        }
        Ok(())
    }

    /// Takes `member` out of `group` (its direct membership only).
    pub fn remove_member(&mut self, group: &str, member: &str) -> Result<(), GroupError> {
        let &i = self
            .index
            .get(group)
            .ok_or_else(|| GroupError::Unknown(group.to_string()))?;
        let members = &mut self.groups[i].members;
        let before = members.len();
        members.retain(|m| m != member);
        if members.len() == before {
            return Err(GroupError::NotAllowed(format!(
                "{member} is not a direct member of group {group}"
            )));
        }
        let is_group = self.is_group(member);
        self.touch(
            group,
            Some(Member {
                id: member.to_string(),
                is_group,
            }),
        );
        Ok(())
    }

    /// Deletes a group; it leaves every group it was a member of.
    pub fn delete(&mut self, id: &str) -> Result<Group, GroupError> {
        let i = self
            .index
            .remove(id)
            .ok_or_else(|| GroupError::Unknown(id.to_string()))?;
        let gone = self.groups.remove(i);
        let mut holding = Vec::new();
        for g in &mut self.groups {
            if g.members.iter().any(|m| m == id) {
                g.members.retain(|m| m != id);
                holding.push(g.id.clone());
            }
        }
        self.touch(id, None);
        for g in holding {
            self.touch(
                &g,
                Some(Member {
                    id: id.to_string(),
                    is_group: true,
                }),
            );
        }
        self.index = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.id.clone(), i))
            .collect();
        Ok(gone)
    }

    /// A user leaves every group (permanent deletion).
    pub fn forget_member(&mut self, member: &str) {
        self.member_changed(member);
        for g in &mut self.groups {
            g.members.retain(|m| m != member);
        }
    }

    /// Everyone in the group, through nested groups too: users and the nested groups
    /// themselves, each once, breadth first in the order they joined.
    pub fn transitive_members(&self, id: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut queue: VecDeque<&str> = VecDeque::from([id]);
        while let Some(g) = queue.pop_front() {
            let Some(group) = self.get(g) else { continue };
            for m in &group.members {
                if m != id && seen.insert(m.as_str()) {
                    out.push(m.as_str());
                    if self.is_group(m) {
                        queue.push_back(m.as_str());
                    }
                }
            }
        }
        out
    }

    /// Whether `member` belongs to `group`, directly or through nested groups.
    pub fn contains(&self, group: &str, member: &str) -> bool {
        self.transitive_members(group).contains(&member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str, unified: bool) -> Group {
        Group {
            id: id.into(),
            display_name: id.into(),
            description: None,
            security_enabled: !unified,
            mail_enabled: unified,
            group_types: if unified {
                vec!["Unified".into()]
            } else {
                vec![]
            },
            visibility: None,
            members: vec![],
            created: 0,
        }
    }

    fn msp() -> Groups {
        let mut g = Groups::default();
        g.add(group("technicians", false)).unwrap();
        g.add(group("tier2", false)).unwrap();
        g.add(group("tier3", false)).unwrap();
        g.add_member("technicians", "alex").unwrap();
        g.add_member("technicians", "tier2").unwrap();
        g.add_member("tier2", "patti").unwrap();
        g.add_member("tier2", "tier3").unwrap();
        g.add_member("tier3", "isaiah").unwrap();
        g
    }

    #[test]
    fn members_of_nested_groups_belong_to_every_group_above() {
        let g = msp();
        assert_eq!(
            g.transitive_members("technicians"),
            ["alex", "tier2", "patti", "tier3", "isaiah"]
        );
        assert!(g.contains("technicians", "isaiah"));
        assert!(!g.contains("tier3", "alex"));
    }

    #[test]
    fn a_group_cannot_end_up_inside_itself() {
        let mut g = msp();
        assert!(matches!(
            g.add_member("tier3", "technicians"),
            Err(GroupError::NotAllowed(_))
        ));
        assert!(g.add_member("tier3", "tier3").is_err());
    }

    #[test]
    fn a_microsoft_365_group_holds_users_only() {
        let mut g = msp();
        g.add(group("sales", true)).unwrap();
        assert!(g.add_member("sales", "tier2").is_err());
        g.add_member("sales", "alex").unwrap();
    }

    #[test]
    fn leaving_a_nested_group_leaves_the_groups_above() {
        let mut g = msp();
        g.remove_member("tier2", "tier3").unwrap();
        assert!(!g.contains("technicians", "isaiah"));
        g.delete("tier2").unwrap();
        assert!(!g.contains("technicians", "patti"));
        assert_eq!(g.transitive_members("technicians"), ["alex"]);
        assert!(g.remove_member("technicians", "nobody").is_err());
    }

    #[test]
    fn every_change_to_a_group_or_its_members_is_logged() {
        let mut g = msp();
        let before = g.seq();
        g.remove_member("tier2", "patti").unwrap();
        assert!(g.remove_member("tier2", "patti").is_err());
        g.add_member("technicians", "alex").unwrap(); // already there: no change
        g.delete("tier3").unwrap();
        let logged: Vec<(String, Option<String>)> = g
            .changes(before, g.seq())
            .iter()
            .map(|c| (c.group.clone(), c.member.as_ref().map(|m| m.id.clone())))
            .collect();
        assert_eq!(
            logged,
            [
                ("tier2".to_string(), Some("patti".to_string())),
                ("tier3".to_string(), None),
                ("tier2".to_string(), Some("tier3".to_string())),
            ]
        );
    }
}
