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
    #[serde(default)]
    pub members: Vec<String>,
}

impl Group {
    /// A Microsoft 365 group: it cannot hold other groups.
    pub fn is_unified(&self) -> bool {
        self.group_types.iter().any(|t| t == "Unified")
    }
}

/// Every group of one directory, in the order they were created.
#[derive(Debug, Default)]
pub struct Groups {
    groups: Vec<Group>,
    index: HashMap<String, usize>,
}

impl Groups {
    /// Adds a group, without members (`add_member` adds them, checked); its id must be new.
    pub fn add(&mut self, mut group: Group) -> Result<&Group, GroupError> {
        if self.index.contains_key(&group.id) {
            return Err(GroupError::Duplicate(group.id));
        }
        group.members.clear();
        self.index.insert(group.id.clone(), self.groups.len());
        self.groups.push(group);
        Ok(&self.groups[self.groups.len() - 1])
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
        let members = &mut self.groups[i].members;
        if !members.iter().any(|m| m == member) {
            members.push(member.to_string());
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
        Ok(())
    }

    /// Deletes a group; it leaves every group it was a member of.
    pub fn delete(&mut self, id: &str) -> Result<Group, GroupError> {
        let i = self
            .index
            .remove(id)
            .ok_or_else(|| GroupError::Unknown(id.to_string()))?;
        let gone = self.groups.remove(i);
        for g in &mut self.groups {
            g.members.retain(|m| m != id);
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
            members: vec![],
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
}
