//! Microsoft Entra built-in directory roles, their assignments in a directory, and who may
//! act on whom: a user who holds an admin role may be disabled, given a new password,
//! renamed or deleted only by a caller holding a role that reaches theirs.
//!
//! Role ids: https://learn.microsoft.com/en-us/entra/identity/role-based-access-control/permissions-reference
//! Who may act on whom: https://learn.microsoft.com/en-us/entra/identity/role-based-access-control/privileged-roles-permissions#who-can-perform-sensitive-actions

use serde::{Deserialize, Serialize};

/// A built-in role. For built-in roles the definition's id is the template id.
pub struct BuiltInRole {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
pub const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: &str = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";
pub const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
pub const AUTHENTICATION_ADMINISTRATOR: &str = "c4e39bd9-1100-46d3-8c65-fb160da0071f";
pub const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
pub const PASSWORD_ADMINISTRATOR: &str = "966707d0-3269-4727-9be2-8c3a10f19b9d";
pub const DIRECTORY_READERS: &str = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b";
pub const GROUPS_ADMINISTRATOR: &str = "fdd7a751-b60b-444a-984c-02652fe8fa1c";

/// The built-in roles the emulator knows: those an MSP hands its technicians, and those the
/// rules of who may act on whom name.
pub const BUILT_IN: &[BuiltInRole] = &[
    BuiltInRole {
        id: GLOBAL_ADMINISTRATOR,
        name: "Global Administrator",
        description: "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities.",
    },
    BuiltInRole {
        id: PRIVILEGED_AUTHENTICATION_ADMINISTRATOR,
        name: "Privileged Authentication Administrator",
        description: "Can access to view, set and reset authentication method information for any user (admin or non-admin).",
    },
    BuiltInRole {
        id: "e8611ab8-c189-46e8-94e1-60213ab1f814",
        name: "Privileged Role Administrator",
        description: "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged Identity Management.",
    },
    BuiltInRole {
        id: USER_ADMINISTRATOR,
        name: "User Administrator",
        description: "Can manage all aspects of users and groups, including resetting passwords for limited admins.",
    },
    BuiltInRole {
        id: AUTHENTICATION_ADMINISTRATOR,
        name: "Authentication Administrator",
        description: "Can access to view, set and reset authentication method information for any non-admin user.",
    },
    BuiltInRole {
        id: HELPDESK_ADMINISTRATOR,
        name: "Helpdesk Administrator",
        description: "Can reset passwords for non-administrators and Helpdesk Administrators.",
    },
    BuiltInRole {
        id: PASSWORD_ADMINISTRATOR,
        name: "Password Administrator",
        description: "Can reset passwords for non-administrators and Password Administrators.",
    },
    BuiltInRole {
        id: "29232cdf-9323-42fd-ade2-1d097af3e4de",
        name: "Exchange Administrator",
        description: "Can manage all aspects of the Exchange product.",
    },
    BuiltInRole {
        id: "194ae4cb-b126-40b2-bd5b-6091b380977d",
        name: "Security Administrator",
        description: "Can read security information and reports, and manage configuration in Microsoft Entra ID and Office 365.",
    },
    BuiltInRole {
        id: GROUPS_ADMINISTRATOR,
        name: "Groups Administrator",
        description: "Members of this role can create/manage groups, create/manage groups settings like naming and expiration policies, and view groups activity and audit report.",
    },
    BuiltInRole {
        id: DIRECTORY_READERS,
        name: "Directory Readers",
        description: "Can read basic directory information. Commonly used to grant directory read access to applications and guests.",
    },
];

/// The built-in role with this id.
pub fn built_in(id: &str) -> Option<&'static BuiltInRole> {
    BUILT_IN.iter().find(|r| r.id.eq_ignore_ascii_case(id))
}

/// A role held by a user or an app's service principal, tenant-wide (`directoryScopeId` "/").
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    pub id: String,
    pub role_definition_id: String,
    pub principal_id: String,
    pub directory_scope_id: String,
}

/// The holders of the roles a User Administrator may act on (the "User Admin" column of the
/// table; the emulator's roles only).
const USER_ADMINISTRATOR_REACHES: &[&str] = &[
    DIRECTORY_READERS,
    GROUPS_ADMINISTRATOR,
    HELPDESK_ADMINISTRATOR,
    PASSWORD_ADMINISTRATOR,
    USER_ADMINISTRATOR,
];
/// The same for an Authentication Administrator.
const AUTHENTICATION_ADMINISTRATOR_REACHES: &[&str] = &[
    AUTHENTICATION_ADMINISTRATOR,
    DIRECTORY_READERS,
    PASSWORD_ADMINISTRATOR,
];

/// Whether a caller holding `caller` roles may take a sensitive action (disable, reset the
/// password, rename, delete) on a user holding `target` roles. A user without an admin role
/// needs none; one with a role needs a caller whose role reaches every role they hold, and
/// Privileged Authentication Administrators and Global Administrators reach all.
pub fn may_act_on(caller: &[String], target: &[String]) -> bool {
    let holds = |role: &str| caller.iter().any(|c| c.eq_ignore_ascii_case(role));
    let reaches = |list: &[&str]| {
        target
            .iter()
            .all(|t| list.iter().any(|r| r.eq_ignore_ascii_case(t)))
    };
    target.is_empty()
        || holds(GLOBAL_ADMINISTRATOR)
        || holds(PRIVILEGED_AUTHENTICATION_ADMINISTRATOR)
        || (holds(USER_ADMINISTRATOR) && reaches(USER_ADMINISTRATOR_REACHES))
        || (holds(AUTHENTICATION_ADMINISTRATOR) && reaches(AUTHENTICATION_ADMINISTRATOR_REACHES))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_role_holder_is_reached_only_by_a_role_above_theirs() {
        let none = ids(&[]);
        let helpdesk = ids(&[HELPDESK_ADMINISTRATOR]);
        let exchange = ids(&["29232cdf-9323-42fd-ade2-1d097af3e4de"]);
        assert!(may_act_on(&none, &none), "no role needs none");
        assert!(!may_act_on(&none, &helpdesk));
        assert!(may_act_on(&ids(&[USER_ADMINISTRATOR]), &helpdesk));
        assert!(!may_act_on(&ids(&[USER_ADMINISTRATOR]), &exchange));
        assert!(!may_act_on(
            &ids(&[AUTHENTICATION_ADMINISTRATOR]),
            &helpdesk
        ));
        assert!(may_act_on(
            &ids(&[PRIVILEGED_AUTHENTICATION_ADMINISTRATOR]),
            &exchange
        ));
        assert!(may_act_on(
            &ids(&[GLOBAL_ADMINISTRATOR]),
            &ids(&[GLOBAL_ADMINISTRATOR])
        ));
        assert!(
            !may_act_on(
                &ids(&[USER_ADMINISTRATOR]),
                &ids(&[
                    HELPDESK_ADMINISTRATOR,
                    "29232cdf-9323-42fd-ade2-1d097af3e4de"
                ])
            ),
            "every role they hold must be reached"
        );
    }
}
