//! `/groups/delta` as the reconciler reads it: the direct members of up to 50 named groups,
//! first all of them, then only the members that joined or left, and the groups deleted.
//! A large group's members may come over several pages, the same group on each.
//! https://learn.microsoft.com/en-us/graph/delta-query-groups

use super::graph::{urlencode, Graph};
use super::EntraError;
use crate::domain::{EntraUserId, GroupId};
use serde_json::Value;

/// Microsoft tracks at most 50 objects named in a delta's `$filter`.
/// https://learn.microsoft.com/en-us/graph/api/group-delta#query-parameters
pub const MAX_TRACKED_GROUPS: usize = 50;

/// A member of a group; only users and groups matter to Gatehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    User(EntraUserId),
    Group(GroupId),
    /// A device, service principal or contact.
    Other,
}

/// One entry of a group's `members@delta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDelta {
    pub member: Member,
    /// Left the group (or was deleted).
    pub removed: bool,
}

/// One group of a `/groups/delta` page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDelta {
    pub id: GroupId,
    /// The group was deleted.
    pub removed: bool,
    pub members: Vec<MemberDelta>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDeltaPage {
    pub groups: Vec<GroupDelta>,
    pub next_link: Option<String>,
    pub delta_link: Option<String>,
}

impl Graph {
    /// The URL that starts a round over the direct members of `groups` (at most 50).
    pub fn groups_delta_start<'a>(&self, groups: impl IntoIterator<Item = &'a GroupId>) -> String {
        let filter: Vec<String> = groups.into_iter().map(|g| format!("id eq '{g}'")).collect();
        format!(
            "{}/v1.0/groups/delta?$select=members&$filter={}",
            self.base_url(),
            urlencode(&filter.join(" or "))
        )
    }

    /// One page of a groups delta round (`url` is the start, a nextLink or a stored
    /// deltaLink).
    pub async fn groups_delta_page(&self, url: &str) -> Result<GroupDeltaPage, EntraError> {
        let page = read_page(&self.get(url).await?)?;
        for link in page.next_link.iter().chain(page.delta_link.iter()) {
            self.check_origin(link)?;
        }
        Ok(page)
    }
}

fn malformed(what: &str) -> EntraError {
    EntraError::Malformed(format!("a groups delta page with {what}"))
}

/// Reads a page strictly: a member whose kind is not named could be a user, so it is an
/// error, never a guess (a guessed "not a user" would offboard someone).
fn read_page(page: &Value) -> Result<GroupDeltaPage, EntraError> {
    let link = |name: &str| page.get(name).and_then(Value::as_str).map(str::to_string);
    let (next_link, delta_link) = (link("@odata.nextLink"), link("@odata.deltaLink"));
    if next_link.is_none() && delta_link.is_none() {
        return Err(malformed("neither nextLink nor deltaLink"));
    }
    let Some(Value::Array(items)) = page.get("value") else {
        return Err(malformed("no `value`"));
    };
    let mut groups = Vec::with_capacity(items.len());
    for item in items {
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("a group without `id`"))?;
        let mut members = Vec::new();
        match item.get("members@delta") {
            None => {}
            Some(Value::Array(list)) => {
                for m in list {
                    let member_id = m
                        .get("id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| malformed("a member without `id`"))?;
                    let member = match m.get("@odata.type").and_then(Value::as_str) {
                        Some("#microsoft.graph.user") => {
                            Member::User(EntraUserId::from_microsoft(member_id))
                        }
                        Some("#microsoft.graph.group") => {
                            Member::Group(GroupId::from_microsoft(member_id))
                        }
                        Some(_) => Member::Other,
                        None => return Err(malformed("a member without `@odata.type`")),
                    };
                    members.push(MemberDelta {
                        member,
                        removed: m.get("@removed").is_some(),
                    });
                }
            }
            Some(_) => return Err(malformed("`members@delta` that is not a list")),
        }
        groups.push(GroupDelta {
            id: GroupId::from_microsoft(id),
            removed: item.get("@removed").is_some(),
            members,
        });
    }
    Ok(GroupDeltaPage {
        groups,
        next_link,
        delta_link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_that_join_and_leave_and_deleted_groups_are_read() {
        let page = read_page(&json!({
            "@odata.deltaLink": "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=x",
            "value": [
                { "id": "g1", "members@delta": [
                    { "@odata.type": "#microsoft.graph.user", "id": "u1" },
                    { "@odata.type": "#microsoft.graph.user", "id": "u2", "@removed": { "reason": "deleted" } },
                    { "@odata.type": "#microsoft.graph.group", "id": "g2" },
                    { "@odata.type": "#microsoft.graph.device", "id": "d1" }
                ] },
                { "id": "g3", "@removed": { "reason": "changed" } }
            ]
        }))
        .unwrap();
        assert_eq!(page.groups.len(), 2);
        let user = |id: &str| Member::User(EntraUserId::from_microsoft(id));
        let members: Vec<(Member, bool)> = page.groups[0]
            .members
            .iter()
            .map(|m| (m.member.clone(), m.removed))
            .collect();
        assert_eq!(
            members,
            [
                (user("u1"), false),
                (user("u2"), true),
                (Member::Group(GroupId::from_microsoft("g2")), false),
                (Member::Other, false),
            ]
        );
        assert!(page.groups[1].removed);
    }

    #[test]
    fn a_member_of_unknown_kind_or_a_page_without_links_is_refused() {
        let untyped = json!({
            "@odata.deltaLink": "x",
            "value": [ { "id": "g1", "members@delta": [ { "id": "u1" } ] } ]
        });
        assert!(read_page(&untyped).is_err());
        assert!(read_page(&json!({ "value": [] })).is_err());
    }
}
